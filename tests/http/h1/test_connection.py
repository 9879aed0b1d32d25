"""One lean-server connection over memory streams: order, limits, deadlines.

Timed behaviour runs on trio's autojump clock: a deadline passes as soon as
every task waits, with no real sleep.

Past 600 lines: one file for ``trio_runner/http/h1/connection.py``, whose
rules (ordering, half-close, deadlines, limits) share the same helpers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import h11
import pytest
import trio
import trio.testing

from trio_runner.http.access import log_access
from trio_runner.http.asgi import (
    DISCONNECT_EXTENSION,
    NO_BODY_EXTENSION,
    Message,
    Receive,
    Scope,
    Send,
)
from trio_runner.http.h1.connection import H1Connection, H1Limits, watch_deadlines

App = Callable[[Scope, Receive, Send], Any]


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers with what it saw: method, path, query, headers, body."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message["body"]
        if not message["more_body"]:
            break
    seen = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode(),
        "query": scope["query_string"].decode(),
        "version": scope["http_version"],
        "headers": [[n.decode(), v.decode()] for n, v in scope["headers"]],
        "client": list(scope["client"]),
        "body": body.decode(),
    }
    data = json.dumps(seen).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": data})


@asynccontextmanager
async def connection(
    app: App = echo, **limits: Any
) -> AsyncIterator[tuple[trio.abc.Stream, H1Connection]]:
    client, server = trio.testing.memory_stream_pair()
    settings = H1Limits(**limits)
    conn = H1Connection(
        app,
        server,
        client=("127.0.0.1", 40000),
        server=("127.0.0.1", 80),
        limits=settings,
        date_header=False,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.serve)
        nursery.start_soon(watch_deadlines, {conn}, settings)
        yield client, conn
        nursery.cancel_scope.cancel()


async def read_until_closed(stream: trio.abc.Stream) -> bytes:
    data = b""
    while chunk := await stream.receive_some(65536):
        data += chunk
    return data


def responses(
    data: bytes, methods: list[str]
) -> list[tuple[int, dict[bytes, bytes], bytes]]:
    """The responses in ``data``, one per method, parsed by h11."""
    client = h11.Connection(h11.CLIENT)
    client.receive_data(data)
    found = []
    for method in methods:
        client.send(h11.Request(method=method, target="/", headers=[("Host", "h")]))
        client.send(h11.EndOfMessage())
        status, headers, body = 0, {}, b""
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:
                raise AssertionError(f"unexpected {event!r}")
        found.append((status, headers, body))
        if client.our_state is h11.MUST_CLOSE or client.their_state is h11.MUST_CLOSE:
            break
        client.start_next_cycle()
    return found


async def test_connection_serves_keep_alive_and_pipelined_requests_in_order() -> None:
    async with connection() as (client, _):
        await client.send_all(
            b"GET /one?a=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /three HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(client)
    answers = responses(data, ["GET", "POST", "GET"])
    seen = [json.loads(body) for _, _, body in answers]
    assert [s["path"] for s in seen] == ["/one", "/two", "/three"]
    assert seen[0]["query"] == "a=1" and seen[1]["body"] == "abc"
    assert seen[0]["client"] == ["127.0.0.1", 40000]
    assert answers[2][1][b"connection"] == b"close"


async def test_connection_gives_the_app_a_scope_as_hypercorn_does() -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    async with connection(app) as (client, _):
        await client.send_all(
            b"GET /a%2Fb%20c?q=%20 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n"
            b"Connection: close\r\n\r\n"
        )
        await read_until_closed(client)
    scope = scopes[0]
    assert scope["type"] == "http" and scope["asgi"]["version"] == "3.0"
    assert (scope["http_version"], scope["method"], scope["scheme"]) == (
        "1.1",
        "GET",
        "http",
    )
    assert scope["path"] == "/a/b c" and scope["raw_path"] == b"/a%2Fb%20c"
    assert scope["query_string"] == b"q=%20" and scope["root_path"] == ""
    assert scope["headers"] == [
        (b"host", b"h"),
        (b"x-a", b"1"),
        (b"connection", b"close"),
    ]
    assert scope["server"] == ("127.0.0.1", 80)
    assert DISCONNECT_EXTENSION in scope["extensions"]


@pytest.mark.parametrize(
    ("framing", "bodyless"),
    [
        (b"", True),
        (b"Content-Length: 0\r\n", True),
        (b"Content-Length: 2\r\n", False),
        (b"Transfer-Encoding: chunked\r\n", False),
    ],
)
async def test_connection_marks_requests_that_have_no_body(
    framing: bytes, bodyless: bool
) -> None:
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    body = b"" if bodyless else b"hi"
    if framing.startswith(b"Transfer"):
        body = b"2\r\nhi\r\n0\r\n\r\n"
    async with connection(app) as (client, _):
        await client.send_all(
            b"POST / HTTP/1.1\r\nHost: h\r\n"
            + framing
            + b"Connection: close\r\n\r\n"
            + body
        )
        data = await read_until_closed(client)
    assert (NO_BODY_EXTENSION in scopes[0]["extensions"]) is bodyless
    seen = json.loads(data.partition(b"\r\n\r\n")[2])
    assert seen["body"] == ("" if bodyless else "hi")


async def test_connection_http10_closes_after_its_response() -> None:
    async with connection() as (client, _):
        await client.send_all(b"GET /old HTTP/1.0\r\n\r\n")
        data = await read_until_closed(client)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"connection: close\r\n" in data
    assert json.loads(data.partition(b"\r\n\r\n")[2])["version"] == "1.0"


async def test_connection_sends_100_continue_when_the_app_reads_the_body() -> None:
    async with connection() as (client, _):
        await client.send_all(
            b"PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n"
        )
        interim = await client.receive_some(65536)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        await client.send_all(b"hello")
        data = await client.receive_some(65536)
    assert json.loads(data.partition(b"\r\n\r\n")[2])["body"] == "hello"


async def test_connection_answers_without_100_and_closes_when_the_body_is_unread() -> (
    None
):
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    async with connection(refuse) as (client, _):
        await client.send_all(
            b"PUT /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
            b"Content-Length: 100000\r\n\r\n"
        )
        data = await read_until_closed(client)
    assert data.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in data
    assert b"connection: close\r\n" in data


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
            b"Content-Length: 2\r\n\r\n",
            400,
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\nBig: " + b"x" * 5000 + b"\r\n\r\n", 431),
    ],
    ids=["cl-and-te", "two-cl", "bad-chunk", "too-large"],
)
async def test_connection_answers_framing_errors_and_closes(
    request_bytes: bytes, status: int
) -> None:
    async with connection(max_header_size=4096) as (client, _):
        await client.send_all(request_bytes)
        data = await read_until_closed(client)
    assert data.startswith(f"HTTP/1.1 {status} ".encode())
    assert b"connection: close\r\n" in data


async def test_connection_never_sends_a_body_for_head() -> None:
    async with connection() as (client, _):
        await client.send_all(
            b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(client)
    head, get = responses(data, ["HEAD", "GET"])
    assert head[2] == b"" and json.loads(get[2])["method"] == "GET"


async def test_connection_streams_a_response_in_chunks() -> None:
    async def stream(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async with connection(stream) as (client, _):
        await client.send_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        data = await read_until_closed(client)
    [(status, headers, body)] = responses(data, ["GET"])
    assert (status, headers[b"transfer-encoding"], body) == (200, b"chunked", b"abc")


async def test_connection_sends_early_hints_over_http11() -> None:
    async def hints(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]}
        )
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async with connection(hints) as (client, _):
        await client.send_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        data = await read_until_closed(client)
    assert data.startswith(
        b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"
    )
    assert data.endswith(b"ok")


async def test_connection_answers_500_when_the_app_fails_or_says_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def fails(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("bug in the app")

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        pass

    for app in (fails, silent):
        async with connection(app) as (client, _):
            await client.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            data = await read_until_closed(client)
        assert data.startswith(b"HTTP/1.1 500 ")
    assert "bug in the app" in caplog.text


async def send_part_of_a_body_and_leave(client: trio.abc.Stream) -> None:
    """3 of a body's 9 bytes, then the client closes (while the app waits)."""
    await client.send_all(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc")
    await trio.testing.wait_all_tasks_blocked()
    await client.aclose()


async def test_connection_tells_the_app_when_the_client_leaves_mid_request() -> None:
    left = trio.Event()
    messages: list[Message] = []

    async def slow(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"][DISCONNECT_EXTENSION]["subscribe"](left.set)
        messages.append(await receive())  # the part of the body that came
        messages.append(await receive())  # then only the leaving

    async with connection(slow) as (client, conn):
        await send_part_of_a_body_and_leave(client)
        with trio.fail_after(1):
            await left.wait()
    assert messages[1] == {"type": "http.disconnect"}
    assert conn.gone


async def test_connection_cancels_an_app_that_asks_when_its_client_leaves() -> None:
    # subscribe(callback, cancel=True): the app's call is cancelled where
    # it waits (here on something that is not the connection at all).
    left = trio.Event()
    cancelled = trio.Event()

    async def waits(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"][DISCONNECT_EXTENSION]["subscribe"](left.set, cancel=True)
        await receive()  # the part of the body that came
        try:
            await trio.sleep_forever()
        except trio.Cancelled:
            cancelled.set()
            raise

    async with connection(waits) as (client, conn):
        await send_part_of_a_body_and_leave(client)
        # Noticed by the reader, which a request that runs starts within a
        # tick of watch_deadlines (a second).
        with trio.fail_after(3):
            await left.wait()
            await cancelled.wait()
    assert conn.gone


async def test_connection_answers_a_bad_chunk_without_cancelling_the_app() -> None:
    # A framing error inside the body: the app hears the client is gone for
    # reading, but its call is not cancelled, and the client gets its 400.
    called: list[str] = []

    async def reads(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"][DISCONNECT_EXTENSION]["subscribe"](
            lambda: called.append("left"), cancel=True
        )
        while (await receive())["type"] != "http.disconnect":
            pass
        await trio.lowlevel.checkpoint()  # a cancelled call would end here
        called.append("returned")

    assert (await send_a_bad_chunk(reads)).startswith(b"HTTP/1.1 400 ")
    assert called == ["left", "returned"]


async def send_a_bad_chunk(app: App) -> bytes:
    """What ``app``'s server answers to a chunked body with a bad chunk size."""
    async with connection(app) as (client, _):
        await client.send_all(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n3\r\nabc\r\nzz\r\n"
        )
        with trio.fail_after(2):
            return await read_until_closed(client)


async def test_access_log_gives_the_status_the_server_answered_for_the_app(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The app heard the client leave for reading (a bad chunk); the client
    # got the server's 400, and that is what the log says, not 499.
    with caplog.at_level("INFO", logger="trio_runner.access"):
        data = await send_a_bad_chunk(partial(log_access, echo))
    assert data.startswith(b"HTTP/1.1 400 ")
    [record] = [r for r in caplog.records if r.name == "trio_runner.access"]
    assert record.status == 400  # type: ignore[attr-defined]


async def test_access_log_counts_only_the_bytes_written_before_the_client_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed = trio.Event()
    done = trio.Event()

    async def two_pieces(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a" * 10, "more_body": True})
        await closed.wait()
        await send({"type": "http.response.body", "body": b"b" * 1000})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await log_access(two_pieces, scope, receive, send)
        finally:
            done.set()

    with caplog.at_level("INFO", logger="trio_runner.access"):
        async with connection(app) as (client, _):
            await client.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
            with trio.fail_after(2):
                assert b"aaaaaaaaaa" in await client.receive_some(65536)
                await client.aclose()
                closed.set()
                await done.wait()
    [record] = [r for r in caplog.records if r.name == "trio_runner.access"]
    assert record.status == 200  # type: ignore[attr-defined]
    assert record.bytes == 10  # type: ignore[attr-defined]


async def test_connection_answers_431_to_endless_trailers() -> None:
    async def reads(scope: Scope, receive: Receive, send: Send) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async with connection(reads, max_header_size=4096) as (client, _):
        await client.send_all(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
            b"\r\n3\r\nabc\r\n0\r\nX-Trailer: "
        )
        with trio.fail_after(2):
            for _ in range(10):
                await client.send_all(b"a" * 1000)
            data = await read_until_closed(client)
    assert data.startswith(b"HTTP/1.1 431 ")
    assert b"trailers are too large" in data


async def test_connection_notices_a_client_gone_after_its_request_on_writing() -> None:
    # The end of input after a complete request may be a half-close, so
    # the app goes on; the write that fails is what tells it.
    left = trio.Event()
    wrote = trio.Event()
    disconnects: list[Message] = []

    async def streams(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"][DISCONNECT_EXTENSION]["subscribe"](left.set)
        await receive()  # the (empty) body
        await wrote.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        disconnects.append(await receive())

    async with connection(streams) as (client, conn):
        await client.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        await client.aclose()
        await trio.testing.wait_all_tasks_blocked()
        assert not left.is_set() and not conn.gone
        wrote.set()
        with trio.fail_after(1):
            await left.wait()
    assert disconnects == [{"type": "http.disconnect"}]
    assert conn.gone


async def test_connection_answers_a_client_that_half_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()
    calls: list[str] = []

    async def waits(scope: Scope, receive: Receive, send: Send) -> None:
        calls.append(scope["path"])
        await release.wait()
        await echo(scope, receive, send)

    async with connection(waits) as (client, conn):
        await client.send_all(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        await client.send_eof()
        await trio.sleep(5)  # a long request: the reader watches, sees the EOF
        assert not conn.gone
        release.set()
        with trio.fail_after(1):
            data = await read_until_closed(client)
    ((status, headers, body),) = responses(data, ["GET"])
    assert status == 200 and json.loads(body)["path"] == "/slow"
    assert headers[b"connection"] == b"close"  # the end of input came first
    assert calls == ["/slow"]


async def test_connection_answers_pipelined_requests_then_a_half_close_in_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def slow_first(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/one":
            await trio.sleep(5)  # long enough for the reader to see the EOF
        await echo(scope, receive, send)

    async with connection(slow_first) as (client, _):
        await client.send_all(
            b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n"
            b"POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        )
        await client.send_eof()
        with trio.fail_after(10):
            data = await read_until_closed(client)
    answers = responses(data, ["GET", "POST"])
    assert [json.loads(body)["path"] for _, _, body in answers] == ["/one", "/two"]
    assert json.loads(answers[1][2])["body"] == "abc"
    assert b"connection" not in answers[0][1]  # another request followed
    assert answers[1][1][b"connection"] == b"close"


@pytest.mark.parametrize(
    "cut",
    [
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\nHo",
    ],
    ids=["length", "chunked", "pipelined-head"],
)
async def test_connection_half_closed_mid_request_is_the_client_leaving(
    cut: bytes,
) -> None:
    seen: list[Message] = []

    async def reads(scope: Scope, receive: Receive, send: Send) -> None:
        while (message := await receive())["type"] != "http.disconnect":
            seen.append(message)
        seen.append(message)

    async with connection(reads) as (client, conn):
        await client.send_all(cut)
        await client.send_eof()
        with trio.fail_after(1):
            data = await read_until_closed(client)
    assert data == b""
    assert seen[-1] == {"type": "http.disconnect"}
    assert conn.gone


async def test_connection_reads_a_body_only_as_far_as_the_app_asks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    taken = trio.Event()

    async def reads_one(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        taken.set()
        await trio.sleep(10)

    # Lockstep: a send returns only once the server has read it.
    client, server = trio.testing.lockstep_stream_pair()
    sent = 0
    conn = H1Connection(
        reads_one,
        server,
        client=None,
        server=None,
        limits=H1Limits(),
        date_header=False,
    )
    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.serve)
        await client.send_all(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000000\r\n\r\n"
        )

        async def flood() -> None:
            nonlocal sent
            while True:
                await client.send_all(b"x" * 65536)
                sent += 65536

        nursery.start_soon(flood)
        await taken.wait()
        await trio.testing.wait_all_tasks_blocked()
        assert sent < 1024 * 1024  # of the 100 MB announced
        nursery.cancel_scope.cancel()


async def test_connection_reads_only_so_far_ahead_of_a_client_that_never_reads(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # A client pipelining requests and reading no answer: once the first
    # answer cannot be written, the reader reads on only to a few queued
    # requests; the rest wait in the client (TCP), not in server memory.
    request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    batch = 100
    client, server = trio.testing.lockstep_stream_pair()
    conn = H1Connection(
        echo,
        server,
        client=None,
        server=None,
        limits=H1Limits(),
        date_header=False,
    )
    sent = 0

    async def flood() -> None:
        nonlocal sent
        for _ in range(100):
            await client.send_all(request * batch)
            sent += batch

    async with trio.open_nursery() as nursery:
        nursery.start_soon(conn.serve)
        nursery.start_soon(watch_deadlines, {conn}, H1Limits())
        nursery.start_soon(flood)
        await trio.sleep(5)  # ticks of watch_deadlines: the reader runs
        await trio.testing.wait_all_tasks_blocked()
        assert sent <= 2 * batch  # of the 10,000 requests it would send
        assert conn._parser.heads_queued <= 2 * batch
        nursery.cancel_scope.cancel()


async def test_connection_closes_an_idle_keep_alive_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with connection(idle_timeout=5) as (client, _):
        await client.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        start = trio.current_time()
        data = await read_until_closed(client)
        waited = trio.current_time() - start
    assert data.startswith(b"HTTP/1.1 200 ") and data.count(b"HTTP/1.1") == 1
    assert 5 <= waited <= 7


@pytest.mark.parametrize(
    ("sent", "answer"),
    [(b"", b""), (b"GET / HTTP/1.1\r\nHo", b"HTTP/1.1 408 ")],
    ids=["nothing", "part-of-a-head"],
)
async def test_connection_header_deadline_closes_slow_clients(
    autojump_clock: trio.testing.MockClock, sent: bytes, answer: bytes
) -> None:
    async with connection(read_header_timeout=3, idle_timeout=100) as (client, _):
        await client.send_all(sent)
        start = trio.current_time()
        data = await read_until_closed(client)
        waited = trio.current_time() - start
    assert data.startswith(answer)
    assert 3 <= waited <= 5


async def test_connection_header_deadline_runs_from_a_later_requests_first_byte(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with connection(read_header_timeout=3, idle_timeout=100) as (client, _):
        await client.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await client.receive_some(65536)
        await trio.sleep(50)  # idle, within idle_timeout
        await client.send_all(b"GET / HT")
        start = trio.current_time()
        data = await read_until_closed(client)
        waited = trio.current_time() - start
    assert data.startswith(b"HTTP/1.1 408 ")
    assert 3 <= waited <= 5


async def test_connection_closes_when_a_body_stops_coming(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[Message] = []

    async def reads(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        seen.append(await receive())

    async with connection(reads, idle_timeout=4) as (client, _):
        await client.send_all(
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9\r\n\r\nabc"
        )
        await read_until_closed(client)
    assert seen[0] == {"type": "http.request", "body": b"abc", "more_body": True}
    assert seen[1] == {"type": "http.disconnect"}


async def test_connection_shutdown_closes_idle_at_once_and_busy_after_the_response(
    autojump_clock: trio.testing.MockClock,
) -> None:
    release = trio.Event()

    async def waits(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            await release.wait()
        await echo(scope, receive, send)

    async with (
        connection(waits) as (idle, idle_conn),
        connection(waits) as (busy, busy_conn),
    ):
        await idle.send_all(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
        await idle.receive_some(65536)
        await busy.send_all(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        await trio.testing.wait_all_tasks_blocked()
        idle_conn.shutdown()
        busy_conn.shutdown()
        with trio.fail_after(1):
            assert await read_until_closed(idle) == b""
        release.set()
        data = await read_until_closed(busy)
    assert data.startswith(b"HTTP/1.1 200 ") and b"connection: close\r\n" in data


async def test_connection_refuses_websocket_upgrades_through_the_app() -> None:
    messages: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "websocket"
        messages.append(await receive())
        await send({"type": "websocket.close", "code": 1000})

    async with connection(app) as (client, _):
        await client.send_all(
            b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        data = await read_until_closed(client)
    assert messages == [{"type": "websocket.connect"}]
    assert data.startswith(b"HTTP/1.1 403 ")


async def test_connection_serves_an_h2c_upgrade_request_over_http11() -> None:
    async with connection() as (client, _):
        await client.send_all(
            b"GET /up HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
            b"GET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(client)
    paths = [json.loads(body)["path"] for _, _, body in responses(data, ["GET", "GET"])]
    assert paths == ["/up", "/next"]


@pytest.mark.parametrize("upgrade", [b"h2c", b"websocket", b"foo"])
async def test_connection_gives_an_upgrade_request_its_body_not_a_new_request(
    upgrade: bytes,
) -> None:
    # The bytes of the body are a request of their own: run as one, they
    # would pass a proxy that forwards Upgrade and filters paths.
    inner = b"GET /smuggled HTTP/1.1\r\nHost: internal\r\n\r\n"
    async with connection() as (client, _):
        await client.send_all(
            b"POST /public HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\n"
            b"Upgrade: %s\r\nContent-Length: %d\r\n\r\n%s"
            % (upgrade, len(inner), inner)
            + b"GET /next HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        )
        data = await read_until_closed(client)
    seen = [json.loads(body) for _, _, body in responses(data, ["POST", "GET"])]
    assert [s["path"] for s in seen] == ["/public", "/next"]
    assert seen[0]["body"] == inner.decode()


async def test_connection_answers_connect_501_without_the_app() -> None:
    # A 2xx to CONNECT would turn the connection into a tunnel; this is no
    # proxy, so the app never sees one (as on the hypercorn side).
    scopes: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    async with connection(app) as (client, _):
        await client.send_all(
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        )
        data = await read_until_closed(client)
    assert data.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert data.endswith(b"CONNECT is not supported: this server is not a proxy.\n")
    assert scopes == []
