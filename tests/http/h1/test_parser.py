"""The lean server's request parser: bytes in, requests or refusals out."""

from __future__ import annotations

import pytest

from trio_runner.http.h1.parser import (
    END_OF_BODY,
    Refusal,
    RequestHead,
    RequestParser,
)


def parse(data: bytes, *, limit: int = 65536, pieces: int = 1) -> list[object]:
    parser = RequestParser(max_header_size=limit)
    size = max(1, len(data) // pieces)
    for start in range(0, len(data), size):
        parser.feed(data[start : start + size])
    return list(parser.events)


def test_parser_gives_head_and_end_of_body_for_a_get() -> None:
    events = parse(
        b"GET /a%20b?x=1&y HTTP/1.1\r\nHost: h\r\nX-Two: a\r\nx-two: b\r\n\r\n"
    )
    head, end = events
    assert isinstance(head, RequestHead)
    assert end is END_OF_BODY
    assert head.method == "GET"
    assert (head.path, head.raw_path, head.query) == ("/a b", b"/a%20b", b"x=1&y")
    assert head.headers == [(b"host", b"h"), (b"x-two", b"a"), (b"x-two", b"b")]
    assert head.keep_alive and not head.has_body and not head.upgrade


@pytest.mark.parametrize("pieces", [1, 7, 1000])
def test_parser_takes_chunked_bodies_in_any_pieces(pieces: int) -> None:
    data = (
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    events = parse(data, pieces=pieces)
    head = events[0]
    assert isinstance(head, RequestHead) and head.has_body
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"abcde"
    assert events[-1] is END_OF_BODY
    assert head.headers[-1] == (b"transfer-encoding", b"chunked")  # no trailer


CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    "endless",
    [b"3\r\nabc\r\n0\r\nX-Trailer: ", b"3;ext=", b"3\r\nabc\r\n0\r\nX: y\r\n"],
    ids=["trailer-line", "chunk-extension", "trailer-lines"],
)
def test_parser_refuses_endless_chunk_framing(endless: bytes) -> None:
    # llhttp keeps a partial trailer line in memory: without this limit an
    # endless one grew the server without bound (250 MB for 128 MB sent).
    parser = RequestParser(max_header_size=8192)
    parser.feed(CHUNKED_HEAD + endless)
    piece = b"X: y\r\n" * 100 if endless.endswith(b"\r\n") else b"a" * 1000
    fed = 0
    while not parser.failed and fed < 100_000:
        parser.feed(piece)
        fed += len(piece)
    refusal = list(parser.events)[-1]
    assert isinstance(refusal, Refusal) and refusal.status == 431
    assert "trailers" in refusal.reason
    assert fed <= 8192 + len(piece)  # refused once past the limit, not later


def test_parser_takes_a_long_body_of_tiny_chunks_and_modest_trailers() -> None:
    # Framing counts only while no body data comes: tiny chunks, each with
    # more framing than data, and trailers under the limit are fine.
    parser = RequestParser(max_header_size=1024)
    parser.feed(CHUNKED_HEAD)
    for _ in range(5000):
        parser.feed(b"1;x=y\r\na\r\n")
    parser.feed(b"0\r\n" + b"X-T: 1234567890\r\n" * 40 + b"\r\n")
    events = list(parser.events)
    assert not parser.failed
    assert b"".join(e for e in events if isinstance(e, bytes)) == b"a" * 5000
    assert events[-1] is END_OF_BODY


def test_parser_queues_pipelined_requests_in_order() -> None:
    events = parse(
        b"POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok"
        b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    kinds = [e.raw_path if isinstance(e, RequestHead) else e for e in events]
    assert kinds == [b"/1", b"ok", END_OF_BODY, b"/2", END_OF_BODY]


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n",
            400,
            "content-length",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n"
            b"Content-Length: 4\r\n\r\n",
            400,
            "content-length",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "chunk size",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"ffffffffffffffffffff\r\n",
            400,
            "chunk size",
        ),
        (b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", 400, "whitespace"),
        (b"GET / HTTP/1.1\r\n\r\n", 400, "host"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "2 host"),
        (b"GET / HTTP/2.0\r\n\r\n", 505, "http/2.0"),
        (b"GET / HTTP/1.2\r\nHost: h\r\n\r\n", 505, "http/1.2"),  # as hypercorn
        (b"GET / HTTP/9.9\r\nHost: h\r\n\r\n", 505, "http/9.9"),
        (b"GET / HTTP/x.y\r\nHost: h\r\n\r\n", 400, "version"),
        (b"GET /\r\n\r\n", 505, "http/0.9"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, "http/2"),
        (b"\x16\x03\x01\x00\xa5", 400, "method"),
        (b"GET / HTTP/1.1\r\nHost: h\r\nExpect: magic\r\n\r\n", 417, "100-continue"),
        (b"FOO / HTTP/1.1\r\nHost: h\r\n\r\n", 501, "the method foo is not"),
        (b"\r\nget / HTTP/1.1\r\nHost: h\r\n\r\n", 501, "the method get is not"),
        (b"G@T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid method"),
    ],
    ids=[
        "cl-and-te",
        "two-cl",
        "chunk-not-hex",
        "chunk-overflow",
        "obs-fold",
        "no-host",
        "two-hosts",
        "http2-line",
        "http12-line",
        "http99-line",
        "bad-version",
        "http09",
        "h2-preface",
        "tls-hello",
        "expect",
        "extension-method",
        "lower-case-method",
        "not-a-token",
    ],
)
def test_parser_refuses_what_cannot_be_framed(
    request_bytes: bytes, status: int, reason: str
) -> None:
    events = parse(request_bytes)
    refusal = events[-1]
    assert isinstance(refusal, Refusal), events
    assert refusal.status == status
    assert reason in refusal.reason.lower()
    # Header names keep their case in what the client reads.
    assert "transfer-Encoding" not in refusal.reason
    # A bad chunk is found in the body, after the head was given out.
    heads = [e for e in events if isinstance(e, RequestHead)]
    assert len(heads) == (1 if "chunk" in reason else 0)


