"""The ``gzip`` middleware: responses compressed as they stream.

A response is *eligible* when compressing it could pay off, whoever asks:

- its status can carry a body that is the whole representation (not 1xx,
  204, 206 or 304);
- it has no ``Content-Encoding`` (never twice, never over an encoding the
  app chose), no ``Content-Range``, no ``Cache-Control: no-transform``;
- its ``Content-Type`` is text or a known text-like type (JSON, XML,
  JavaScript, SVG, ...): images, archives and video are compressed already;
- it is at least ``minimum_size`` bytes, as far as can be known before the
  first body chunk has to go out (its ``Content-Length``, or the whole body
  when it comes in one message). A body of unknown length that is streamed
  in several chunks is compressed.

An eligible response gets ``Vary: Accept-Encoding``, since what a client
receives depends on that header. It is compressed when the request's
``Accept-Encoding`` gives ``gzip`` (or ``*``) a q-value above 0: then
``Content-Encoding: gzip``, a strong ``ETag`` made weak (the bytes differ
from the file's), no ``Accept-Ranges``, and a ``Content-Length`` for the
compressed size when the body came whole, none when it streams.

Answers to HEAD and to ``Range`` requests are never compressed, but they,
like 304s and 206s, get the headers the full GET answer would have (RFC
9110 9.3.2, 15.3.7, 15.4.5), so that caches and clients see one resource:

- a HEAD answer is judged as its GET would be, with the body length it
  announces (none: a streamed body), and gets the same ``Vary``,
  ``Content-Encoding`` and ``ETag``; its ``Content-Length`` is dropped
  when the GET would be compressed, as the compressed size is unknown;
- a 304, a 206 and any answer to a ``Range`` request get ``Vary`` when
  their representation could be compressed (a 304 without a
  ``Content-Type`` is assumed to stand for one that could).

Streaming: each chunk is compressed and flushed (``Z_SYNC_FLUSH``) before it
is sent, so a streamed PHP response reaches the client chunk by chunk, not
when zlib's buffer fills. Chunks of 64 KiB and more are compressed in a
worker thread (zlib releases the GIL) so the event loop keeps serving.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import attrs
import trio

from trio_runner.http.asgi import ASGIApp, Message, Receive, Scope, Send
from trio_runner.http.middleware.field import (
    Headers,
    add_vary,
    header_values,
    split_list,
    without,
)

__all__ = ["GzipMiddleware", "accepts_gzip", "compressible"]

MINIMUM_SIZE = 1024
LEVEL = 6
_THREAD_THRESHOLD = 64 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS

_QVALUE = re.compile(rb"0(?:\.\d{0,3})?|1(?:\.0{0,3})?")
_COMPRESSIBLE = frozenset(
    {
        b"application/javascript",
        b"application/x-javascript",
        b"application/ecmascript",
        b"application/json",
        b"application/x-ndjson",
        b"application/xml",
        b"application/wasm",
        b"application/graphql",
        b"application/x-www-form-urlencoded",
        b"application/yaml",
        b"application/toml",
        b"application/vnd.ms-fontobject",
        b"font/otf",
        b"font/ttf",
        b"image/bmp",
        b"image/svg+xml",
        b"image/vnd.microsoft.icon",
        b"image/x-icon",
    }
)
_NOT_WHOLE = frozenset({204, 206, 304})
_PARTIAL_OR_UNCHANGED = frozenset({206, 304})
_VARY = b"Accept-Encoding"


def accepts_gzip(accept_encoding: Sequence[bytes]) -> bool:
    """Whether ``Accept-Encoding`` values give gzip a q-value above 0.

    An explicit ``gzip`` (or its alias ``x-gzip``) decides; otherwise ``*``
    does. A malformed q-value counts as 0.
    """
    gzip_q: float | None = None
    star_q: float | None = None
    for item in split_list(accept_encoding):
        coding, *params = item.split(b";")
        q = 1.0
        for param in params:
            key, _, value = param.partition(b"=")
            if key.strip().lower() == b"q":
                value = value.strip()
                q = float(value) if _QVALUE.fullmatch(value) else 0.0
        coding = coding.strip().lower()
        if coding in (b"gzip", b"x-gzip"):
            gzip_q = max(q, gzip_q or 0.0)
        elif coding == b"*":
            star_q = q
    chosen = gzip_q if gzip_q is not None else star_q
    return chosen is not None and chosen > 0


def compressible(content_type: bytes | None) -> bool:
    """Whether a ``Content-Type`` names a type worth compressing."""
    if not content_type:
        return False
    mime = content_type.partition(b";")[0].strip().lower()
    if mime.startswith(b"text/") or mime in _COMPRESSIBLE:
        return True
    return mime.endswith((b"+json", b"+xml", b"+yaml"))


@attrs.frozen
class GzipMiddleware:
    """ASGI middleware that gzips eligible responses; see the module docstring.

    Args:
        app: the app behind it.
        minimum_size: smaller bodies are sent as they are.
        level: the zlib compression level, 1 (fast) to 9 (small).
    """

    app: ASGIApp
    minimum_size: int = MINIMUM_SIZE
    level: int = LEVEL

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers", ())
        accepts = accepts_gzip(header_values(headers, b"accept-encoding"))
        writer = _Writer(
            send,
            accepts,
            self.minimum_size,
            self.level,
            head=scope["method"] == "HEAD",
            ranged=bool(header_values(headers, b"range")),
        )
        await self.app(scope, receive, writer.send)
        await writer.flush_held_start()


@attrs.define(eq=False)
class _Writer:
    """The send side of one response: holds the start until it can decide."""

    downstream: Send
    accepts: bool
    minimum_size: int
    level: int
    head: bool = False  # a HEAD request: headers as for GET, never a body
    ranged: bool = False  # a Range request: never compressed
    held: Message | None = None
    compressor: zlib._Compress | None = None

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            status = int(message["status"])
            headers: Headers = list(message.get("headers", ()))
            if status in _PARTIAL_OR_UNCHANGED:
                if _could_compress(headers, assume=status == 304):
                    message = dict(message, headers=add_vary(headers, _VARY))
            elif _eligible(message, self.minimum_size):
                if self.head:
                    message = dict(message, headers=self._head_headers(headers))
                elif self.ranged:
                    message = dict(message, headers=add_vary(headers, _VARY))
                else:
                    # Held until the first body chunk: a body that comes
                    # whole can then be sent compressed with its length.
                    self.held = message
                    return
        elif kind == "http.response.body":
            if self.held is not None:
                await self._decide(message)
                return
            if self.compressor is not None:
                await self._send_compressed(message)
                return
        await self.downstream(message)

    async def flush_held_start(self) -> None:
        """Send a start the app never followed with a body (a broken app)."""
        if self.held is not None:
            held, self.held = self.held, None
            await self.downstream(held)

    def _head_headers(self, headers: Headers) -> Headers:
        """The headers of the GET answer, for a HEAD (its length unknown
        once compressed)."""
        headers = add_vary(headers, _VARY)
        return _gzip_headers(headers) if self.accepts else headers

    async def _decide(self, first: Message) -> None:
        assert self.held is not None
        start, self.held = self.held, None
        headers: Headers = list(start.get("headers", ()))
        body = bytes(first.get("body", b""))
        more = bool(first.get("more_body", False))
        size = len(body) if not more else _content_length(headers)
        if size is not None and size < self.minimum_size:
            await self.downstream(start)
            await self.downstream(first)
            return

        headers = add_vary(headers, _VARY)
        if not self.accepts:
            await self.downstream(dict(start, headers=headers))
            await self.downstream(first)
            return

        self.compressor = zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
        headers = _gzip_headers(headers)
        if not more:
            data = await self._compress(body, zlib.Z_FINISH)
            headers.append((b"content-length", b"%d" % len(data)))
            await self.downstream(dict(start, headers=headers))
            await self.downstream({"type": "http.response.body", "body": data})
            return
        await self.downstream(dict(start, headers=headers))
        await self._send_compressed(first)

    async def _send_compressed(self, message: Message) -> None:
        body = bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if more and not body:
            return  # nothing to flush; an empty sync block would be noise
        mode = zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH
        data = await self._compress(body, mode)
        await self.downstream(dict(message, body=data, more_body=more))

    async def _compress(self, data: bytes, mode: int) -> bytes:
        compressor = self.compressor
        assert compressor is not None

        def run() -> bytes:
            return compressor.compress(data) + compressor.flush(mode)

        if len(data) >= _THREAD_THRESHOLD:
            return await trio.to_thread.run_sync(run)
        return run()


def _eligible(start: Message, minimum_size: int) -> bool:
    """Whether a response may be worth compressing, judged by its start."""
    status = int(start["status"])
    if status < 200 or status in _NOT_WHOLE:
        return False
    headers = list(start.get("headers", ()))
    length = _content_length(headers)
    if length is not None and length < minimum_size:
        return False
    if header_values(headers, b"content-range"):
        return False
    return _could_compress(headers)


def _could_compress(headers: Headers, *, assume: bool = False) -> bool:
    """Whether the representation these headers describe may be compressed.

    ``assume``: what to answer when there is no ``Content-Type`` to judge.
    """
    if header_values(headers, b"content-encoding"):
        return False
    cache_control = split_list(header_values(headers, b"cache-control"))
    if any(item.lower() == b"no-transform" for item in cache_control):
        return False
    content_types = header_values(headers, b"content-type")
    if not content_types:
        return assume
    return len(content_types) == 1 and compressible(content_types[0])


def _content_length(headers: Headers) -> int | None:
    values = header_values(headers, b"content-length")
    if len(values) == 1 and values[0].strip().isdigit():
        return int(values[0])
    return None


def _gzip_headers(headers: Headers) -> Headers:
    kept = without(headers, [b"content-length", b"accept-ranges", b"etag"])
    for etag in header_values(headers, b"etag"):
        kept.append((b"etag", etag if etag.startswith(b"W/") else b"W/" + etag))
    kept.append((b"content-encoding", b"gzip"))
    return kept
