from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence

import pytest
import trio
import trio.testing

from tests.http.fakes import Client, Reply
from tests.http.middleware.apps import Answer, call, http_scope
from trio_runner.http.asgi import Message, Receive, Scope, Send
from trio_runner.http.middleware.gzip import GzipMiddleware, accepts_gzip, compressible

TEXT = b"All work and no play makes Jack a dull boy. " * 100  # 4,400 bytes


@pytest.mark.parametrize(
    ("values", "accepted"),
    [
        ([b"gzip"], True),
        ([b"GZIP"], True),
        ([b"x-gzip"], True),
        ([b"gzip, deflate, br"], True),
        ([b"deflate", b"gzip"], True),
        ([b"br;q=1.0, gzip;q=0.5"], True),
        ([b"gzip;q=0"], False),
        ([b"gzip; q=0.000"], False),
        ([b"gzip;q=0.001"], True),
        ([b"*"], True),
        ([b"*;q=0"], False),
        ([b"*;q=1, gzip;q=0"], False),  # the explicit gzip decides
        ([b"gzip;q=0, *"], False),
        ([b"identity"], False),
        ([b"deflate, br"], False),
        ([], False),
        ([b""], False),
        ([b"gzip;q=nan"], False),
        ([b"gzip;q=2"], False),
        ([b"gzip;q=inf"], False),
    ],
)
def test_accepts_gzip_respects_q_values(values: list[bytes], accepted: bool) -> None:
    assert accepts_gzip(values) is accepted


@pytest.mark.parametrize(
    ("content_type", "worth_it"),
    [
        (b"text/html; charset=utf-8", True),
        (b"Text/CSS", True),
        (b"application/json", True),
        (b"application/problem+json", True),
        (b"application/atom+xml", True),
        (b"image/svg+xml", True),
        (b"application/javascript", True),
        (b"image/png", False),
        (b"application/zip", False),
        (b"application/octet-stream", False),
        (b"video/mp4", False),
        (b"", False),
        (None, False),
    ],
)
def test_compressible_knows_text_from_binary(
    content_type: bytes | None, worth_it: bool
) -> None:
    assert compressible(content_type) is worth_it


def gzip_request(method: str = "GET", *extra: tuple[bytes, bytes]) -> Scope:
    return http_scope(method, headers=[(b"accept-encoding", b"gzip"), *extra])


def text_app(
    body: Sequence[bytes] = (TEXT,),
    *headers: tuple[bytes, bytes],
    status: int = 200,
    content_type: bytes = b"text/html",
) -> Answer:
    return Answer(status, [(b"content-type", content_type), *headers], body)


async def test_gzip_compresses_a_whole_body_with_its_content_length() -> None:
    app = text_app((TEXT,), (b"content-length", b"%d" % len(TEXT)), (b"etag", b'"v1"'))
    reply = await call(GzipMiddleware(app), gzip_request())

    assert reply.header(b"content-encoding") == [b"gzip"]
    assert reply.header(b"vary") == [b"Accept-Encoding"]
    assert reply.header(b"etag") == [b'W/"v1"']
    assert reply.header(b"content-length") == [b"%d" % len(reply.body)]
    assert len(reply.body) < len(TEXT)
    assert gzip.decompress(reply.body) == TEXT
    assert reply.complete


async def test_gzip_streams_each_chunk_flushed() -> None:
    chunks = [b"event: %d\n" % n + b"data: " + b"x" * 400 + b"\n\n" for n in range(5)]
    reply = await call(GzipMiddleware(text_app(chunks)), gzip_request())

    assert reply.header(b"content-encoding") == [b"gzip"]
    assert reply.header(b"content-length") == []
    bodies = reply.bodies
    assert len(bodies) == len(chunks)
    # Every prefix decodes to the chunks sent so far: nothing waits in zlib.
    for count in range(1, len(chunks)):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert decoder.decompress(b"".join(bodies[:count])) == b"".join(chunks[:count])
    assert gzip.decompress(reply.body) == b"".join(chunks)
    assert reply.complete


