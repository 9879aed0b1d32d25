"""The hypercorn faults fixed by ``trio_runner.http.connection``, one by one.

Each test drives ``serve_http`` with a fake pool and raw HTTP/2 clients
(``tests/http/h2client.py``), since httpx hides the frames that matter.

Past 600 lines: one test (or a table) per numbered fix of the module under
test, which is itself one piece for the reasons its docstring gives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
import ssl
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
import trio
import trio.testing
import trustme

from tests.http.fakes import FakeExchanger, Last, Script, chunk, failing, replying
from tests.http.h2client import open_h2
from trio_runner.errors import WorkerCrashed
from trio_runner.http import HttpBridge, serve_http
from trio_runner.http.asgi import ASGIApp, Receive, Scope, Send, acknowledge_lifespan
from trio_runner.http.connection import Connection
from trio_runner.protocol import Payload

MB = 1024 * 1024


@asynccontextmanager
async def serving(bridge: ASGIApp, **options: Any) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        yield await nursery.start(
            partial(serve_http, bridge, "127.0.0.1:0", grace_period=1, **options)
        )
        nursery.cancel_scope.cancel()


def hypercorn_trouble(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Error records from hypercorn or from a failed connection."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and record.name in {"trio_runner.http.hypercorn", "trio_runner.http.connection"}
    ]


async def streaming(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
    for _ in range(4):
        await trio.sleep(0.002 * random.random())
        yield chunk(200, b"x" * 20_000)
    yield Last(chunk(200, b"end"))


async def leave_mid_flight(address: str, how: int) -> None:
    """Open 10 streams, read a little of the answers, then go away.

    ``how``: 0 sends GOAWAY first, 1 resets the TCP connection, 2 just
    closes it.
    """
    async with open_h2(address) as client:
        connection = client.connection
        connection.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: MB})
        connection.increment_flow_control_window(16 * MB)
        for _ in range(10):
            await client.request("GET", "/")
        wanted = random.choice([1, 5_000, 50_000, 200_000])
        received = 0
        while received < wanted:
            data = await client.stream.receive_some(65536)
            if not data:
                break
            received += len(data)
            connection.receive_data(data)  # acknowledged below, keep it flowing
            for stream_id in list(connection.streams):
                window = connection.remote_flow_control_window(stream_id)
                if window < MB // 2:
                    connection.increment_flow_control_window(MB, stream_id=stream_id)
            await client.flush()
        if how == 0:
            connection.close_connection()
            await client.flush()
        elif how == 1:
            sock = client.stream.socket  # type: ignore[attr-defined]
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )


async def test_connection_survives_h2_clients_leaving_mid_flight(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Fault 1 of DESIGN.md. Before the fix this ended serve_http with
    # BusyResourceError within a few dozen connections.
    bridge = HttpBridge(FakeExchanger(streaming))
    with trio.fail_after(60):
        async with serving(bridge, h2c=True) as bound:
            for attempt in range(60):
                await leave_mid_flight(bound, attempt % 3)
            async with httpx.AsyncClient(http1=False, http2=True) as client:
                response = await client.get(f"http://{bound}/")
    assert response.status_code == 200
    assert response.http_version == "HTTP/2"
    assert hypercorn_trouble(caplog) == []


def open_sockets() -> int:
    """Sockets this process holds open (Linux)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


async def wait_until(done: Callable[[], bool]) -> None:
    """Poll ``done`` until it holds; bound it with ``trio.fail_after``."""
    while not done():  # noqa: ASYNC110
        await trio.sleep(0.01)


async def leave_without_goaway(
    address: str, requests: int, read: int, *, reset: bool
) -> None:
    """Send ``requests`` GETs, read up to ``read`` bytes and close, as
    impatient clients and load tools do: no GOAWAY, no RST_STREAM.
    ``reset``: reset the TCP connection rather than close it."""
    host, _, port = address.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    get = [(":method", "GET"), (":scheme", "http"), (":authority", "x")]
    for _ in range(requests):
        stream_id = client.get_next_available_stream_id()
        client.send_headers(stream_id, [*get, (":path", "/")], end_stream=True)
    await stream.send_all(client.data_to_send())
    if read:
        await stream.receive_some(read)
    if reset:
        linger = struct.pack("ii", 1, 0)
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    await stream.aclose()