CHUNKED_BODY = b"3\r\nabc\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("codings", "status"),
    [
        ([b"gzip, chunked"], 501),
        ([b"gzip", b"chunked"], 501),  # the same list, over two lines
        ([b"identity, chunked"], 501),
        ([b"chunked, gzip"], 400),
        ([b"gzip"], 400),
        ([b"chunked", b"chunked"], 400),
    ],
    ids=["gzip-chunked", "two-lines", "identity", "chunked-gzip", "gzip", "twice"],
)
def test_parser_refuses_transfer_codings_other_than_chunked(
    codings: list[bytes], status: int
) -> None:
    # llhttp de-chunked "gzip, chunked" and gave the gzip bytes on as the
    # body; a lone "gzip" reached the app as a head with an empty body.
    lines = b"".join(b"Transfer-Encoding: %s\r\n" % value for value in codings)
    events = parse(b"POST / HTTP/1.1\r\nHost: h\r\n" + lines + b"\r\n" + CHUNKED_BODY)
    assert len(events) == 1, events
    refusal = events[0]
    assert isinstance(refusal, Refusal)
    assert refusal.status == status


def test_parser_refuses_transfer_encoding_in_http_10() -> None:
    # RFC 9112 6.1: the framing of such a request is faulty. Served with
    # keep-alive, the second request here rode in on the first one's body.
    smuggled = b"GET /smuggled HTTP/1.0\r\n\r\n"
    events = parse(
        b"POST / HTTP/1.0\r\nConnection: keep-alive\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + CHUNKED_BODY + smuggled
    )
    assert len(events) == 1, events
    refusal = events[0]
    assert isinstance(refusal, Refusal)
    assert (refusal.status, refusal.reason) == (
        400,
        "an HTTP/1.0 request cannot use Transfer-Encoding",
    )