async def test_gzip_sends_each_chunk_as_it_comes() -> None:
    """A chunk is on its way before the app has produced the next one."""
    sent_before_next: list[int] = []
    reply = Reply()

    async def streaming(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        for n in range(3):
            await send(
                {
                    "type": "http.response.body",
                    "body": b"tick %d\n" % n,
                    "more_body": True,
                }
            )
            sent_before_next.append(len(reply.bodies))
        await send({"type": "http.response.body", "body": b""})

    with trio.fail_after(5):
        await GzipMiddleware(streaming)(gzip_request(), Client().receive, reply.send)
    assert sent_before_next == [1, 2, 3]
    assert gzip.decompress(reply.body) == b"tick 0\ntick 1\ntick 2\n"


async def test_gzip_compresses_large_chunks_in_a_thread() -> None:
    big = TEXT * 100  # 440,000 bytes
    reply = await call(GzipMiddleware(text_app((big, big))), gzip_request())
    assert gzip.decompress(reply.body) == big + big


# (request, response) -> not compressed; Vary only where the response was eligible
SKIP_CASES = [
    pytest.param(
        http_scope(headers=[(b"accept-encoding", b"br")]),
        text_app(),
        True,
        id="client does not accept gzip",
    ),
    pytest.param(
        http_scope(headers=[(b"accept-encoding", b"gzip;q=0")]),
        text_app(),
        True,
        id="gzip q=0",
    ),
    pytest.param(http_scope(), text_app(), True, id="no accept-encoding"),
    pytest.param(gzip_request(), text_app((b"short",)), False, id="too small"),
    pytest.param(
        gzip_request(),
        text_app([b"a", b"b"], (b"content-length", b"2")),
        False,
        id="too small by content-length",
    ),
    pytest.param(gzip_request(), text_app(content_type=b"image/png"), False, id="png"),
    pytest.param(
        gzip_request(),
        Answer(200, [], [TEXT]),
        False,
        id="no content-type",
    ),
    pytest.param(
        gzip_request(),
        text_app((TEXT,), (b"content-encoding", b"br")),
        False,
        id="already encoded",
    ),
    pytest.param(
        gzip_request(),
        text_app((TEXT,), (b"cache-control", b"public, no-transform")),
        False,
        id="no-transform",
    ),
    pytest.param(gzip_request(), text_app((), status=204), False, id="204"),
    # A 304 or 206 says Vary as its 200 would (RFC 9110 15.4.5).
    pytest.param(gzip_request(), text_app((), status=304), True, id="304"),
    pytest.param(
        gzip_request(),
        Answer(304, [(b"etag", b'"v1"')], []),
        True,
        id="304 without content-type",
    ),
    pytest.param(
        gzip_request(),
        text_app((), status=304, content_type=b"image/png"),
        False,
        id="304 of a png",
    ),
    pytest.param(
        gzip_request("GET", (b"range", b"bytes=0-99")),
        text_app((TEXT[:100],), (b"content-range", b"bytes 0-99/4400"), status=206),
        True,
        id="range request",
    ),
    pytest.param(
        gzip_request("GET", (b"range", b"bytes=0-99")),
        text_app(),
        True,
        id="range request answered whole",
    ),
    pytest.param(
        gzip_request("GET", (b"range", b"bytes=0-99")),
        text_app((b"x",), status=206, content_type=b"video/mp4"),
        False,
        id="range of a video",
    ),
    pytest.param(
        gzip_request(),
        text_app((TEXT,), (b"content-range", b"bytes 0-4399/4400")),
        False,
        id="content-range",
    ),
]


@pytest.mark.parametrize(("scope", "app", "varies"), SKIP_CASES)
async def test_gzip_leaves_responses_not_worth_compressing(
    scope: Scope, app: Answer, varies: bool
) -> None:
    reply = await call(GzipMiddleware(app), scope)
    assert reply.header(b"content-encoding") in ([], [b"br"])
    assert reply.body == b"".join(app.chunks)
    assert reply.header(b"vary") == ([b"Accept-Encoding"] if varies else [])


# Responses as PHP's HEAD and GET answers look once the writer is done: a
# HEAD announces the length of the body PHP wrote, or nothing.
HEAD_CASES = [
    pytest.param([(b"content-length", b"4400")], id="announced"),
    pytest.param([], id="unannounced"),
    pytest.param([(b"content-length", b"5")], id="too small"),
    pytest.param([(b"etag", b'"v1"'), (b"accept-ranges", b"bytes")], id="etag"),
    pytest.param([(b"vary", b"Cookie")], id="vary"),
]


@pytest.mark.parametrize("accept", [b"gzip", b"identity"])
@pytest.mark.parametrize("headers", HEAD_CASES)
async def test_gzip_head_has_the_headers_of_its_get(
    headers: list[tuple[bytes, bytes]], accept: bytes
) -> None:
    # RFC 9110 9.3.2: the same header fields as for GET, except those whose
    # value is only known once the body is made (the compressed length).
    declared = [v for n, v in headers if n == b"content-length"]
    body = b"x" * int(declared[0]) if declared else TEXT
    scope = http_scope("GET", headers=[(b"accept-encoding", accept)])
    get = await call(GzipMiddleware(text_app((body,), *headers)), scope)
    scope = http_scope("HEAD", headers=[(b"accept-encoding", accept)])
    head = await call(GzipMiddleware(text_app((b"",), *headers)), scope)

    def fields(reply: Reply) -> list[tuple[bytes, bytes]]:
        return sorted(line for line in reply.headers if line[0] != b"content-length")

    assert fields(head) == fields(get)
    assert head.body == b""
    compressed = get.header(b"content-encoding") == [b"gzip"]
    assert head.header(b"content-length") == ([] if compressed else declared)


async def test_gzip_never_compresses_twice() -> None:
    app = GzipMiddleware(GzipMiddleware(text_app()))
    reply = await call(app, gzip_request())
    assert reply.header(b"content-encoding") == [b"gzip"]
    assert gzip.decompress(reply.body) == TEXT


async def test_gzip_merges_vary_with_the_apps() -> None:
    app = text_app((TEXT,), (b"Vary", b"Cookie"))
    reply = await call(GzipMiddleware(app), gzip_request())
    assert reply.header(b"vary") == [b"Cookie, Accept-Encoding"]


async def test_gzip_passes_trailers_and_other_messages_through() -> None:
    async def with_trailers(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": TEXT})
        await send({"type": "http.response.trailers", "headers": [(b"x-t", b"1")]})

    reply = await call(GzipMiddleware(with_trailers), gzip_request())
    assert [m["type"] for m in reply.messages] == [
        "http.response.start",
        "http.response.body",
        "http.response.trailers",
    ]
    assert gzip.decompress(reply.body) == TEXT


async def test_gzip_sends_a_start_the_app_never_followed_with_a_body() -> None:
    async def start_only(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )

    reply = await call(GzipMiddleware(start_only), gzip_request())
    assert reply.status == 200


async def test_gzip_passes_other_scopes() -> None:
    seen: list[Message] = []
    app = Answer()

    async def record(message: Message) -> None:
        seen.append(message)

    scope = {"type": "lifespan"}
    await GzipMiddleware(app)(scope, Client().receive, record)
    assert app.scope is scope
    assert seen[0]["type"] == "http.response.start"
