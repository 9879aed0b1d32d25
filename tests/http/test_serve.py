from __future__ import annotations

import socket
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing

from tests.http.fakes import FakeExchanger, Last, chunk, failing, replying
from tests.http.h2client import open_h2
from trio_runner.errors import BindError, ConfigError, WorkerCrashed
from trio_runner.http import HttpBridge, parse_address, serve_http
from trio_runner.http.asgi import Receive, Scope, Send, acknowledge_lifespan
from trio_runner.http.h1 import H1Limits, serve_h1
from trio_runner.http.proto import http_pb2
from trio_runner.protocol import Payload

MB = 1024 * 1024

Serve = Callable[..., Awaitable[None]]


@pytest.fixture(params=[serve_h1, serve_http], ids=["lean", "hypercorn"])
def serve(request: pytest.FixtureRequest) -> Serve:
    """Each HTTP/1.1 test runs on the lean server and on hypercorn."""
    server: Serve = request.param
    return server


class OneShot(httpx.AsyncByteStream):
    """A request body that, unlike httpx's own, is not an async generator.

    The server answers 413 without reading the body, so httpx drops the
    stream half-sent; a generator would then be collected unfinished and
    trio would warn about it.
    """

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> OneShot:
        return self

    async def __anext__(self) -> bytes:
        if self._data is None:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    ("host", "prefix"),
    [
        ("127.0.0.1", "127.0.0.1:"),
        pytest.param(
            "[::1]",
            "[::1]:",
            marks=pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback"),
        ),
    ],
)
async def test_serve_http_serves_the_bridge_until_cancelled(
    serve: Serve, host: str, prefix: str
) -> None:
    fake = FakeExchanger(replying(chunk(200, b"hello", Content_Type=[b"text/plain"])))
    bridge = HttpBridge(fake, max_request_size=1)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                partial(serve, bridge, f"{host}:0", grace_period=1)
            )
            assert bound.startswith(prefix)
            port = int(bound.rpartition(":")[2])
            assert port > 0

            async with httpx.AsyncClient(base_url=f"http://{bound}") as client:
                response = await client.get("/hi?x=1")
                assert response.status_code == 200
                assert response.text == "hello"
                assert response.headers["content-type"] == "text/plain"
                assert "server" not in response.headers

                upload = client.build_request(
                    "POST", "/upload", headers={"Content-Length": str(MB + 1)}
                )
                upload.stream = OneShot(b"x" * (MB + 1))
                too_big = await client.send(upload)
                assert too_big.status_code == 413

            assert len(fake.requests) == 1
            nursery.cancel_scope.cancel()

        family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
        with trio.socket.socket(family) as probe, pytest.raises(OSError):
            await probe.connect((host.strip("[]"), port))


async def test_serve_http_lets_requests_in_flight_finish_on_cancel(
    serve: Serve,
) -> None:
    entered = trio.Event()
    release = trio.Event()

    async def slow(payload: Payload) -> AsyncGenerator[Payload, None]:
        entered.set()
        await release.wait()
        yield chunk(200, b"finished")

    bridge = HttpBridge(FakeExchanger(slow))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serving = trio.CancelScope()

            async def run(task_status: trio.TaskStatus[str]) -> None:
                with serving:
                    await serve(
                        bridge, "127.0.0.1:0", grace_period=5, task_status=task_status
                    )

            bound = await nursery.start(run)
            async with httpx.AsyncClient(base_url=f"http://{bound}") as client:
                result: list[httpx.Response] = []
                answered = trio.Event()

                async def get() -> None:
                    result.append(await client.get("/slow"))
                    answered.set()

                nursery.start_soon(get)
                await entered.wait()
                serving.cancel()  # shutdown starts with the request in flight
                await trio.testing.wait_all_tasks_blocked()
                with trio.socket.socket() as probe, pytest.raises(OSError):
                    await probe.connect(("127.0.0.1", int(bound.rpartition(":")[2])))
                release.set()
                await answered.wait()
            assert result[0].status_code == 200
            assert result[0].text == "finished"


async def test_serve_http_cancels_requests_still_running_after_grace(
    serve: Serve,
) -> None:
    entered = trio.Event()

    async def stuck(payload: Payload) -> AsyncGenerator[Payload, None]:
        entered.set()
        await trio.sleep_forever()
        yield Payload()  # pragma: no cover

    fake = FakeExchanger(stuck)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            serving = trio.CancelScope()

            async def run(task_status: trio.TaskStatus[str]) -> None:
                with serving:
                    await serve(
                        HttpBridge(fake),
                        "127.0.0.1:0",
                        grace_period=0.2,
                        task_status=task_status,
                    )

            bound = await nursery.start(run)
            async with httpx.AsyncClient(base_url=f"http://{bound}") as client:
                failed = trio.Event()

                async def get() -> None:
                    with pytest.raises(httpx.TransportError):
                        await client.get("/stuck")
                    failed.set()

                nursery.start_soon(get)
                await entered.wait()
                serving.cancel()
                await failed.wait()
    assert fake.cancelled


@asynccontextmanager
async def serving(
    bridge: HttpBridge, *, serve: Serve = serve_http, **options: Any
) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        yield await nursery.start(partial(serve, bridge, "127.0.0.1:0", **options))
        nursery.cancel_scope.cancel()


async def test_serve_http_speaks_h2c_with_prior_knowledge() -> None:
    cookies = [b"a=1", b"b=2"]
    fake = FakeExchanger(replying(chunk(200, b"two", Set_Cookie=cookies)))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake), h2c=True) as bound,
            httpx.AsyncClient(http1=False, http2=True) as client,
        ):
            response = await client.get(f"http://{bound}/h2?q=1")
    assert response.http_version == "HTTP/2"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]
    context = http_pb2.Request.FromString(fake.requests[0].context)
    assert context.protocol == "HTTP/2.0"
    assert context.uri == f"http://{bound}/h2?q=1"
    assert "Host" not in context.header


