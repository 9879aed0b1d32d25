from __future__ import annotations

import pytest

from tests.http.fakes import proto_head
from trio_runner.errors import (
    InternalError,
    NoFreeWorkers,
    PoolClosed,
    QueueFull,
    RemoteProtocolError,
    SoftError,
    TrioRunnerError,
    WorkerCrashed,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.http.response import (
    ResponseHead,
    decode_response_context,
    error_response,
    response_headers,
    split_trailers,
)


def test_decode_golden_response(golden_frames: dict[str, dict[str, object]]) -> None:
    spec = golden_frames["h_http_response"]
    payload = bytes.fromhex(str(spec["payload"]))
    options = spec["options"]
    assert isinstance(options, list)
    context, body = payload[: options[0]], payload[options[0] :]
    head = decode_response_context(context)
    assert head == ResponseHead(200, (("Content-Type", (b"text/plain",)),))
    assert body == b"hello"


def head(status: int, **headers: tuple[bytes, ...]) -> ResponseHead:
    return ResponseHead(
        status, tuple((name.replace("_", "-"), v) for name, v in headers.items())
    )


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        (b"", head(200)),
        (b'{"status":201,"headers":{"X-A":["1","2"]}}', head(201, X_A=(b"1", b"2"))),
        (b'{"status":200,"headers":[]}', head(200)),  # PHP's empty map
        (b'{"status":200,"headers":{}}', head(200)),
        (b'{"status":200}', head(200)),
        (b'{"headers":{}}', head(0)),  # invalid; the bridge refuses 0
        (b'{"status":302,"headers":{"Location":"/x"}}', head(302, Location=(b"/x",))),
        ('{"status":200,"headers":{"X":["é"]}}'.encode(), head(200, X=("é".encode(),))),
        (proto_head(404), head(404)),
        (proto_head(0, {"X": [b"1"]}), head(0, X=(b"1",))),
        (
            proto_head(200, {"Set-Cookie": [b"a", b"b"]}),
            head(200, Set_Cookie=(b"a", b"b")),
        ),
        (proto_head(200, {"X-Raw": [b"\xff\x00"]}), head(200, X_Raw=(b"\xff\x00",))),
    ],
)
def test_decode_response_context(context: bytes, expected: ResponseHead) -> None:
    assert decode_response_context(context) == expected


@pytest.mark.parametrize(
    "context",
    [
        b"{not json",
        b'{"status":"200"}',
        b'{"status":true}',
        b'{"status":200.5}',
        b'{"status":200,"headers":"x"}',
        b'{"status":200,"headers":{"X":[1]}}',
        b"\xff\xff\xff",
        b"\x08",  # a truncated varint
    ],
)
def test_decode_response_context_refuses_garbage(context: bytes) -> None:
    with pytest.raises(RemoteProtocolError, match="response context"):
        decode_response_context(context)


def test_response_headers_one_line_per_value_lower_cased() -> None:
    head = ResponseHead(
        200,
        (
            ("Set-Cookie", (b"a=1; Path=/", b"b=2")),
            ("Content-Type", (b"text/html",)),
            ("X-Multi", (b"x\r\ny",)),
        ),
    )
    lines, dropped = response_headers(head)
    assert lines == [
        (b"set-cookie", b"a=1; Path=/"),
        (b"set-cookie", b"b=2"),
        (b"content-type", b"text/html"),
        (b"x-multi", b"x  y"),  # CR and LF become spaces, as in Go
    ]
    assert dropped == []


def test_response_headers_drop_what_the_server_would_refuse() -> None:
    head = ResponseHead(
        200,
        (
            ("Transfer-Encoding", (b"chunked",)),
            ("Bad Name", (b"1",)),
            (":status", (b"200",)),
            ("X-Nul", (b"a\x00b",)),
            ("X-Nul-And-Newline", (b"a\r\n\x7fb",)),
            ("Connection", (b"keep-alive",)),
            ("X-Ok", (b"1",)),
        ),
    )
    lines, dropped = response_headers(head, http_version="1.1")
    assert lines == [(b"connection", b"keep-alive"), (b"x-ok", b"1")]
    assert len(dropped) == 5
    assert "'X-Nul-And-Newline' has control bytes: b'a  \\x7fb'" in dropped[4]
    lines, dropped = response_headers(head, http_version="2")
    assert lines == [(b"x-ok", b"1")]
    assert len(dropped) == 6