async def answer_at_once(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
    yield Last(chunk(200, b"x" * 700))


@pytest.mark.parametrize(
    "script", [answer_at_once, streaming], ids=["one-chunk", "streamed"]
)
async def test_connection_h2_clients_closing_without_goaway_leave_nothing_behind(
    caplog: pytest.LogCaptureFixture, script: Script
) -> None:
    # Bug A of the issue #3 audit: the app waited forever in hypercorn's
    # StreamBuffer.drain() once the connection had closed, holding its
    # connection, socket and request (SIGTERM then waited the whole grace
    # period). Bug C: a complete response was then taken for an unfinished
    # one, and resetting it raised KeyError.
    bridge = HttpBridge(FakeExchanger(script))
    with trio.fail_after(30):
        async with serving(bridge, h2c=True) as bound:
            idle = open_sockets()
            for attempt in range(45):
                await leave_without_goaway(
                    bound,
                    requests=(1, 5, 40)[attempt % 3],
                    read=(0, 100, 5000)[attempt // 3 % 3],
                    reset=attempt % 5 == 0,
                )
            # Well inside the keep-alive timeout (5 s), which must not keep
            # a connection whose client is gone.
            with trio.fail_after(2):
                await wait_until(
                    lambda: bridge.in_flight == 0 and open_sockets() <= idle
                )
    assert hypercorn_trouble(caplog) == []


async def test_connection_failure_ends_that_connection_only(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Connection._read_data
    failed = trio.Event()

    async def read_data(self: Connection) -> None:
        if not failed.is_set():
            failed.set()
            raise RuntimeError("a bug in hypercorn")
        await original(self)

    monkeypatch.setattr(Connection, "_read_data", read_data)
    bridge = HttpBridge(FakeExchanger(replying(chunk(200, b"fine"))))
    with trio.fail_after(10):
        async with serving(bridge) as bound, httpx.AsyncClient() as client:
            with pytest.raises(httpx.TransportError):
                await client.get(f"http://{bound}/")
            assert (await client.get(f"http://{bound}/")).text == "fine"
    [record] = [r for r in caplog.records if r.name == "trio_runner.http.connection"]
    assert record.levelno == logging.ERROR
    assert "server carries on" in record.getMessage()
    assert "a bug in hypercorn" in caplog.text


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.mark.parametrize(
    ("tls", "options", "goaway"),
    [
        (False, {}, False),
        (True, {}, False),
        # hypercorn's default, to show the test would see the fault
        (False, {"keep_alive_max_requests": 1000}, True),
    ],
    ids=["h2c", "tls", "hypercorn-default"],
)
async def test_connection_serves_over_1000_requests_on_one_h2_connection(
    ca: trustme.CA,
    server_tls: ssl.SSLContext,
    tls: bool,
    options: dict[str, Any],
    goaway: bool,
) -> None:
    # Fault 2 of DESIGN.md: a GOAWAY after 1,000 requests.
    bridge = HttpBridge(FakeExchanger(replying(chunk(200, b"ok"))))
    served: list[int] = []
    with trio.fail_after(30):
        async with (
            serving(
                bridge, h2c=True, tls=server_tls if tls else None, **options
            ) as bound,
            open_h2(bound, tls=client_tls(ca) if tls else None) as client,
        ):
            for _ in range(11):
                try:
                    batch = [await client.request("GET", "/") for _ in range(100)]
                    for stream_id in batch:
                        answer = await client.wait_ended(stream_id)
                        if answer.reset is None:
                            served.append(answer.status)
                except (EOFError, trio.BrokenResourceError):
                    with contextlib.suppress(EOFError, trio.BrokenResourceError):
                        await client.wait_for(lambda c: c.goaway is not None)
                    break  # the server closed the connection
                if client.goaway is not None:
                    break
    if goaway:
        assert client.goaway is not None
        assert len(served) <= 1001
    else:
        assert client.goaway is None
        assert served == [200] * 1100


async def test_connection_h2_body_refused_early_leaves_connection_usable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Bug input 6 with a fake pool (tests/http/test_response_php.py has it
    # with PHP): a 2 MiB body over the limit is answered 413 before it is
    # read; the rest of it is read and dropped, and the connection serves on.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake, max_request_size=1), h2c=True) as bound,
            open_h2(bound) as client,
        ):
            body = b"x" * (2 * MB)
            post = await client.request(
                "POST", "/", [("content-length", str(len(body)))], end_stream=False
            )
            sent = await client.send_body(post, body)
            refused = await client.wait_ended(post)
            get = await client.request("GET", "/after")
            after = await client.wait_ended(get)
    assert (refused.status, refused.reset, sent) == (413, None, len(body))
    assert (after.status, after.body, after.reset) == (200, b"fine", None)
    assert client.goaway is None
    assert len(fake.requests) == 1  # only the GET reached "PHP"
    assert hypercorn_trouble(caplog) == []


async def test_connection_h2_stops_a_large_refused_body_with_no_error() -> None:
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake, max_request_size=1), h2c=True) as bound,
            open_h2(bound) as client,
        ):
            body = b"x" * (20 * MB)
            post = await client.request(
                "POST", "/", [("content-length", str(len(body)))], end_stream=False
            )
            sent = await client.send_body(post, body)
            refused = await client.wait_ended(post)
            after = await client.wait_ended(await client.request("GET", "/"))
    assert refused.status == 413
    assert refused.reset == h2.errors.ErrorCodes.NO_ERROR
    assert sent < len(body)
    assert after.status == 200
    assert client.goaway is None


