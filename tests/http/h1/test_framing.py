"""How the lean server frames responses: lengths, chunks, no-body statuses."""

from __future__ import annotations

import h11
import pytest

from trio_runner.http.h1 import framing
from trio_runner.http.h1.framing import (
    ResponseError,
    ResponseFramer,
    informational,
    simple_response,
)

TEXT = [(b"content-type", b"text/plain")]


def framer(
    method: str = "GET", version: str = "1.1", **options: bool
) -> ResponseFramer:
    options.setdefault("keep_alive", True)
    options.setdefault("date_header", False)
    return ResponseFramer(method, version, **options)


def read(
    data: bytes, method: str = "GET", version: str = "1.1"
) -> tuple[h11.Response, bytes, bool]:
    """The response in ``data`` as an HTTP/1.1 client parses it; and
    whether it ended before the connection did."""
    client = h11.Connection(h11.CLIENT)
    client.send(
        h11.Request(
            method=method,
            target="/",
            headers=[("Host", "h")],
            http_version=version,
        )
    )
    client.send(h11.EndOfMessage())
    client.receive_data(data)
    client.receive_data(b"")  # the connection closes after this
    response = None
    body = b""
    while True:
        event = client.next_event()
        if isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            assert response is not None
            return response, body, isinstance(event, h11.EndOfMessage)


