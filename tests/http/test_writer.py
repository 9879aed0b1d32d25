from __future__ import annotations

import logging

import pytest

from tests.http.fakes import Reply, chunk, http_scope
from trio_runner.http.asgi import Scope
from trio_runner.http.writer import ResponseWriter

HTTP2_EXTENSIONS = {
    "http.response.early_hint": {},
    "http.response.trailers": {},
    "http.response.push": {},
}


def scope(
    method: str = "GET",
    *,
    http2: bool = False,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> Scope:
    built = http_scope(method, headers=headers, http_version="2" if http2 else "1.1")
    if http2:
        built["extensions"] = HTTP2_EXTENSIONS
    return built


def writer(reply: Reply, request: Scope) -> ResponseWriter:
    return ResponseWriter.for_request(
        reply.send, request, debug=False, date_header=False
    )


def types(reply: Reply) -> list[str]:
    return [message["type"] for message in reply.messages]


async def test_writer_passes_103_links_on_as_an_early_hint() -> None:
    reply = Reply()
    out = writer(reply, scope(http2=True))
    links = [b"</a.css>; rel=preload", b"</b.js>; rel=preload"]
    await out.write(chunk(103, Link=links, X_Other=[b"dropped"]))
    await out.write(chunk(200, b"done", X_Final=[b"1"]), last=True)
    assert reply.messages[0] == {"type": "http.response.early_hint", "links": links}
    assert reply.messages[1]["headers"] == [
        (b"x-final", b"1"),
        (b"content-length", b"4"),
    ]


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (103, b"", None),  # HTTP/1.1: no way to send it
        (101, b"", "101 Switching Protocols; ignored"),
        (102, b"oops", "dropped 4 bytes of body the PHP worker sent with status 102"),
    ],
)
async def test_writer_drops_1xx_it_cannot_send(
    caplog: pytest.LogCaptureFixture, status: int, body: bytes, message: str | None
) -> None:
    reply = Reply()
    out = writer(reply, scope())
    await out.write(chunk(status, body, Link=[b"</a.css>; rel=preload"]))
    await out.write(chunk(200, b"done"), last=True)
    assert types(reply) == ["http.response.start", "http.response.body"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if message is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert message in warnings[0]


async def test_writer_sends_trailers_after_the_body_when_the_client_accepts() -> None:
    reply = Reply()
    out = writer(reply, scope(http2=True, headers=((b"te", b"trailers"),)))
    head = {"Trailer": [b"X-Sum, X-Missing"], "X-Sum": [b"abc"], "X-Kept": [b"1"]}
    await out.write(chunk(200, b"body", **head))
    await out.finish()
    start, body, end, trailers = reply.messages
    assert start["trailers"] is True
    assert start["headers"] == [(b"x-kept", b"1")]
    assert (body["body"], end["body"], end.get("more_body", False)) == (
        b"body",
        b"",
        False,
    )
    assert trailers == {
        "type": "http.response.trailers",
        "headers": [(b"x-sum", b"abc")],
        "more_trailers": False,
    }


@pytest.mark.parametrize(
    ("method", "http2", "te"),
    [("GET", False, True), ("GET", True, False), ("HEAD", True, True)],
    ids=["http1.1", "no-te", "head"],
)
async def test_writer_sends_trailers_as_headers_otherwise(
    method: str, http2: bool, te: bool
) -> None:
    reply = Reply()
    headers = ((b"te", b"trailers"),) if te else ()
    out = writer(reply, scope(method, http2=http2, headers=headers))
    head = {"Trailer": [b"X-Sum"], "X-Sum": [b"abc"]}
    await out.write(chunk(200, b"body", **head), last=True)
    assert types(reply) == ["http.response.start", "http.response.body"]
    assert "trailers" not in reply.messages[0]
    assert reply.header(b"x-sum") == [b"abc"]
    assert reply.header(b"trailer") == []


@pytest.mark.parametrize(
    ("method", "status", "declared", "length"),
    [
        ("GET", 204, [b"5"], []),  # never in a 204
        ("GET", 205, [], [b"0"]),  # RFC 9110 15.3.6: no content, said so
        ("GET", 205, [b"5"], [b"0"]),
        ("GET", 304, [b"5"], [b"5"]),  # the representation's length
        ("GET", 304, [], []),
        ("GET", 200, [b"5"], [b"11"]),  # PHP's wrong value corrected
        ("GET", 200, [b"11"], [b"11"]),
        ("HEAD", 200, [], [b"11"]),  # what PHP wrote for it
        ("HEAD", 200, [b"42"], [b"42"]),  # PHP knows the GET length
    ],
)
async def test_writer_content_length_is_never_wrong(
    method: str, status: int, declared: list[bytes], length: list[bytes]
) -> None:
    reply = Reply()
    out = writer(reply, scope(method))
    headers = {"Content_Length": declared} if declared else {}
    await out.write(chunk(status, b"hello world", **headers), last=True)
    assert reply.header(b"content-length") == length
    bodyless = method == "HEAD" or status in (204, 205, 304)
    assert reply.body == (b"" if bodyless else b"hello world")


async def test_writer_keeps_phps_length_on_a_stream() -> None:
    reply = Reply()
    out = writer(reply, scope())
    await out.write(chunk(200, b"hello ", Content_Length=[b"11"]))
    await out.write(chunk(200, b"world", Content_Length=[b"11"]), last=True)
    assert reply.header(b"content-length") == [b"11"]
    assert reply.body == b"hello world"


async def test_writer_pushes_http2_push_paths_before_the_response() -> None:
    reply = Reply()
    out = writer(reply, scope(http2=True))
    await out.write(
        chunk(200, b"page", Http2_Push=[b"/style.css", b"no-slash"]), last=True
    )
    assert reply.messages[0] == {
        "type": "http.response.push",
        "path": "/style.css",
        "headers": [],
    }
    assert types(reply)[1:] == ["http.response.start", "http.response.body"]
    start = reply.messages[1]
    pushed = [value for name, value in start["headers"] if name == b"http2-push"]
    assert pushed == [b"/style.css", b"no-slash"]  # the header stays, as in RR


async def test_writer_warns_about_a_head_each_time_php_sends_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Heads are sorted once and remembered: what is wrong with one is
    # still said for every response that carries it.
    head = {"Content_Length": [b"5"], "Bad Name": [b"x"], "X-Ok": [b"1"]}
    replies = []
    for _ in range(2):
        reply = Reply()
        out = writer(reply, scope())
        with caplog.at_level(logging.WARNING):
            await out.write(chunk(200, b"hello world", **head), last=True)
        replies.append(reply.messages)
    assert replies[0] == replies[1]
    assert dict(replies[0][0]["headers"]) == {
        b"x-ok": b"1",
        b"content-length": b"11",
    }
    reasons = [record.reason for record in caplog.records]  # type: ignore[attr-defined]
    assert reasons == ["bad_response_header", "bad_content_length"] * 2