async def test_connection_h2_body_refused_early_is_413_for_httpx() -> None:
    # httpx reads no response before it has sent the whole request: the
    # stream must not be reset under it for a modest body.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake, max_request_size=1), h2c=True) as bound,
            httpx.AsyncClient(http1=False, http2=True) as client,
        ):
            refused = await client.post(f"http://{bound}/", content=b"x" * (MB + 1))
            after = await client.get(f"http://{bound}/")
    assert (refused.status_code, refused.http_version) == (413, "HTTP/2")
    assert after.status_code == 200


async def test_connection_h2_resets_a_response_the_worker_left_unfinished() -> None:
    # Over HTTP/1.1 the connection is closed; over HTTP/2 the stream used
    # to stay open and the client waited forever.
    fake = FakeExchanger(failing(WorkerCrashed("died", pid=5), chunk(200, b"part")))
    with trio.fail_after(10):
        async with serving(HttpBridge(fake), h2c=True) as bound:
            async with open_h2(bound) as client:
                broken = await client.wait_ended(await client.request("GET", "/"))
                fake.script = replying(chunk(200, b"again"))
                again = await client.wait_ended(await client.request("GET", "/"))
            async with httpx.AsyncClient(http1=False, http2=True) as httpx_client:
                fake.script = failing(WorkerCrashed("died", pid=5), chunk(200, b"x"))
                with pytest.raises(httpx.RemoteProtocolError):
                    await httpx_client.get(f"http://{bound}/")
    assert broken.status == 200
    assert broken.body == b"part"
    assert broken.reset == h2.errors.ErrorCodes.INTERNAL_ERROR
    assert (again.body, again.reset) == (b"again", None)


async def read_all(address: str, request: bytes, *, until: bytes = b"") -> bytes:
    """Send ``request``, read until the server closes or ``until`` shows."""
    host, _, port = address.rpartition(":")
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(request)
        data = b""
        while not (until and until in data) and (
            part := await stream.receive_some(65536)
        ):
            data += part
    return data


PRIOR_KNOWLEDGE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
)


async def test_connection_refuses_h2c_unless_asked() -> None:
    fake = FakeExchanger(replying(chunk(200, b"one")))
    with trio.fail_after(10):
        async with serving(HttpBridge(fake)) as bound:
            prior = await read_all(bound, PRIOR_KNOWLEDGE)
            upgrade = await read_all(bound, UPGRADE)
    assert prior.startswith(b"HTTP/1.1 505 ")
    assert upgrade.startswith(b"HTTP/1.1 200 ")
    assert upgrade.endswith(b"one")
    assert len(fake.requests) == 1  # the PRI request never reached the app


async def test_connection_speaks_h2c_when_asked() -> None:
    fake = FakeExchanger(replying(chunk(200, b"one")))
    with trio.fail_after(10):
        async with serving(HttpBridge(fake), h2c=True) as bound:
            upgrade = await read_all(bound, UPGRADE, until=b"\r\n\r\n")
            async with open_h2(bound) as client:
                answer = await client.wait_ended(await client.request("GET", "/"))
    assert upgrade.startswith(b"HTTP/1.1 101 ")
    assert (answer.status, answer.body) == (200, b"one")


async def exchange_raw(address: str, request: bytes) -> bytes:
    """Send ``request`` while reading the answer, until the server closes.

    A server that closes before it has read everything makes the send
    fail; that is not an error here, only what was answered counts."""
    host, _, port = address.rpartition(":")
    async with await trio.open_tcp_stream(host, int(port)) as stream:

        async def send() -> None:
            with contextlib.suppress(trio.BrokenResourceError):
                await stream.send_all(request)

        data = b""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            with contextlib.suppress(trio.BrokenResourceError):
                while part := await stream.receive_some(65536):
                    data += part
            nursery.cancel_scope.cancel()
    return data


def chunked_request(body: bytes, piece: int = 65536) -> bytes:
    out = b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for start in range(0, len(body), piece):
        part = body[start : start + piece]
        out += b"%x\r\n%s\r\n" % (len(part), part)
    return out + b"0\r\n\r\n"


async def test_connection_h1_finishes_a_413_before_closing_on_pipelined_bytes() -> None:
    # Bug B of the issue #3 audit: the 413 says "Connection: close", so h11
    # refuses the pipelined GET; hypercorn then closed at once, and the
    # client got the 413's headers without its body, or nothing at all.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    request = chunked_request(b"x" * (MB + 1)) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    with trio.fail_after(30):
        async with serving(HttpBridge(fake, max_request_size=1)) as bound:
            answers = [await exchange_raw(bound, request) for _ in range(6)]
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"\r\nconnection: close" in head.lower()
        assert body == b"The request body is larger than the limit of 1 MB.\n"
    assert fake.requests == []  # neither reached PHP