def test_framer_writes_a_whole_response_in_one_piece_with_its_length() -> None:
    f = framer()
    f.start(200, TEXT)
    data = f.body(b"hello", more=False)
    assert data.startswith(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n")
    assert b"content-length: 5\r\n" in data
    response, body, ended = read(data)
    assert (response.status_code, body, ended) == (200, b"hello", True)
    assert f.complete and f.keep_alive


def test_framer_chunks_a_streamed_body_and_ends_it_with_the_last_piece() -> None:
    f = framer()
    f.start(200, TEXT)
    data = (
        f.body(b"one", more=True) + f.body(b"", more=True) + f.body(b"two", more=True)
    )
    last = f.body(b"!", more=False)
    assert last.endswith(b"1\r\n!\r\n0\r\n\r\n")
    response, body, ended = read(data + last)
    assert dict(response.headers)[b"transfer-encoding"] == b"chunked"
    assert (body, ended) == (b"onetwo!", True)


def test_framer_streams_http10_until_the_connection_closes() -> None:
    f = framer(version="1.0")
    f.start(200, TEXT)
    data = f.body(b"one", more=True) + f.body(b"two", more=False)
    assert not f.keep_alive
    assert b"connection: close" in data and b"chunked" not in data
    _, body, _ = read(data)  # no length: the body ends with the close
    assert b"content-length" not in data and body == b"onetwo"


def test_framer_keeps_http10_alive_when_asked() -> None:
    f = framer(version="1.0")
    f.start(200, TEXT)
    assert b"connection: keep-alive\r\n" in f.body(b"x", more=False)


@pytest.mark.parametrize(
    ("method", "status"), [("HEAD", 200), ("GET", 204), ("GET", 304)]
)
def test_framer_never_sends_a_body_for_head_204_and_304(
    method: str, status: int
) -> None:
    f = framer(method)
    f.start(status, [*TEXT, (b"content-length", b"11")])
    data = f.body(b"hello", more=True) + f.body(b" world", more=False)
    assert data.endswith(b"\r\n\r\n") and b"hello" not in data
    assert (b"content-length: 11" in data) == (status != 204)
    assert b"transfer-encoding" not in data
    assert f.keep_alive


def test_framer_keeps_the_apps_content_length_and_holds_it_to_it() -> None:
    f = framer()
    f.start(200, [(b"Content-Length", b"6")])
    data = f.body(b"abc", more=True) + f.body(b"def", more=False)
    assert data.count(b"content-length") == 1
    assert read(data)[1:] == (b"abcdef", True)

    short = framer()
    short.start(200, [(b"content-length", b"6")])
    short.body(b"abc", more=True)
    with pytest.raises(ResponseError, match="Content-Length"):
        short.body(b"", more=False)
    assert not short.keep_alive

    long = framer()
    long.start(200, [(b"content-length", b"2")])
    with pytest.raises(ResponseError, match="Content-Length"):
        long.body(b"abc", more=True)


def test_framer_drops_the_apps_transfer_encoding() -> None:
    f = framer()
    f.start(200, [(b"transfer-encoding", b"gzip")])
    data = f.body(b"x", more=False)
    assert b"gzip" not in data and b"content-length: 1" in data


@pytest.mark.parametrize(
    "header",
    [
        (b"bad name", b"v"),
        (b"x", b"a\r\nSet-Cookie: evil=1"),
        (b"x", b"nul\x00"),
    ],
    ids=["space-in-name", "crlf-in-value", "nul"],
)
def test_framer_refuses_headers_that_would_split_the_response(
    header: tuple[bytes, bytes],
) -> None:
    with pytest.raises(ResponseError):
        framer().start(200, [header])


def test_framer_remembers_only_valid_header_lines_and_boundedly() -> None:
    good = (b"x-good", b"fine")
    for _ in range(2):  # checked once, then remembered: the same bytes
        f = framer()
        f.start(200, [good])
        assert b"x-good: fine\r\n" in f.body(b"", more=False)
    for _ in range(2):  # refused every time, never remembered
        with pytest.raises(ResponseError):
            framer().start(200, [(b"x", b"a\r\nSet-Cookie: evil=1")])
    assert (b"x", b"a\r\nSet-Cookie: evil=1") not in framing._valid_lines
    cookie = b"s=" + b"x" * framing._REMEMBERED_VALUE_MAX
    framer().start(200, [(b"set-cookie", cookie)])
    assert (b"set-cookie", cookie) not in framing._valid_lines  # seldom repeats
    for number in range(2 * framing._VALID_LINES_MAX):
        framer().start(200, [(b"etag", b"%d" % number)])
        assert len(framing._valid_lines) <= framing._VALID_LINES_MAX


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, [*TEXT, (b"content-length", b"3")]),
        (200, [(b"Connection", b"close")]),
        (204, [(b"content-length", b"3")]),
        (200, [[b"x-list", b"pairs"]]),  # not hashable: framed every time
        (200, [(b"x-long", b"v" * framing._PREPARED_HEAD_MAX)]),
    ],
    ids=["length", "close", "204", "lists", "long"],
)
def test_framer_frames_a_head_seen_before_as_the_first_time(
    status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    framed = []
    for _ in range(2):
        f = framer(keep_alive=True)
        f.start(status, headers)
        framed.append((f.body(b"abc", more=False), f.keep_alive))
    assert framed[0] == framed[1]
    assert framed[0][1] == (b"close" not in str(headers).encode())
    # The length the head declares is held to on every response.
    if (b"content-length", b"3") in headers and status != 204:
        again = framer()
        again.start(status, headers)
        with pytest.raises(ResponseError, match="Content-Length"):
            again.body(b"abcd", more=False)


def test_framer_remembers_heads_boundedly_and_dates_them_anew(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dates = iter([b"Mon, 01 Jan 2035 00:00:00 GMT", b"Mon, 01 Jan 2035 00:00:01 GMT"])
    for date in dates:
        monkeypatch.setattr(framing, "http_date", lambda date=date: date)
        f = framer(date_header=True)
        f.start(200, TEXT)
        assert b"\r\ndate: %s\r\n" % date in f.body(b"", more=False)
    long = [(b"x-long", b"v" * framing._PREPARED_HEAD_MAX)]
    framer().start(200, long)
    assert (200, tuple(long)) not in framing._prepared_heads
    for number in range(2 * framing._PREPARED_HEADS_MAX):
        framer().start(200, [(b"etag", b"%d" % number)])
        assert len(framing._prepared_heads) <= framing._PREPARED_HEADS_MAX


def test_framer_refuses_non_final_statuses_and_a_second_start() -> None:
    with pytest.raises(ResponseError, match="final status"):
        framer().start(103, [])
    f = framer()
    f.start(200, [])
    with pytest.raises(ResponseError, match="already"):
        f.start(200, [])


def test_framer_closes_when_the_app_or_the_server_says_so() -> None:
    app_closes = framer()
    app_closes.start(200, [(b"connection", b"close")])
    data = app_closes.body(b"", more=False)
    assert data.count(b"connection: close") == 1 and not app_closes.keep_alive

    server_closes = framer(keep_alive=False)
    server_closes.start(200, [])
    assert b"connection: close\r\n" in server_closes.body(b"", more=False)


def test_framer_adds_a_date_unless_the_app_sent_one() -> None:
    dated = framer(date_header=True)
    dated.start(200, [])
    assert dated.body(b"", more=False).count(b"\r\ndate: ") == 1
    own = framer(date_header=True)
    own.start(200, [(b"Date", b"Thu, 01 Jan 2037 00:00:00 GMT")])
    data = own.body(b"", more=False).lower()
    assert data.count(b"\r\ndate: ") == 1 and b"2037" in data


def test_informational_and_simple_responses() -> None:
    assert informational(100, []) == b"HTTP/1.1 100 Continue\r\n\r\n"
    hints = informational(103, [(b"link", b"</a.css>; rel=preload")])
    assert hints == b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n"
    response, body, _ = read(simple_response(431, "too large\n"))
    assert (response.status_code, body) == (431, b"too large\n")
    assert dict(response.headers)[b"connection"] == b"close"