RETRY = [(b"retry-after", b"1"), (b"no-workers", b"true")]


CRASHED = b"The PHP worker failed while handling the request.\n"
TIMED_OUT = b"The request took too long and was stopped.\n"
NO_WORKER = b"No PHP worker is free; retry shortly.\n"


@pytest.mark.parametrize(
    ("error", "status", "body", "extra"),
    [
        (
            SoftError("PHP Fatal in /srv/app.php", pid=7),
            500,
            b"Internal Server Error\n",
            [],
        ),
        (WorkerCrashed("worker 7 died", pid=7), 500, CRASHED, []),
        (WorkerTimeout("exec_ttl", pid=7), 504, TIMED_OUT, []),
        (NoFreeWorkers("timeout"), 503, NO_WORKER, RETRY),
        (QueueFull("full"), 503, NO_WORKER, RETRY),
        (PoolClosed("closed"), 503, b"The server is shutting down.\n", []),
        (
            WorkerStartError("exit 255", output="x"),
            500,
            b"Could not start a PHP worker.\n",
            [],
        ),
        (InternalError("bug"), 500, b"Internal Server Error\n", []),
    ],
)
def test_error_response(
    error: TrioRunnerError, status: int, body: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    response = error_response(error)
    assert response.status == status
    assert response.body == body
    assert list(response.headers) == [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]


def test_error_response_soft_error_uses_internal_error_code() -> None:
    response = error_response(SoftError("boom"), internal_error_code=502)
    assert (response.status, response.body) == (502, b"Bad Gateway\n")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (WorkerCrashed("EOF", pid=1), 502),
        (WorkerStartError("exit 255"), 502),
        (WorkerTimeout("exec_ttl", pid=1), 504),
        (NoFreeWorkers("allocate_timeout"), 503),
    ],
)
def test_error_response_worker_failures_use_internal_error_code(
    error: TrioRunnerError, status: int
) -> None:
    # As RoadRunner, except for the waits and exec_ttl, which keep their own.
    assert error_response(error, internal_error_code=502).status == status


def test_error_response_debug_shows_php_text() -> None:
    assert error_response(SoftError("boom"), debug=True).body == b"boom"
    start = error_response(
        WorkerStartError("exit 255", output="Parse error"), debug=True
    )
    assert b"exit 255" in start.body
    assert b"Parse error" in start.body


def test_error_response_debug_shows_what_a_dead_worker_said() -> None:
    crashed = WorkerCrashed(
        "worker 7 closed its relay", pid=7, output="PHP Fatal error"
    )
    assert b"PHP Fatal error" in error_response(crashed, debug=True).body
    assert b"PHP Fatal error" not in error_response(crashed).body


@pytest.mark.parametrize(
    ("trailer", "kept", "moved"),
    [
        ([], ["X-Sum", "X-Kept"], []),
        ([b"X-Sum"], ["X-Kept"], ["X-Sum"]),
        ([b"x-sum, X-KEPT"], [], ["X-Sum", "X-Kept"]),
        ([b"X-Sum", b" X-Missing ,"], ["X-Kept"], ["X-Sum"]),
    ],
    ids=["none", "one", "case-and-list", "missing-name"],
)
def test_split_trailers(
    trailer: list[bytes], kept: list[str], moved: list[str]
) -> None:
    headers = [("X-Sum", (b"1", b"2")), ("X-Kept", (b"k",))]
    if trailer:
        headers.insert(0, ("Trailer", tuple(trailer)))
    head, trailers = split_trailers(ResponseHead(200, tuple(headers)))
    assert [name for name, _ in head.headers] == kept
    assert [name for name, _ in trailers.headers] == moved
    assert trailers.status == 200
    if "X-Sum" in moved:
        assert trailers.values("x-sum") == [b"1", b"2"]  # every value, in order


def test_response_headers_are_the_callers_to_change() -> None:
    # Heads and their lines are cached (an app sends the same few): what a
    # caller adds to one response's lines must not reach the next one's.
    head = decode_response_context(b'{"status":200,"headers":{"X-A":["1"]}}')
    lines, dropped = response_headers(head)
    lines.append((b"date", b"now"))
    dropped.append("mine")
    assert response_headers(head) == ([(b"x-a", b"1")], [])
    again = decode_response_context(b'{"status":200,"headers":{"X-A":["1"]}}')
    assert again == head