async def test_connection_h1_answers_a_request_that_said_close_despite_more_bytes() -> (
    None
):
    # A client that sends more after "Connection: close": hypercorn answered
    # the first request with its own 400 instead of the app's response.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    request = (
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    with trio.fail_after(10):
        async with serving(HttpBridge(fake)) as bound:
            answer = await exchange_raw(bound, request)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nfine")
    assert answer.count(b"HTTP/1.1") == 1
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (200, b"HTTP/1.1 200 OK"),
        (404, b"HTTP/1.1 404 Not Found"),
        (503, b"HTTP/1.1 503 Service Unavailable"),
        (299, b"HTTP/1.1 299 status code 299"),
    ],
)
async def test_connection_h1_status_line_has_the_reason_phrase(
    status: int, line: bytes
) -> None:
    # hypercorn sent "HTTP/1.1 200 " (an empty reason), which h2load counts
    # as a failed request.
    fake = FakeExchanger(replying(chunk(status, b"body")))
    with trio.fail_after(10):
        async with serving(HttpBridge(fake)) as bound:
            answer = await read_all(
                bound, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
    assert answer.split(b"\r\n")[0] == line


async def test_connection_h1_100_continue_has_the_reason_phrase() -> None:
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n"
    )
    with trio.fail_after(10):
        async with serving(HttpBridge(fake)) as bound:
            host, _, port = bound.rpartition(":")
            async with await trio.open_tcp_stream(host, int(port)) as stream:
                await stream.send_all(head + b"Connection: close\r\n\r\n")
                interim = await stream.receive_some(65536)
                await stream.send_all(b"hi")
                final = b""
                while part := await stream.receive_some(65536):
                    final += part
    assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
    assert interim.endswith(b"\r\n\r\n")
    assert final.startswith(b"HTTP/1.1 200 OK\r\n")
    assert fake.requests[0].body == b"hi"


CONNECT = b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"
NOT_A_PROXY = b"CONNECT is not supported: this server is not a proxy.\n"


async def test_connection_h1_answers_connect_with_501_and_serves_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The app's 200 used to turn h11 into a tunnel that refused the body:
    # a long traceback per CONNECT, and a connection that never closed.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    request = CONNECT + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with trio.fail_after(10):
        async with serving(HttpBridge(fake)) as bound:
            answer = await exchange_raw(bound, request)
    refused, _, after = answer.partition(b"HTTP/1.1 200 OK\r\n")
    assert refused.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert refused.endswith(b"\r\n\r\n" + NOT_A_PROXY)
    assert after.endswith(b"\r\n\r\nfine")
    assert len(fake.requests) == 1  # the GET only
    assert hypercorn_trouble(caplog) == []


@pytest.mark.parametrize("ended", [False, True], ids=["tunnel", "no-body"])
async def test_connection_h2_answers_connect_with_501_and_serves_on(
    caplog: pytest.LogCaptureFixture, ended: bool
) -> None:
    # A CONNECT has no :path; hypercorn failed the whole connection on it.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake), h2c=True) as bound,
            open_h2(bound) as client,
        ):
            stream_id = client.connection.get_next_available_stream_id()
            headers = [(":method", "CONNECT"), (":authority", "a:443")]
            client.connection.send_headers(stream_id, headers, end_stream=ended)
            await client.flush()
            refused = await client.wait_for(
                lambda c: c.answer(stream_id).ended or c.goaway is not None
            )
            refused = client.answer(stream_id)
            after = await client.wait_ended(await client.request("GET", "/"))
    assert (refused.status, refused.body) == (501, NOT_A_PROXY)
    assert refused.reset == (None if ended else h2.errors.ErrorCodes.NO_ERROR)
    assert (after.status, after.body) == (200, b"fine")
    assert client.goaway is None
    assert len(fake.requests) == 1
    assert hypercorn_trouble(caplog) == []


async def test_connection_h1_refuses_an_oversized_body_without_100_continue() -> None:
    # hypercorn sent 100 Continue as soon as the head was in, so the client
    # sent a body that was refused by its length anyway.
    fake = FakeExchanger()
    head = b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
    head += b"Content-Length: %d\r\n\r\n" % (2 * MB)
    with trio.fail_after(10):
        async with serving(HttpBridge(fake, max_request_size=1)) as bound:
            answer = await read_all(bound, head)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert b" 100 " not in answer
    assert answer.endswith(
        b"\r\n\r\nThe request body is larger than the limit of 1 MB.\n"
    )
    assert fake.requests == []


async def receive_to_eof(stream: trio.abc.Stream) -> bytes:
    """Read until the peer closes; a reset fails the test."""
    data = b""
    while part := await stream.receive_some(65536):
        data += part
    return data


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
async def test_connection_h1_lingers_so_a_client_sending_its_body_reads_the_413(
    ca: trustme.CA, server_tls: ssl.SSLContext, tls: bool
) -> None:
    # The body is refused by its declared length, unread. Closing with it
    # unread made the kernel reset the connection: this client, which
    # sends all of its request before it reads, failed with a broken pipe.
    fake = FakeExchanger()
    body = b"x" * (8 * MB)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with trio.fail_after(20):
        async with serving(
            HttpBridge(fake, max_request_size=1), tls=server_tls if tls else None
        ) as bound:
            host, _, port = bound.rpartition(":")
            tcp = await trio.open_tcp_stream(host, int(port))
            # A small send buffer: the body cannot all wait in the kernel.
            tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
            stream: trio.abc.Stream = tcp
            if tls:
                stream = trio.SSLStream(
                    tcp,
                    client_tls(ca),
                    server_hostname="localhost",
                    https_compatible=True,
                )
            async with stream:
                await stream.send_all(head + body)
                answer = await receive_to_eof(stream)
    assert answer.startswith(b"HTTP/1.1 413 Request Entity Too Large\r\n")
    assert answer.endswith(
        b"\r\n\r\nThe request body is larger than the limit of 1 MB.\n"
    )
    assert fake.requests == []