@pytest.mark.parametrize("value", [b"Chunked", b"CHUNKED ", b"chunked"])
def test_parser_takes_chunked_in_any_case(value: bytes) -> None:
    events = parse(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: %s\r\n\r\n" % value
        + CHUNKED_BODY
    )
    head, body, end = events
    assert isinstance(head, RequestHead) and head.has_body
    assert (body, end) == (b"abc", END_OF_BODY)


def test_parser_says_when_a_request_is_under_way() -> None:
    parser = RequestParser(max_header_size=65536)
    states = []
    for piece in [
        b"POST / HTTP/1.1\r\nHo",
        b"st: h\r\nContent-Length: 3\r\n\r\n",
        b"ab",
        b"c",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    ]:
        parser.feed(piece)
        states.append((parser.in_head, parser.in_body))
    assert states == [
        (True, False),
        (False, True),
        (False, True),
        (False, False),
        (False, False),
    ]


def test_parser_refusal_comes_after_the_good_requests_before_it() -> None:
    events = parse(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET /bad HTTP/1.1\r\n\r\n")
    assert [type(e) for e in events] == [RequestHead, type(END_OF_BODY), Refusal]


@pytest.mark.parametrize("pieces", [1, 50])
def test_parser_refuses_a_head_over_the_limit_with_431(pieces: int) -> None:
    big = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: " + b"c" * 3000 + b"\r\n\r\n"
    assert isinstance(parse(big, limit=4096)[0], RequestHead)
    [refusal] = parse(big, limit=2048, pieces=pieces)
    assert refusal == Refusal(431, "the request head is too large")


def test_parser_refuses_an_endless_header_before_it_ends() -> None:
    parser = RequestParser(max_header_size=1024)
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-Endless: ")
    for _ in range(10):
        parser.feed(b"x" * 512)
    assert list(parser.events) == [Refusal(431, "the request head is too large")]
    assert parser.failed
    parser.feed(b"\r\n\r\n")  # nothing more is parsed
    assert len(parser.events) == 1


@pytest.mark.parametrize("before", [b"", b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n"])
def test_parser_counts_the_read_that_begins_an_unfinished_head(before: bytes) -> None:
    # A head past the limit in two large reads: 431 at the second, not a
    # wait for the rest of it (and the header deadline's 408).
    parser = RequestParser(max_header_size=65536)
    parser.feed(before + b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 65000)
    assert not parser.failed
    parser.feed(b"a" * 35000)
    assert parser.events[-1] == Refusal(431, "the request head is too large")


def test_parser_counts_a_head_after_a_large_body_from_its_own_start() -> None:
    parser = RequestParser(max_header_size=1024)
    body = b"x" * 4000
    parser.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4000\r\n\r\n")
    parser.feed(body + b"GET /next HTTP/1.1\r\n")  # ends one, starts the next
    parser.feed(b"Host: h\r\n\r\n")
    assert not any(isinstance(e, Refusal) for e in parser.events)
    assert parser.events[-2].raw_path == b"/next"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("head", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x, Close\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\n\r\n", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    ],
)
def test_parser_keep_alive_follows_version_and_connection(
    head: bytes, keep_alive: bool
) -> None:
    parsed = parse(head)[0]
    assert isinstance(parsed, RequestHead)
    assert parsed.keep_alive is keep_alive


def test_parser_expect_continue_only_with_a_body() -> None:
    with_body = parse(
        b"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
        b"Content-Length: 5\r\n\r\n"
    )[0]
    without = parse(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n")[0]
    assert isinstance(with_body, RequestHead) and with_body.expect_continue
    assert isinstance(without, RequestHead) and not without.expect_continue


def test_parser_pauses_after_an_upgrade_and_resumes_when_it_is_declined() -> None:
    parser = RequestParser(max_header_size=65536)
    parser.feed(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    head, end = parser.events
    assert isinstance(head, RequestHead) and head.upgrade == b"h2c"
    assert end is END_OF_BODY and parser.paused
    parser.take(), parser.take()
    parser.resume()
    assert parser.take().raw_path == b"/after"  # type: ignore[union-attr]


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: internal\r\n\r\n"


@pytest.mark.parametrize("pieces", [1, 3, 200])
@pytest.mark.parametrize(
    ("framing", "body"),
    [
        (b"Content-Length: %d\r\n" % len(SMUGGLED), SMUGGLED),
        (
            b"Transfer-Encoding: chunked\r\n",
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED),
        ),
    ],
)
def test_an_upgrade_request_keeps_its_body(
    framing: bytes, body: bytes, pieces: int
) -> None:
    # httptools has llhttp skip an upgrade request's body: read on as the
    # next request, it would be a request smuggled past a proxy.
    events = parse(
        b"POST /public HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        + framing
        + b"\r\n"
        + body
        + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n",
        pieces=pieces,
    )
    head, *rest = events
    assert isinstance(head, RequestHead) and head.raw_path == b"/public"
    assert head.has_body and head.upgrade == b"websocket"
    end = rest.index(END_OF_BODY)
    assert b"".join(rest[:end]) == SMUGGLED  # type: ignore[arg-type]
    after, last = rest[end + 1 :]
    assert isinstance(after, RequestHead) and after.raw_path == b"/next"
    assert last is END_OF_BODY


def test_an_upgrade_request_with_a_body_does_not_pause_the_parser() -> None:
    parser = RequestParser(max_header_size=65536)
    parser.feed(
        b"PUT / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
        b"Content-Length: 3\r\n\r\nabc"
    )
    assert not parser.paused and not parser.in_body
    assert list(parser.events)[1:] == [b"abc", END_OF_BODY]


def test_parser_marks_websocket_and_connect_upgrades() -> None:
    websocket = parse(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\n"
        b"Upgrade: WebSocket\r\n\r\n"
    )[0]
    connect = parse(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n")[0]
    assert isinstance(websocket, RequestHead) and websocket.upgrade == b"websocket"
    assert isinstance(connect, RequestHead) and connect.upgrade == b"connect"


def test_parser_counts_buffered_body_bytes() -> None:
    parser = RequestParser(max_header_size=65536)
    parser.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345")
    parser.feed(b"67890")
    assert parser.body_buffered == 10
    parser.take()
    assert parser.take() == b"12345"
    assert parser.body_buffered == 5


def test_parser_counts_queued_heads() -> None:
    parser = RequestParser(max_header_size=65536)
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" * 3)
    assert parser.heads_queued == 3
    assert isinstance(parser.take(), RequestHead)
    assert parser.take() is END_OF_BODY
    assert parser.heads_queued == 2


def test_parser_drops_whitespace_around_header_values() -> None:
    # RFC 9110 5.5; a Host with a trailing space is still a valid host.
    [head, _] = parse(b"GET / HTTP/1.1\r\nHost: a \r\nX-T: \tv w \t\r\n\r\n")
    assert isinstance(head, RequestHead)
    assert head.headers == [(b"host", b"a"), (b"x-t", b"v w")]


@pytest.mark.parametrize(
    ("before", "name"),
    [
        (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n", "foo"),
        (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n" * 2 + b"\r\n", "foo"),
        # Where a body came first, the failing request's start is unknown:
        # no name is made up (llhttp's reason, 400).
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 8\r\n\r\nBAR / ab", None),
    ],
    ids=["one-before", "two-before", "body-before"],
)
def test_parser_names_the_method_of_the_pipelined_request_that_failed(
    before: bytes, name: str | None
) -> None:
    events = parse(before + b"foo / HTTP/1.1\r\nHost: h\r\n\r\n")
    refusal = events[-1]
    assert isinstance(refusal, Refusal)
    if name is None:
        assert refusal.status == 400 and "method" in refusal.reason.lower()
        assert "BAR" not in refusal.reason and "GET" not in refusal.reason
    else:
        assert (refusal.status, refusal.reason) == (
            501,
            f"the method {name} is not implemented here",
        )


def test_parser_refuses_a_target_that_is_not_ascii() -> None:
    [refusal] = parse(b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert isinstance(refusal, Refusal) and refusal.status == 400