async def test_serve_http_truncates_a_stream_that_fails_midway(serve: Serve) -> None:
    error = WorkerCrashed("worker died", pid=5)
    fake = FakeExchanger(failing(error, chunk(200, b"partial")))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake), serve=serve) as bound,
            httpx.AsyncClient() as client,
        ):
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(f"http://{bound}/stream")
            # the server closed only that connection and still answers
            fake.script = replying(chunk(200, b"again"))
            assert (await client.get(f"http://{bound}/")).text == "again"


@pytest.mark.parametrize(
    ("address", "parsed"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:443", ("::1", 443)),
        (":8080", ("0.0.0.0", 8080)),
        (" 0.0.0.0:80 ", ("0.0.0.0", 80)),
    ],
)
def test_parse_address(address: str, parsed: tuple[str, int]) -> None:
    assert parse_address(address) == parsed


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "8080", "::1:80", "host:http", "h:65536", "[::1]", ""]
)
def test_parse_address_refuses_malformed(address: str) -> None:
    with pytest.raises(ConfigError, match="host:port"):
        parse_address(address)


@pytest.mark.parametrize("option", ["no_such_option", "bind"])
async def test_serve_http_refuses_unknown_options(option: str) -> None:
    options: dict[str, Any] = {option: 1}
    with pytest.raises(ConfigError, match=option):
        await serve_http(HttpBridge(FakeExchanger()), "127.0.0.1:0", **options)


async def test_serve_http_reports_an_address_in_use_as_bind_error(
    serve: Serve,
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with trio.fail_after(5), pytest.raises(BindError, match=f":{port}: Address"):
            await serve(HttpBridge(FakeExchanger()), f"127.0.0.1:{port}")


async def read_until_closed(address: str, request: bytes) -> bytes:
    """Send ``request`` on a new connection; return all until the server closes."""
    host, _, port = address.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(request)
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    return data


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ],
    ids=["connection-close", "http-1.0"],
)
async def test_serve_http_closes_connections_the_client_asked_to_close(
    serve: Serve, request_bytes: bytes
) -> None:
    # The client's disconnect lands while the bridge is still inside
    # hypercorn's send; cancelling there used to leave the socket open.
    fake = FakeExchanger(replying(chunk(200, b"bye")))
    with trio.fail_after(5):
        async with serving(HttpBridge(fake), serve=serve) as bound:
            for _ in range(20):
                data = await read_until_closed(bound, request_bytes)
                assert data.startswith(b"HTTP/1.1 200")
                assert data.endswith(b"bye")


@pytest.mark.parametrize("size", [1024, 8191, 8192, 8193, 20_000, 70_000])
async def test_serve_http_holds_a_head_to_max_header_size_to_the_byte(
    serve: Serve, size: int
) -> None:
    # Both servers count the request line and headers as sent, and agree on
    # where the limit falls, however much of the head one read brings.
    limit = 8192
    if serve is serve_h1:
        options: dict[str, Any] = {"limits": H1Limits(max_header_size=limit)}
    else:
        options = {"h11_max_incomplete_size": limit}
    head = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: "
    head += b"a" * (size - len(head) - 4) + b"\r\n\r\n"
    assert len(head) == size
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(5):
        async with serving(HttpBridge(fake), serve=serve, **options) as bound:
            data = await read_until_closed(bound, head)
    status = b"200 OK" if size <= limit else b"431 Request Header Fields Too Large"
    assert data.startswith(b"HTTP/1.1 %s\r\n" % status)


@pytest.mark.parametrize(("bridge_date", "server_date"), [(False, True), (True, False)])
async def test_serve_http_sends_one_date_header(
    serve: Serve, bridge_date: bool, server_date: bool
) -> None:
    bridge = HttpBridge(FakeExchanger(), date_header=bridge_date)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                partial(serve, bridge, "127.0.0.1:0", date_header=server_date)
            )
            data = await read_until_closed(
                bound, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            nursery.cancel_scope.cancel()
    assert data.lower().count(b"\r\ndate: ") == 1


async def test_serve_http_pushes_http2_push_paths() -> None:
    async def script(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
        uri = http_pb2.Request.FromString(payload.context).uri
        if uri.endswith("/style.css"):
            yield Last(chunk(200, b"pushed"))
        else:
            yield Last(chunk(200, b"page", Http2_Push=[b"/style.css"]))

    with trio.fail_after(10):
        async with (
            serving(HttpBridge(FakeExchanger(script)), h2c=True) as bound,
            open_h2(bound) as client,
        ):
            page = await client.wait_ended(await client.request("GET", "/"))
            await client.wait_for(lambda c: 2 in c.answers and c.answers[2].ended)
    assert (page.status, page.body) == (200, b"page")
    assert (client.answers[2].status, client.answers[2].body) == (200, b"pushed")


@pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="no dual-stack IPv6")
async def test_serve_on_every_address_gives_an_ipv4_client_as_ipv4(
    serve: Serve,
) -> None:
    # Listening on ":port" takes IPv4 clients on an IPv6 socket; the app
    # sees 127.0.0.1, as under Go, not ::ffff:127.0.0.1.
    clients: list[object] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        clients.append(scope["client"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(partial(serve, app, ":0"))
            port = bound.rpartition(":")[2]
            data = await read_until_closed(
                f"127.0.0.1:{port}",
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
            )
            nursery.cancel_scope.cancel()
    assert data.startswith(b"HTTP/1.1 204")
    assert [client[0] for client in clients] == ["127.0.0.1"]  # type: ignore[index]