async def test_connection_h1_answers_a_client_that_half_closed() -> None:
    # hypercorn took the end of input for the client leaving, and the
    # request was dropped unanswered.
    async def answer_once_the_eof_is_in(
        payload: Payload,
    ) -> AsyncGenerator[Payload | Last, None]:
        await trio.testing.wait_all_tasks_blocked(0.05)
        yield Last(chunk(200, b"fine"))

    fake = FakeExchanger(answer_once_the_eof_is_in)
    with trio.fail_after(10):
        async with serving(HttpBridge(fake)) as bound:
            host, _, port = bound.rpartition(":")
            async with await trio.open_tcp_stream(host, int(port)) as stream:
                await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await stream.send_eof()
                answer = await receive_to_eof(stream)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nfine")
    assert not fake.left_early


STALLED = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"


async def test_connection_h1_closes_after_a_408_for_a_body_that_stalls() -> None:
    fake = FakeExchanger()
    with trio.fail_after(10):
        async with serving(HttpBridge(fake, body_timeout=0.3)) as bound:
            answer = await read_all(bound, STALLED + b"\r\nabc")
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert b"\r\nconnection: close\r\n" in answer
    assert answer.endswith(
        b"\r\n\r\nThe request body stopped arriving: nothing came for 0.3 s.\n"
    )
    assert fake.requests == []


async def test_connection_cut_at_shutdown_while_its_body_comes_is_counted() -> None:
    # What the server's "cutting N request(s)" warning counts.
    bridge = HttpBridge(FakeExchanger())
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                partial(serve_http, bridge, "127.0.0.1:0", grace_period=0.2)
            )
            host, _, port = bound.rpartition(":")
            stream = await trio.open_tcp_stream(host, int(port))
            await stream.send_all(STALLED + b"Expect: 100-continue\r\n\r\n")
            # Sent once the bridge asks for the body (fix 11).
            assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 100 ")
            await stream.send_all(b"abc")
            nursery.cancel_scope.cancel()  # serve_http stops gracefully
        await stream.aclose()  # only once the server has stopped
    assert (bridge.cut, bridge.in_flight) == (1, 0)


