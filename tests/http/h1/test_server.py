"""``serve_h1`` over real loopback sockets: readiness, lifespan, shutdown."""

from __future__ import annotations

import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio

from tests.http.fakes import FakeExchanger, Last, Script, chunk, replying
from tests.servers import half_close
from trio_runner.config.model import Http2Config, HttpConfig
from trio_runner.errors import LifespanFailed
from trio_runner.http import HttpBridge, serve_http
from trio_runner.http.asgi import Receive, Scope, Send
from trio_runner.http.front import plain_server, tls_server, uses_lean_server
from trio_runner.http.h1 import H1Limits, serve_h1
from trio_runner.protocol import Payload

TIMEOUT = 10


class LifespanApp:
    """Records its lifespan; answers requests with the state it set."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.events: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.events.append(message["type"])
                if message["type"] == "lifespan.startup":
                    if self.fail:
                        await send(
                            {"type": "lifespan.startup.failed", "message": "no db"}
                        )
                        return
                    scope["state"]["greeting"] = "hi"
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"]["greeting"].encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})


async def test_serve_h1_runs_the_lifespan_around_serving() -> None:
    app = LifespanApp()
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(serve_h1, app, "127.0.0.1:0"))
            assert app.events == ["lifespan.startup"]
            async with httpx.AsyncClient() as client:
                response = await client.get(f"http://{bound}/")
            assert response.text == "hi"
            nursery.cancel_scope.cancel()
    assert app.events == ["lifespan.startup", "lifespan.shutdown"]


async def test_serve_h1_does_not_start_when_the_lifespan_fails() -> None:
    with trio.fail_after(TIMEOUT), pytest.raises(LifespanFailed, match="no db"):
        await serve_h1(LifespanApp(fail=True), "127.0.0.1:0")


async def test_serve_h1_serves_apps_without_a_lifespan() -> None:
    async def plain(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError("no lifespan here")
        assert "state" not in scope
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(serve_h1, plain, "127.0.0.1:0"))
            async with httpx.AsyncClient() as client:
                assert (await client.get(f"http://{bound}/")).status_code == 204
            nursery.cancel_scope.cancel()


async def test_serve_h1_closes_idle_keep_alive_connections_on_shutdown() -> None:
    bridge = HttpBridge(FakeExchanger(replying(chunk(200, b"ok"))))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            serving = trio.CancelScope()

            async def run(task_status: trio.TaskStatus[str]) -> None:
                with serving:
                    await serve_h1(
                        bridge, "127.0.0.1:0", grace_period=30, task_status=task_status
                    )

            bound = await nursery.start(run)
            host, _, port = bound.rpartition(":")
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            assert (await stream.receive_some(65536)).endswith(b"ok")
            serving.cancel()
            # Well before the 30 s grace period: the idle one is closed now.
            with trio.fail_after(5):
                assert await stream.receive_some(65536) == b""
            await stream.aclose()


async def test_serve_h1_survives_a_connection_that_fails_inside_the_server(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from trio_runner.http.h1 import connection as connection_module

    real = connection_module.H1Connection._serve_requests
    calls = 0

    async def flaky(self: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the server")
        await real(self)

    monkeypatch.setattr(connection_module.H1Connection, "_serve_requests", flaky)
    bridge = HttpBridge(FakeExchanger(replying(chunk(200, b"still here"))))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(serve_h1, bridge, "127.0.0.1:0"))
            async with httpx.AsyncClient() as client:
                with pytest.raises(httpx.TransportError):
                    await client.get(f"http://{bound}/")
                assert (await client.get(f"http://{bound}/")).text == "still here"
            nursery.cancel_scope.cancel()
    assert "a bug in the server" in caplog.text


@pytest.mark.parametrize(
    ("server", "h2c", "lean"),
    [("auto", False, True), ("auto", True, False), ("hypercorn", False, False)],
)
def test_front_picks_the_lean_server_for_plain_http11(
    server: str, h2c: bool, lean: bool
) -> None:
    http = HttpConfig(
        server=server,
        http2=Http2Config(h2c=h2c),
        max_header_size=2048,
        read_header_timeout=3,
        idle_timeout=4,
    )
    picked = plain_server(http, grace_period=1, date_header=True)
    assert uses_lean_server(http) is lean
    assert isinstance(picked, partial)
    assert picked.func is (serve_h1 if lean else serve_http)
    if lean:
        assert picked.keywords["limits"] == H1Limits(2048, 3, 4)
    else:
        assert picked.keywords["keep_alive_timeout"] == 4
        assert picked.keywords["h11_max_incomplete_size"] == 2048
        assert picked.keywords["h2_max_header_list_size"] == 2048


def test_front_holds_https_to_max_header_size() -> None:
    http = HttpConfig(max_header_size=2048)
    picked = tls_server(http, ssl.create_default_context(), grace_period=1)
    assert isinstance(picked, partial)
    assert picked.keywords["h11_max_incomplete_size"] == 2048
    assert picked.keywords["h2_max_header_list_size"] == 2048


async def test_server_http_server_key_picks_what_serves(php_server: Any) -> None:
    """103 Early Hints over HTTP/1.1 tell them apart: only the lean server
    sends them."""
    from tests.servers import PHP

    answers = {}
    with trio.fail_after(TIMEOUT):
        for server_kind in ("auto", "hypercorn"):
            server = await php_server(
                script=PHP / "http_early_hints.php",
                overrides=[f"http.server={server_kind}"],
            )
            host, _, port = server.http_address.rpartition(":")
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                await stream.send_all(
                    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
                )
                data = b""
                while chunk := await stream.receive_some(65536):
                    data += chunk
            answers[server_kind] = data
    assert answers["auto"].startswith(b"HTTP/1.1 103 Early Hints\r\nlink: ")
    assert answers["hypercorn"].startswith(b"HTTP/1.1 200 ")
    assert answers["auto"].endswith(b"final") and answers["hypercorn"].endswith(
        b"final"
    )


# A tick of a tenth of a second: a request that takes longer is watched
# by the reader, which then sees the client's end of input.
QUICK = H1Limits(read_header_timeout=5, idle_timeout=0.4)


@asynccontextmanager
async def lean(script: Script) -> AsyncIterator[tuple[str, FakeExchanger]]:
    fake = FakeExchanger(script)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(
            partial(serve_h1, HttpBridge(fake), "127.0.0.1:0", limits=QUICK)
        )
        yield bound, fake
        nursery.cancel_scope.cancel()


def slow(seconds: float) -> Script:
    """Answer with the request body after ``seconds``, as a slow PHP would."""

    async def script(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
        await trio.sleep(seconds)
        yield Last(chunk(200, b"body=" + payload.body))

    return script


async def test_serve_h1_answers_a_request_whose_client_half_closed() -> None:
    # The end of input was taken for the client leaving: PHP was cancelled
    # and the client got nothing (499 in the access log).
    with trio.fail_after(TIMEOUT):
        async with lean(slow(0.5)) as (bound, fake):
            answer = await half_close(bound, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nconnection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nbody=")
    assert len(fake.requests) == 1 and not fake.left_early and not fake.cancelled


async def test_serve_h1_answers_pipelined_requests_then_the_half_close() -> None:
    with trio.fail_after(TIMEOUT):
        async with lean(slow(0.3)) as (bound, fake):
            answer = await half_close(
                bound,
                b"POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\none"
                b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\ntwo",
            )
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 2
    assert answer.index(b"body=one") < answer.index(b"body=two")
    assert answer.endswith(b"body=two")
    assert len(fake.requests) == 2 and not fake.left_early


@pytest.mark.parametrize(
    "cut",
    [
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n",
    ],
    ids=["body", "chunked-body", "head"],
)
async def test_serve_h1_half_close_mid_request_is_the_client_leaving(
    cut: bytes,
) -> None:
    with trio.fail_after(TIMEOUT):
        async with lean(slow(0)) as (bound, fake):
            answer = await half_close(bound, cut)
    assert answer == b""
    assert fake.requests == []  # PHP never saw it


def chunks_every(seconds: float, count: int) -> tuple[Script, list[int], trio.Event]:
    """A streamed answer of ``count`` chunks, how many went, and an event
    set when the stream ends, finished or stopped."""
    sent = [0]
    ended = trio.Event()

    async def script(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
        try:
            yield chunk(200, b"first\n")
            for _ in range(count):
                await trio.sleep(seconds)
                sent[0] += 1
                yield chunk(200, b"chunk\n")
            yield Last(chunk(200, b"end\n"))
        finally:
            ended.set()

    return script, sent, ended


async def test_serve_h1_stops_a_stream_whose_client_closed_for_good() -> None:
    # Its end of input looks like a half-close; the writes that follow
    # fail, and the stream is stopped there.
    script, sent, ended = chunks_every(0.02, 200)
    with trio.fail_after(TIMEOUT):
        async with lean(script) as (bound, fake):
            host, _, port = bound.rpartition(":")
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            data = b""
            while b"first\n" not in data:
                data += await stream.receive_some(65536)
            await stream.aclose()
            await ended.wait()
    assert fake.left_early  # stopped, not finished
    assert sent[0] < 50


@pytest.mark.parametrize(
    ("coding", "status"),
    [(b"gzip, chunked", 501), (b"chunked, gzip", 400), (b"gzip", 400)],
)
async def test_serve_h1_refuses_transfer_codings_it_cannot_decode(
    coding: bytes, status: int
) -> None:
    # "gzip, chunked" was de-chunked and the gzip bytes reached PHP as the
    # body, the Transfer-Encoding header gone. 501 is also hypercorn's answer.
    request = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: " + coding + b"\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    with trio.fail_after(TIMEOUT):
        async with lean(slow(0)) as (bound, fake):
            host, _, port = bound.rpartition(":")
            async with await trio.open_tcp_stream(host, int(port)) as stream:
                await stream.send_all(request)
                answer = b""
                while part := await stream.receive_some(65536):
                    answer += part
    assert answer.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nconnection: close\r\n" in answer
    assert answer.count(b"HTTP/1.1 ") == 1  # closed: /next is not served
    assert fake.requests == []


async def test_serve_h1_takes_chunked_in_any_case() -> None:
    with trio.fail_after(TIMEOUT):
        async with lean(slow(0)) as (bound, fake):
            answer = await half_close(
                bound,
                b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\n\r\n",
            )
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"body=abc")
    assert [request.body for request in fake.requests] == [b"abc"]
