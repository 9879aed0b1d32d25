"""The ASGI bridge with a fake pool: request context, early refusals (413,
400 for a bad Host or target), responses and failures.

Past 600 lines: one file for ``trio_runner/http/bridge.py``, as each
module under test has one; the refusals each need their own small case.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable

import pytest
import trio
import trio.testing

from tests.http.fakes import (
    Client,
    FakeExchanger,
    Last,
    Reply,
    chunk,
    failing,
    http_scope,
    replying,
)
from tests.http.hosts import BAD_HOSTS, GOOD_HOSTS
from trio_runner.config.model import HttpConfig, PoolConfig
from trio_runner.errors import (
    ConfigError,
    InternalError,
    NoFreeWorkers,
    PoolClosed,
    QueueFull,
    SoftError,
    TrioRunnerError,
    WorkerCrashed,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.http import ContextCodec, HttpBridge
from trio_runner.http.asgi import DISCONNECT_EXTENSION, Message, Scope
from trio_runner.http.proto import http_pb2
from trio_runner.protocol import Payload

MB = 1024 * 1024


async def call(
    bridge: HttpBridge, scope: Scope | None = None, client: Client | None = None
) -> Reply:
    reply = Reply()
    with trio.fail_after(5):
        await bridge(scope or http_scope(), (client or Client()).receive, reply.send)
    return reply


async def test_bridge_sends_request_and_writes_response() -> None:
    fake = FakeExchanger(replying(chunk(201, b"hello", Content_Type=[b"text/plain"])))
    scope = http_scope(
        "POST", "/form", query=b"a=1", headers=[(b"host", b"h"), (b"x-y", b"z")]
    )
    reply = await call(HttpBridge(fake), scope, Client([b"ab", b"cd"]))

    assert reply.status == 201
    assert reply.headers == [
        (b"content-type", b"text/plain"),
        (b"content-length", b"5"),
    ]
    assert reply.body == b"hello"
    assert reply.complete
    [sent] = fake.requests
    assert sent.codec == 0x80
    assert sent.body == b"abcd"
    context = http_pb2.Request.FromString(sent.context)
    assert (context.method, context.uri) == ("POST", "http://h/form?a=1")
    assert list(context.header["X-Y"].value) == [b"z"]


async def test_bridge_json_codec_sends_json_context_with_flag_0x08() -> None:
    fake = FakeExchanger()
    await call(HttpBridge(fake, codec="json"))
    [sent] = fake.requests
    assert sent.codec == 0x08
    assert json.loads(sent.context)["uri"] == "http://localhost/"


async def test_bridge_accepts_legacy_json_response_with_flags_0() -> None:
    context = b'{"status":202,"headers":{"X-Legacy":["yes"]}}'
    fake = FakeExchanger(replying(Payload(context, b"old", 0)))
    reply = await call(HttpBridge(fake))
    assert (reply.status, reply.header(b"x-legacy"), reply.body) == (
        202,
        [b"yes"],
        b"old",
    )


async def test_bridge_empty_context_means_200_without_headers() -> None:
    reply = await call(HttpBridge(FakeExchanger(replying(Payload(b"", b"body")))))
    assert (reply.status, reply.body) == (200, b"body")
    assert reply.headers == [(b"content-length", b"4")]


async def test_bridge_sends_each_set_cookie_on_its_own_line() -> None:
    cookies = [b"a=1; Path=/", b"b=2; HttpOnly", b"c=3"]
    fake = FakeExchanger(replying(chunk(200, b"", Set_Cookie=cookies)))
    reply = await call(HttpBridge(fake))
    assert reply.header(b"set-cookie") == cookies


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
async def test_bridge_head_and_options_send_php_no_body(method: str) -> None:
    fake = FakeExchanger(replying(chunk(200, b"page", Content_Length=[b"4"])))
    client = Client([b"ignored"])
    reply = await call(HttpBridge(fake), http_scope(method), client)
    assert fake.requests[0].body == b""
    assert reply.status == 200
    assert reply.body == (b"" if method == "HEAD" else b"page")
    assert reply.header(b"content-length") == [b"4"]
    assert reply.complete


@pytest.mark.parametrize("status", [204, 304])
async def test_bridge_sends_no_body_with_204_and_304(status: int) -> None:
    fake = FakeExchanger(replying(chunk(status, b"stray body")))
    reply = await call(HttpBridge(fake))
    assert (reply.status, reply.body, reply.complete) == (status, b"", True)


@pytest.mark.parametrize("status", [0, 99, 600, 1000, -200])
async def test_bridge_refuses_status_outside_100_599(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeExchanger(replying(chunk(status, b"secret", X_Php=[b"1"])))
    reply = await call(HttpBridge(fake), http_scope("PUT", "/orders/7"))
    assert reply.status == 500
    assert reply.body == b"Internal Server Error\n"
    assert reply.header(b"x-php") == []
    [record] = [r for r in caplog.records if r.name == "trio_runner.http.writer"]
    assert record.getMessage() == (
        f"PUT /orders/7: the PHP worker sent status {status}, outside 100-599; "
        "answering 500"
    )


async def test_bridge_refuses_undecodable_context(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeExchanger(replying(Payload(b"{broken", b"x", 0x08)))
    reply = await call(HttpBridge(fake))
    assert (reply.status, reply.complete) == (500, True)
    assert "not valid JSON" in caplog.text
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


async def test_bridge_debug_explains_a_bad_status() -> None:
    fake = FakeExchanger(replying(chunk(700)))
    reply = await call(HttpBridge(fake, debug=True))
    assert reply.body == b"The PHP worker sent an invalid status: 700\n"


async def test_bridge_skips_1xx_chunks() -> None:
    early = chunk(103, b"", Link=[b"</a.css>; rel=preload"])
    fake = FakeExchanger(replying(early, chunk(200, b"final", X_Final=[b"1"])))
    reply = await call(HttpBridge(fake))
    assert reply.status == 200
    assert reply.headers == [(b"x-final", b"1"), (b"content-length", b"5")]
    assert reply.body == b"final"


async def test_bridge_answers_200_when_php_sends_only_1xx() -> None:
    reply = await call(HttpBridge(FakeExchanger(replying(chunk(100)))))
    assert (reply.status, reply.body, reply.complete) == (200, b"", True)


async def test_bridge_streams_chunks_as_they_arrive() -> None:
    first_sent = trio.Event()

    async def script(payload: Payload) -> AsyncGenerator[Payload, None]:
        yield chunk(200, b"one", X_Stream=[b"1"])
        await first_sent.wait()  # deadlocks if the bridge held chunk one back
        yield chunk(500, b"two", X_Ignored=[b"1"])
        yield chunk(200, b"")
        yield Payload(b"", b"three")
        yield Payload()  # the empty frame that ends a cancelled stream

    def on_send(message: Message) -> None:
        if message.get("body") == b"one":
            first_sent.set()

    reply = Reply(on_send=on_send)
    with trio.fail_after(5):
        await HttpBridge(FakeExchanger(script))(
            http_scope(), Client().receive, reply.send
        )

    assert reply.status == 200  # from the first chunk only
    assert reply.headers == [(b"x-stream", b"1")]
    assert reply.messages[1:] == [
        {"type": "http.response.body", "body": b"one", "more_body": True},
        {"type": "http.response.body", "body": b"two", "more_body": True},
        {"type": "http.response.body", "body": b"three", "more_body": True},
        {"type": "http.response.body", "body": b""},
    ]


async def test_bridge_whole_response_is_one_body_message() -> None:
    fake = FakeExchanger(replying(chunk(200, b"whole")))
    reply = await call(HttpBridge(fake))
    bodies = [m for m in reply.messages if m["type"] == "http.response.body"]
    assert bodies == [{"type": "http.response.body", "body": b"whole"}]


async def test_bridge_head_announces_the_length_php_wrote() -> None:
    fake = FakeExchanger(replying(chunk(200, b"eleven byte")))
    reply = await call(HttpBridge(fake), http_scope("HEAD"))
    assert (reply.status, reply.body) == (200, b"")
    assert reply.header(b"content-length") == [b"11"]


async def test_bridge_no_length_for_204_and_304() -> None:
    for status in (204, 304):
        reply = await call(HttpBridge(FakeExchanger(replying(chunk(status, b"x")))))
        assert (reply.status, reply.body) == (status, b"")
        assert reply.header(b"content-length") == []


async def test_bridge_streamed_head_drains_without_body() -> None:
    fake = FakeExchanger(replying(chunk(200, b"a"), chunk(200, b"b")))
    reply = await call(HttpBridge(fake), http_scope("HEAD"))
    assert (reply.status, reply.body, reply.complete) == (200, b"", True)
    assert not fake.left_early


RETRY = [(b"retry-after", b"1"), (b"no-workers", b"true")]
GENERIC = b"Internal Server Error\n"
CRASHED = b"The PHP worker failed while handling the request.\n"
TIMED_OUT = b"The request took too long and was stopped.\n"
NO_WORKER = b"No PHP worker is free; retry shortly.\n"
CLOSED = b"The server is shutting down.\n"
NO_START = b"Could not start a PHP worker.\n"


@pytest.mark.parametrize(
    ("error", "status", "body", "extra"),
    [
        (SoftError("Fatal: /srv/app.php:3", pid=41), 500, GENERIC, []),
        (WorkerCrashed("EOF from worker", pid=41), 500, CRASHED, []),
        (WorkerTimeout("exec_ttl 1s", pid=41), 504, TIMED_OUT, []),
        (NoFreeWorkers("allocate_timeout"), 503, NO_WORKER, RETRY),
        (QueueFull("max_queue_size"), 503, NO_WORKER, RETRY),
        (PoolClosed("closing"), 503, CLOSED, []),
        (WorkerStartError("exit 255", pid=41, output="Parse error"), 500, NO_START, []),
    ],
)
@pytest.mark.parametrize("where", ["refused", "first_chunk"])
async def test_bridge_maps_pool_errors(
    error: TrioRunnerError,
    status: int,
    body: bytes,
    extra: list[tuple[bytes, bytes]],
    where: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if where == "refused":
        fake = FakeExchanger(refuse=error)
    else:
        fake = FakeExchanger(failing(error))
    reply = await call(HttpBridge(fake))

    assert reply.status == status
    assert reply.body == body
    assert reply.headers == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    assert reply.complete
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.__dict__["pid"] == getattr(error, "pid", None)
    assert str(error) in record.getMessage()


async def test_bridge_soft_error_uses_internal_error_code_and_debug_text() -> None:
    fake = FakeExchanger(failing(SoftError("Uncaught Exception: boom", pid=3)))
    reply = await call(HttpBridge(fake, internal_error_code=502))
    assert (reply.status, reply.body) == (502, b"Bad Gateway\n")
    reply = await call(HttpBridge(fake, debug=True))
    assert (reply.status, reply.body) == (500, b"Uncaught Exception: boom")


async def test_bridge_internal_error_is_500_and_logged_at_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reply = await call(HttpBridge(FakeExchanger(refuse=InternalError("bug"))))
    assert reply.status == 500
    assert caplog.records[0].levelno == logging.ERROR


@pytest.mark.parametrize(
    "error",
    [
        WorkerTimeout("exec_ttl", pid=9),
        WorkerCrashed("closed its relay while streaming", pid=9),
        SoftError("generator failed", pid=9),  # PHP's body threw mid-stream
    ],
    ids=type,
)
async def test_bridge_error_mid_stream_truncates_the_response(
    caplog: pytest.LogCaptureFixture, error: TrioRunnerError
) -> None:
    fake = FakeExchanger(failing(error, chunk(200, b"part")))
    reply = await call(HttpBridge(fake))
    assert reply.status == 200
    assert reply.body == b"part"
    assert not reply.complete  # the server closes the connection: truncated
    assert caplog.records[0].__dict__["pid"] == 9
    message = caplog.records[0].getMessage()
    assert str(error) in message
    assert message.endswith("(mid-response: the client gets it cut short)")


async def test_bridge_refuses_declared_oversized_body_before_reading() -> None:
    fake = FakeExchanger()
    scope = http_scope(
        "POST", headers=[(b"host", b"h"), (b"content-length", str(MB + 1).encode())]
    )
    client = Client([b"x"])
    reply = await call(HttpBridge(fake, max_request_size=1), scope, client)
    assert reply.status == 413
    assert reply.body == b"The request body is larger than the limit of 1 MB.\n"
    assert fake.requests == []
    assert client.received == 0


async def test_bridge_refuses_oversized_streamed_body() -> None:
    fake = FakeExchanger()
    client = Client([b"x" * (MB // 2)] * 3)
    reply = await call(HttpBridge(fake, max_request_size=1), http_scope("POST"), client)
    assert reply.status == 413
    assert fake.requests == []


async def test_bridge_accepts_body_at_the_limit_and_any_body_without_one() -> None:
    fake = FakeExchanger()
    body = [b"x" * (MB // 2)] * 2
    reply = await call(
        HttpBridge(fake, max_request_size=1), http_scope("PUT"), Client(body)
    )
    assert reply.status == 200
    assert len(fake.requests[0].body) == MB
    reply = await call(
        HttpBridge(fake, max_request_size=0), http_scope("PUT"), Client(body * 2)
    )
    assert reply.status == 200
    assert len(fake.requests[1].body) == 2 * MB


async def test_bridge_answers_408_when_the_body_stops_arriving(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExchanger()
    client = Client([b"abc"], finished=False)  # then nothing, and no hang-up
    bridge = HttpBridge(fake, body_timeout=30)
    reply = Reply()
    began = trio.current_time()
    with trio.fail_after(60):
        await bridge(http_scope("POST"), client.receive, reply.send)
    assert trio.current_time() - began == pytest.approx(30)
    assert reply.status == 408
    assert reply.body == b"The request body stopped arriving: nothing came for 30 s.\n"
    assert (b"connection", b"close") in reply.headers
    assert fake.requests == []


async def test_bridge_lets_a_slow_body_through_while_it_keeps_coming(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExchanger()
    pieces = iter([b"ab"] * 10)

    async def receive() -> Message:
        await trio.sleep(25)  # each piece within the 30 s, 250 s in all
        piece = next(pieces, None)
        return {"type": "http.request", "body": piece or b"", "more_body": bool(piece)}

    reply = Reply()
    with trio.fail_after(600):
        await HttpBridge(fake, body_timeout=30)(http_scope("PUT"), receive, reply.send)
    assert reply.status == 200
    assert fake.requests[0].body == b"ab" * 10


async def test_bridge_counts_requests_cancelled_before_they_were_done(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeExchanger()
    bridge = HttpBridge(fake)
    await call(bridge)
    with trio.move_on_after(5):  # as a server cuts a body still coming
        await bridge(http_scope("POST"), Client(finished=False).receive, Reply().send)
    assert (bridge.cut, bridge.in_flight) == (1, 0)


async def test_bridge_client_gone_while_sending_body_calls_nothing() -> None:
    fake = FakeExchanger()
    client = Client([b"a", b"b"], finished=False)
    client.disconnect()
    reply = await call(HttpBridge(fake), http_scope("POST"), client)
    assert reply.messages == []
    assert fake.requests == []


async def test_bridge_client_gone_cancels_the_exchange() -> None:
    client = Client()

    async def script(payload: Payload) -> AsyncGenerator[Payload, None]:
        client.disconnect()
        await trio.sleep_forever()
        yield Payload()  # pragma: no cover

    fake = FakeExchanger(script)
    reply = await call(HttpBridge(fake), http_scope(), client)
    assert reply.messages == []
    assert fake.left_early  # which is how the pool learns to stop the worker


async def test_bridge_lifespan_completes_startup_and_shutdown() -> None:
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, str]:
        return next(messages)

    reply = Reply()
    with trio.fail_after(5):
        await HttpBridge(FakeExchanger())({"type": "lifespan"}, receive, reply.send)
    assert reply.messages == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]


async def test_bridge_refuses_websockets() -> None:
    async def receive() -> dict[str, str]:
        return {"type": "websocket.connect"}

    reply = Reply()
    with trio.fail_after(5):
        await HttpBridge(FakeExchanger())({"type": "websocket"}, receive, reply.send)
    assert reply.messages == [{"type": "websocket.close", "code": 1000}]


async def test_bridge_rejects_unknown_scope_types() -> None:
    with pytest.raises(ValueError, match="'mqtt'"):
        await HttpBridge(FakeExchanger())(
            {"type": "mqtt"}, Client().receive, Reply().send
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"codec": "xml"}, 'codec must be "proto"'),
        ({"max_request_size": -1}, "max_request_size must be a whole number of MB"),
        ({"max_request_size": 1.5}, "max_request_size"),
        ({"internal_error_code": 200}, "internal_error_code must be an error status"),
        ({"body_timeout": 0}, "body_timeout must be a positive number of seconds"),
        ({"body_timeout": "1m"}, "body_timeout must be a positive number"),
    ],
)
def test_bridge_refuses_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        HttpBridge(FakeExchanger(), **options)  # type: ignore[arg-type]


def test_bridge_from_config_reads_the_http_section() -> None:
    http = HttpConfig(
        codec="json",
        max_request_size=7,
        idle_timeout=9,
        internal_error_code=502,
        pool=PoolConfig(debug=True),
    )
    bridge = HttpBridge.from_config(FakeExchanger(), http)
    assert bridge.codec is ContextCodec.JSON
    assert (bridge.max_request_size, bridge.internal_error_code) == (7, 502)
    assert bridge.body_timeout == 9
    assert bridge.debug


async def test_bridge_access_log_records_one_line_per_request(caplog) -> None:
    fake = FakeExchanger(replying(chunk(201, b"hello")))
    bridge = HttpBridge(fake, access_logs=True)
    with caplog.at_level("INFO", logger="trio_runner.access"):
        await call(bridge, http_scope("GET", "/a", query=b"b=1"))
    [record] = [r for r in caplog.records if r.name == "trio_runner.access"]
    assert record.getMessage().startswith("GET /a?b=1 201 5B ")
    assert (record.status, record.bytes, record.remote_address) == (201, 5, "127.0.0.1")


async def test_bridge_access_log_is_off_by_default(caplog) -> None:
    with caplog.at_level("INFO", logger="trio_runner.access"):
        await call(HttpBridge(FakeExchanger()))
    assert not [r for r in caplog.records if r.name == "trio_runner.access"]


async def test_bridge_adds_a_date_unless_php_sent_one() -> None:
    reply = await call(HttpBridge(FakeExchanger(), date_header=True))
    [date] = reply.header(b"date")
    assert date.endswith(b" GMT")
    php_date = b"Wed, 21 Oct 2037 07:28:00 GMT"
    fake = FakeExchanger(replying(chunk(200, b"", Date=[php_date])))
    reply = await call(HttpBridge(fake, date_header=True))
    assert reply.header(b"date") == [php_date]


async def test_bridge_leaves_date_to_the_server_by_default() -> None:
    # Embedded under another ASGI server, which adds its own.
    reply = await call(HttpBridge(FakeExchanger()))
    assert reply.header(b"date") == []


async def test_bridge_head_without_body_announces_no_length() -> None:
    # Symfony empties the body of a HEAD response; that is not a length of 0.
    reply = await call(
        HttpBridge(FakeExchanger(replying(chunk(200, b"")))), http_scope("HEAD")
    )
    assert reply.status == 200
    assert reply.header(b"content-length") == []


async def test_bridge_counts_requests_in_flight() -> None:
    seen: list[int] = []
    bridge: HttpBridge

    async def script(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
        seen.append(bridge.in_flight)
        yield Last(chunk(200, b"x"))

    bridge = HttpBridge(FakeExchanger(script))
    await call(bridge)
    assert seen == [1]
    assert bridge.in_flight == 0


async def test_bridge_access_log_says_499_when_the_client_left(caplog) -> None:
    client = Client()

    async def script(payload: Payload) -> AsyncGenerator[Payload, None]:
        client.disconnect()
        await trio.sleep_forever()
        yield Payload()  # pragma: no cover

    bridge = HttpBridge(FakeExchanger(script), access_logs=True)
    with caplog.at_level("INFO", logger="trio_runner.access"):
        await call(bridge, http_scope(), client)
    [record] = [r for r in caplog.records if r.name == "trio_runner.access"]
    assert record.status == 499


@pytest.mark.parametrize(
    ("method", "idempotent"),
    [("GET", True), ("HEAD", True), ("PUT", True), ("POST", False), ("PATCH", False)],
)
async def test_bridge_lets_the_pool_rerun_only_idempotent_methods(
    method: str, idempotent: bool
) -> None:
    fake = FakeExchanger()
    await call(HttpBridge(fake), http_scope(method, "/"))
    assert fake.idempotent == [idempotent]


async def test_bridge_uses_the_servers_disconnect_callback_instead_of_a_watcher() -> (
    None
):
    # The contract of DISCONNECT_EXTENSION with cancel=True: the server
    # calls back and cancels the app's call; the bridge then leaves the
    # pool early (the worker is stopped) and writes nothing.
    server_scope = trio.CancelScope()
    subscribed: list[bool] = []
    received = 0

    def subscribe(callback: Callable[[], object], cancel: bool = False) -> None:
        subscribed.append(cancel)
        callbacks.append(callback)

    callbacks: list[Callable[[], object]] = []

    async def receive() -> dict[str, object]:
        nonlocal received
        received += 1
        if received > 1:
            raise AssertionError("no watcher may call receive() after the body")
        return {"type": "http.request", "body": b"", "more_body": False}

    async def script(payload: Payload) -> AsyncGenerator[Payload, None]:
        callbacks[0]()  # the server says the client left, and cancels
        server_scope.cancel()
        await trio.sleep_forever()
        yield Payload()  # pragma: no cover

    fake = FakeExchanger(script)
    scope = http_scope()
    scope["extensions"] = {DISCONNECT_EXTENSION: {"subscribe": subscribe}}
    reply = Reply()
    bridge = HttpBridge(fake)
    with trio.fail_after(5), server_scope:
        await bridge(scope, receive, reply.send)
    assert server_scope.cancelled_caught
    assert subscribed == [True]
    assert reply.messages == []  # nothing is written for a client that left
    assert fake.left_early and received == 1
    assert bridge.cut == 0  # a client that left is not a request cut at stop


async def test_bridge_counts_requests_cut_by_cancellation() -> None:
    entered = trio.Event()

    async def stuck(payload: Payload) -> AsyncGenerator[Payload, None]:
        entered.set()
        await trio.sleep_forever()
        yield Payload()  # pragma: no cover

    bridge = HttpBridge(FakeExchanger(stuck))
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, bridge)
            await entered.wait()
            nursery.cancel_scope.cancel()
    assert (bridge.cut, bridge.in_flight) == (1, 0)


@pytest.mark.parametrize("host", GOOD_HOSTS)
async def test_bridge_passes_a_valid_host_to_php(host: bytes) -> None:
    fake = FakeExchanger()
    reply = await call(HttpBridge(fake), http_scope(headers=[(b"host", host)]))
    assert reply.status == 200
    [sent] = fake.requests
    uri = http_pb2.Request.FromString(sent.context).uri
    assert uri == f"http://{host.decode() or '127.0.0.1'}/"


@pytest.mark.parametrize("http_version", ["1.1", "2"])
@pytest.mark.parametrize("host", BAD_HOSTS)
async def test_bridge_refuses_a_malformed_host_before_php(
    host: bytes, http_version: str
) -> None:
    fake = FakeExchanger()
    scope = http_scope(
        "POST",
        "/api/status",
        headers=[(b"host", host), (b"content-length", b"2")],
        http_version=http_version,
    )
    client = Client([b"ab"])
    reply = await call(HttpBridge(fake), scope, client)
    assert reply.status == 400
    assert reply.body.startswith(b"The request is malformed: the ")
    assert b"Host header" in reply.body
    assert fake.requests == []
    assert client.received == 0  # the body is not read either
    # Over HTTP/1 the unread body ends the connection.
    http1 = http_version == "1.1"
    assert reply.header(b"connection") == ([b"close"] if http1 else [])


async def test_bridge_refuses_two_host_headers() -> None:
    fake = FakeExchanger()
    scope = http_scope(headers=[(b"host", b"a.example"), (b"host", b"b.example")])
    reply = await call(HttpBridge(fake), scope)
    assert reply.status == 400
    assert reply.body == (
        b"The request is malformed: it has more than one Host header.\n"
    )
    assert fake.requests == []


@pytest.mark.parametrize("raw_path", [b"*.evil.example/", b"@evil.example/"])
async def test_bridge_refuses_a_target_that_would_run_into_the_host(
    raw_path: bytes,
) -> None:
    fake = FakeExchanger()
    reply = await call(HttpBridge(fake), http_scope(raw_path=raw_path))
    assert reply.status == 400
    assert fake.requests == []


async def test_bridge_sends_options_asterisk_as_the_bare_origin() -> None:
    fake = FakeExchanger()
    scope = http_scope("OPTIONS", "*", headers=[(b"host", b"h:8080")])
    reply = await call(HttpBridge(fake), scope)
    assert reply.status == 200
    [sent] = fake.requests
    assert http_pb2.Request.FromString(sent.context).uri == "http://h:8080"


async def test_bridge_answers_head_with_a_bad_host_without_a_body() -> None:
    reply = await call(
        HttpBridge(FakeExchanger()), http_scope("HEAD", headers=[(b"host", b"x/y")])
    )
    assert reply.status == 400
    assert reply.body == b""