async def answer_unread(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers "fine" once the body's pieces have piled up, reading none."""
    if scope["type"] == "lifespan":
        await acknowledge_lifespan(receive, send)
        return
    await trio.testing.wait_all_tasks_blocked(0.05)  # the pieces pile up
    length = [(b"content-length", b"4")]
    await send({"type": "http.response.start", "status": 200, "headers": length})
    await send({"type": "http.response.body", "body": b"fine"})


async def test_connection_h1_closes_after_answering_a_body_left_unread() -> None:
    # An app that answers without reading a large body (the bridge does for
    # a 413, the static middleware for a file). hypercorn's reading task
    # waited for the app to take the body's pieces, and the app's last send
    # waited for room to say the stream had closed: the connection stayed
    # open for good, and the client never got to the end of its body.
    body = b"x" * (4 * MB)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with trio.fail_after(10):
        async with serving(answer_unread) as bound:
            answer = await exchange_raw(bound, head + body)
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    assert answer.endswith(b"\r\n\r\nfine")


# Fixes 15 and 16: http.max_header_size on hypercorn's paths.
HEAD_LIMIT = 8192
HEADER_LIMITS = {"h11_max_incomplete_size": HEAD_LIMIT}
HEADER_LIST_LIMITS = {"h2_max_header_list_size": HEAD_LIMIT}
TOO_LARGE = b"the request head is too large\n"


def head_of(size: int, *, method: bytes = b"GET", close: bool = True) -> bytes:
    """A request head of exactly ``size`` bytes, padded by an X-Big header."""
    head = b"%s / HTTP/1.1\r\nHost: x\r\n" % method
    if close:
        head += b"Connection: close\r\n"
    head += b"X-Big: "
    return head + b"a" * (size - len(head) - 4) + b"\r\n\r\n"


async def exchange(address: str, request: bytes, tls: ssl.SSLContext | None) -> bytes:
    """``exchange_raw``, over TLS when ``tls`` is given."""
    if tls is None:
        return await exchange_raw(address, request)
    host, _, port = address.rpartition(":")
    tcp = await trio.open_tcp_stream(host, int(port))
    tls.set_alpn_protocols(["http/1.1"])
    stream = trio.SSLStream(
        tcp, tls, server_hostname="localhost", https_compatible=True
    )
    async with stream:
        await stream.send_all(request)
        return await receive_to_eof(stream)


@pytest.mark.parametrize(
    ("h2c", "tls"),
    [(False, False), (True, False), (False, True)],
    ids=["plain", "plain-with-h2c", "tls"],
)
async def test_connection_h1_refuses_a_head_over_the_limit_with_431(
    ca: trustme.CA,
    server_tls: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
    h2c: bool,
    tls: bool,
) -> None:
    # h11 refuses a head over its limit only while the head is incomplete:
    # one that came whole in one read (20 KB on loopback) was served. Under
    # TLS a read holds one TLS record, 16 KiB at most, so there it was
    # refused. The body of a refused POST is drained (fix 13).
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    post = head_of(20_000, method=b"POST", close=False)
    post = post.replace(b"X-Big", b"Content-Length: 100000\r\nX-Big", 1)
    client = client_tls(ca) if tls else None
    with trio.fail_after(10):
        async with serving(
            HttpBridge(fake), h2c=h2c, tls=server_tls if tls else None, **HEADER_LIMITS
        ) as bound:
            at_limit = await exchange(bound, head_of(HEAD_LIMIT), client)
            over = await exchange(bound, head_of(HEAD_LIMIT + 1), client)
            large = await exchange(bound, head_of(20_000), client)
            with_body = await exchange(bound, post + b"x" * 100_000, client)
            after = await exchange(bound, head_of(100), client)
    assert at_limit.startswith(b"HTTP/1.1 200 OK\r\n")
    for refused in (over, large, with_body):
        head, _, body = refused.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
        assert b"\r\nconnection: close" in head.lower()
        assert body == b""
    assert after.startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(fake.requests) == 2  # the refused heads never reached "PHP"
    assert hypercorn_trouble(caplog) == []


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
async def test_connection_h2_refuses_a_head_over_the_limit_on_its_stream_only(
    ca: trustme.CA,
    server_tls: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
    tls: bool,
) -> None:
    # h2 held the advertised limit only once the client had acknowledged
    # it, and then as a GOAWAY for the whole connection; trio_runner did
    # not pass it on at all, so 20 KB of headers were served.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    big = [("x-big", "a" * 20_000)]
    with trio.fail_after(10):
        async with (
            serving(
                HttpBridge(fake),
                h2c=True,
                tls=server_tls if tls else None,
                **HEADER_LIST_LIMITS,
            ) as bound,
            open_h2(bound, tls=client_tls(ca) if tls else None) as client,
        ):
            # A request in flight (its body still to come) on another stream.
            pending = await client.request("POST", "/", end_stream=False)
            get = await client.wait_ended(await client.request("GET", "/", big))
            post = await client.request("POST", "/", big, end_stream=False)
            refused_post = await client.wait_ended(post)
            await client.send_body(pending, b"body")
            finished = await client.wait_ended(pending)
            after = await client.wait_ended(await client.request("GET", "/"))
    assert client.settings[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE] == HEAD_LIMIT
    assert (get.status, get.body, get.reset) == (431, TOO_LARGE, None)
    assert (refused_post.status, refused_post.body) == (431, TOO_LARGE)
    assert refused_post.reset == h2.errors.ErrorCodes.NO_ERROR  # its body: unwanted
    assert (finished.status, finished.body, finished.reset) == (200, b"fine", None)
    assert (after.status, after.reset) == (200, None)
    assert client.goaway is None
    assert [request.body for request in fake.requests] == [b"body", b""]
    assert hypercorn_trouble(caplog) == []


async def test_connection_h2_measures_the_header_list_as_rfc_9113_does() -> None:
    # Each field counts its name and value plus 32 bytes, pseudo-headers
    # included: the four of a request and x-big.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake), h2c=True, **HEADER_LIST_LIMITS) as bound,
            open_h2(bound) as client,
        ):
            fixed = sum(
                len(name) + len(value) + 32
                for name, value in [
                    (":method", "GET"),
                    (":path", "/"),
                    (":scheme", "http"),
                    (":authority", bound),
                    ("x-big", ""),
                ]
            )
            sizes = [HEAD_LIMIT - fixed, HEAD_LIMIT - fixed + 1]
            answers = [
                await client.wait_ended(
                    await client.request("GET", "/", [("x-big", "a" * size)])
                )
                for size in sizes
            ]
    assert [answer.status for answer in answers] == [200, 431]


async def test_connection_h2_head_over_the_limit_is_431_for_httpx() -> None:
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(10):
        async with (
            serving(HttpBridge(fake), h2c=True, **HEADER_LIST_LIMITS) as bound,
            httpx.AsyncClient(http1=False, http2=True) as client,
        ):
            url = f"http://{bound}/"
            refused = await client.get(url, headers={"x-big": "a" * 20_000})
            after = await client.get(url)
    assert (refused.status_code, refused.http_version) == (431, "HTTP/2")
    assert refused.content == TOO_LARGE
    assert (after.status_code, after.text) == (200, "fine")
    assert len(fake.requests) == 1


async def test_connection_h2_closes_a_connection_far_past_the_header_limit(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Past four times the limit (never under 64 KiB) the header list is not
    # decoded: h2's HPACK bomb defence ends the connection with
    # ENHANCE_YOUR_CALM. The server serves on.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    with trio.fail_after(10):
        async with serving(HttpBridge(fake), h2c=True, **HEADER_LIST_LIMITS) as bound:
            async with open_h2(bound) as client:
                await client.request("GET", "/", [("x-big", "a" * 100_000)])
                with contextlib.suppress(EOFError, trio.BrokenResourceError):
                    await client.wait_for(lambda c: c.goaway is not None)
            async with open_h2(bound) as again:
                after = await again.wait_ended(await again.request("GET", "/"))
    assert client.goaway is not None
    assert client.goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert (after.status, after.body) == (200, b"fine")
    assert len(fake.requests) == 1
    assert hypercorn_trouble(caplog) == []


# Fix 17: a stream whose app is slow to take its body holds up that stream only.
async def test_connection_h2_stream_slow_to_read_its_body_holds_up_no_other() -> None:
    # hypercorn's reading task waited for room among a slow stream's pieces
    # (a few), and every other stream of the connection waited with it.
    release = trio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        if scope["path"] == "/slow":
            await release.wait()
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"%d" % size
        length = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": body})

    piece = b"x" * 1024
    with trio.fail_after(10):
        async with serving(app, h2c=True) as bound, open_h2(bound) as client:
            slow = await client.request("POST", "/slow", end_stream=False)
            for _ in range(60):  # many small frames, within the stream's window
                client.connection.send_data(slow, piece)
            await client.flush()
            other = await client.request("POST", "/other", end_stream=False)
            await client.send_body(other, b"y" * 30_000)  # needs connection credit
            beside = await client.wait_ended(other)
            # What the slow app has not taken is not credited to its stream.
            window = client.connection.local_flow_control_window(slow)
            release.set()
            await client.send_body(slow, piece * 140)  # past the window: credit
            finished = await client.wait_ended(slow)
    assert (beside.status, beside.body, beside.reset) == (200, b"30000", None)
    assert window < 65535 - 40 * 1024
    assert (finished.status, finished.body, finished.reset) == (200, b"204800", None)
    assert client.goaway is None


async def test_connection_h2_credits_held_pieces_an_app_left_unread() -> None:
    # An app that answers without reading (a 413, a file) while pieces are
    # held: dropped, they are credited still, so a client that sends its
    # whole body before reading the answer is not left without a window.
    piece = b"x" * 1024
    with trio.fail_after(10):
        async with serving(answer_unread, h2c=True) as bound, open_h2(bound) as client:
            post = await client.request("POST", "/", end_stream=False)
            for _ in range(60):
                client.connection.send_data(post, piece)
            await client.flush()
            sent = await client.send_body(post, piece * 200)
            answer = await client.wait_ended(post)
            after = await client.wait_ended(await client.request("POST", "/"))
    assert sent == len(piece) * 200
    assert (answer.status, answer.body) == (200, b"fine")
    assert (after.status, after.reset) == (200, None)
    assert client.goaway is None


# Fix 18: request heads whose framing h11 takes on trust are refused, as the
# lean server refuses them.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
FRAMING_FAULTS = {
    "cl-and-te": POST
    + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-and-cl": POST
    + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
    "two-equal-cl": POST + b"Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    "cl-list": POST + b"Content-Length: 5, 5\r\n\r\nhello",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
    "folded-cl": POST + b"Content-Length: 5\r\n\t\r\n\r\nhello",
    "bare-lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "bare-lf-once": b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    "http10-te": b"POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
    + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", FRAMING_FAULTS.values(), ids=FRAMING_FAULTS)
async def test_connection_h1_refuses_ambiguous_framing_with_400_and_closes(
    caplog: pytest.LogCaptureFixture, request_bytes: bytes
) -> None:
    # Both lengths (RFC 9112 6.1) went to the app, and so did what followed
    # the chunked body, as a second request; a repeated or listed length
    # was taken once, a folded line unfolded, a bare LF taken for CRLF. A
    # proxy in front that frames the request otherwise sees a different
    # second request.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    close = b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with trio.fail_after(10):
        async with serving(HttpBridge(fake), h2c=True) as bound:
            answer = await exchange_raw(bound, request_bytes + SMUGGLED)
            after = await exchange_raw(bound, close)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert b"\r\nconnection: close" in head.lower()
    assert body == b""  # and nothing more: the connection closed
    assert after.startswith(b"HTTP/1.1 200 OK\r\n")
    (served,) = fake.requests  # the GET on the next connection only
    assert b"/after" in served.context
    assert hypercorn_trouble(caplog) == []


@pytest.mark.parametrize(
    "chunks",
    [
        b"5\nhello\n0\n\n",
        b"5\rhello\r0\r\r",
        b"fffffffffffffffffff\r\nhello",
        b"5" * 5000,
        b"5\r\nhello\r\n0\r\nX: 1\n\r\n",
        b"5\r\nhello\r\n0\r\n\n",
    ],
    ids=[
        "bare-lf",
        "bare-cr",
        "overflow",
        "endless-size-line",
        "trailer-bare-lf",
        "last-line-bare-lf",
    ],
)
async def test_connection_h1_refuses_bad_chunked_framing_at_once(
    chunks: bytes,
) -> None:
    # h11 waited for a CRLF a bare LF never brings, or for the body of a
    # 2**76-byte chunk: the client got 408 once the body timeout ran out.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    head = POST + b"Transfer-Encoding: chunked\r\n\r\n"
    with trio.fail_after(5):
        async with serving(HttpBridge(fake), h2c=True) as bound:
            answer = await exchange_raw(bound, head + chunks)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
    assert fake.requests == []


@pytest.mark.parametrize("version", [b"HTTP/1.2", b"HTTP/2.0", b"HTTP/3.0"])
async def test_connection_h1_refuses_other_http_versions_with_505(
    version: bytes,
) -> None:
    # h11 served them all as HTTP/1.1, and the app saw http_version "2.0".
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    request = b"GET / %s\r\nHost: x\r\n\r\n" % version
    with trio.fail_after(10):
        async with serving(HttpBridge(fake), h2c=True) as bound:
            answer = await exchange_raw(bound, request + SMUGGLED)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n")
    assert b"\r\nconnection: close" in head.lower()
    assert body == b""
    assert fake.requests == []


async def test_connection_h1_still_serves_what_it_may_frame() -> None:
    # The checks of fix 18 refuse none of these.
    fake = FakeExchanger(replying(chunk(200, b"fine")))
    requests = [
        POST + b"Content-Length: 5\r\n\r\nhello",
        POST + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Note: a, b\r\n\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
    ]
    with trio.fail_after(10):
        async with serving(HttpBridge(fake), h2c=True) as bound:
            answer = await exchange_raw(bound, b"".join(requests))
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 4, answer
    assert [request.body for request in fake.requests] == [b"hello", b"hello", b"", b""]


async def test_connection_h2c_upgrade_request_loses_its_hop_by_hop_headers() -> None:
    # Fix 19: served over HTTP/2, the upgrade request kept Connection,
    # Upgrade and HTTP2-Settings, which RFC 9113 8.2.2 forbids there.
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await acknowledge_lifespan(receive, send)
            return
        seen.append(scope)
        length = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": b"fine"})

    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    settings = client.initiate_upgrade_connection()
    request = (
        b"GET /first HTTP/1.1\r\nHost: x\r\nX-Kept: yes\r\n"
        b"Connection: Upgrade, HTTP2-Settings, X-Hop\r\nX-Hop: 1\r\n"
        b"Keep-Alive: timeout=5\r\nUpgrade: h2c\r\nHTTP2-Settings: %s\r\n\r\n"
    ) % settings
    events: list[h2.events.Event] = []
    with trio.fail_after(10):
        async with serving(app, h2c=True) as bound:
            host, _, port = bound.rpartition(":")
            async with await trio.open_tcp_stream(host, int(port)) as stream:
                await stream.send_all(request)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += await stream.receive_some(65536)
                switched, _, data = data.partition(b"\r\n\r\n")
                await stream.send_all(client.data_to_send())
                while not any(isinstance(e, h2.events.StreamEnded) for e in events):
                    events += client.receive_data(data)
                    await stream.send_all(client.data_to_send())
                    data = await stream.receive_some(65536)
    assert switched.startswith(b"HTTP/1.1 101 ")
    (scope,) = seen
    assert (scope["http_version"], scope["path"]) == ("2", "/first")
    names = {name for name, _ in scope["headers"]}
    assert {b"host", b"x-kept"} <= names
    hop = {b"connection", b"upgrade", b"http2-settings", b"keep-alive", b"x-hop"}
    assert names & hop == set()
    body = b"".join(e.data for e in events if isinstance(e, h2.events.DataReceived))
    assert body == b"fine"


WEBSOCKET = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
)


@pytest.mark.parametrize(
    "after",
    [
        b"\r\n",
        b"\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
        b"Content-Length: 5\r\n\r\nhello",
    ],
)
async def test_connection_refuses_a_websocket_once_whatever_follows_its_head(
    caplog: pytest.LogCaptureFixture, after: bytes
) -> None:
    # Fix 20: bytes before the handshake's answer made hypercorn answer 400
    # while the bridge answered 403, and the second response failed in h11.
    with trio.fail_after(10):
        async with serving(HttpBridge(FakeExchanger())) as bound:
            data = await exchange_raw(bound, WEBSOCKET + after)
    assert data.startswith(b"HTTP/1.1 403 ")
    assert data.count(b"HTTP/1.1") == 1
    assert hypercorn_trouble(caplog) == []
