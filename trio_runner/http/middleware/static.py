"""The ``static`` middleware: files from ``[http.static] dir``, else PHP.

``GET`` and ``HEAD`` requests whose path names a servable file (see
``docroot`` for what may be served) are answered here; every other request,
and every miss, goes on to the app unchanged. A file is answered with:

- ``Content-Type`` guessed from its extension (``mimetypes``; text types
  say ``charset=utf-8``), ``Last-Modified``, ``Accept-Ranges: bytes``,
  ``X-Content-Type-Options: nosniff``, and with ``calculate_etag`` an
  ``ETag``: strong, the CRC32 of the content (cached per inode, size and
  mtime); or with ``weak``, ``W/`` over the size and mtime, without reading
  the file;
- 304 when ``If-None-Match`` matches the ETag (weak comparison) or, without
  ``If-None-Match``, when the file is not newer than ``If-Modified-Since``;
- 206 with ``Content-Range`` for one satisfiable byte range, 416 with
  ``Content-Range: bytes */size`` for an unsatisfiable one; several ranges,
  a malformed ``Range`` or an ``If-Range`` that no longer matches get the
  whole file (RFC 9110 allows ignoring ``Range``);
- the ``[http.static.response]`` headers, replacing same-named ones.
  ``[http.static.request]`` headers are set on the request the file is
  served for (so they can only affect the conditional and range handling,
  as in RoadRunner); a miss goes on without them.

Files are streamed in 64 KiB chunks read in a worker thread, never read
whole; streaming stops early when the client disconnects.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import zlib
from pathlib import Path

import attrs
import trio

from trio_runner.config.model import StaticConfig
from trio_runner.errors import ConfigError
from trio_runner.http.asgi import ASGIApp, Receive, Scope, Send
from trio_runner.http.middleware.docroot import DocumentRoot, OpenedFile, scope_segments
from trio_runner.http.middleware.field import (
    Headers,
    encode_table,
    format_http_date,
    header_values,
    parse_http_date,
    replace_headers,
    single_header,
    split_list,
    without,
)

__all__ = ["StaticFiles", "Unsatisfiable", "parse_range"]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 64 * 1024
_ETAG_CACHE_SIZE = 4096
# For web files the host's tables may not know (no /etc/mime.types).
_WEB_TYPES = {
    ".map": "application/json",
    ".mjs": "text/javascript",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".avif": "image/avif",
    ".webp": "image/webp",
}
_ARCHIVE_TYPES = {
    "gzip": "application/gzip",
    "bzip2": "application/x-bzip2",
    "xz": "application/x-xz",
    "br": "application/x-brotli",
    "compress": "application/x-compress",
}


class Unsatisfiable:
    """``parse_range``'s answer for a range that lies outside the file."""


UNSATISFIABLE = Unsatisfiable()


def parse_range(value: bytes, size: int) -> tuple[int, int] | Unsatisfiable | None:
    """The inclusive ``(first, last)`` bytes of a ``Range`` value, for a file
    of ``size`` bytes; ``UNSATISFIABLE``; or None to serve the whole file
    (a malformed value, another unit, or more than one range)."""
    unit, equals, spec = value.partition(b"=")
    if unit.strip().lower() != b"bytes" or not equals:
        return None
    ranges = split_list([spec])
    if len(ranges) != 1:
        return None
    first_text, dash, last_text = ranges[0].partition(b"-")
    first_text, last_text = first_text.strip(), last_text.strip()
    if not dash:
        return None
    if not first_text:  # a suffix: the last N bytes
        if not last_text.isdigit():
            return None
        length = int(last_text)
        if length == 0 or size == 0:
            return UNSATISFIABLE
        return max(0, size - length), size - 1
    if not first_text.isdigit() or (last_text and not last_text.isdigit()):
        return None
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    last = int(last_text) if last_text else size - 1
    return first, min(last, size - 1)


@attrs.define(eq=False)
class StaticFiles:
    """ASGI middleware serving files from a directory; see the module docstring.

    Args:
        app: the app behind it, for everything not served here.
        root: where files come from and what may be served.
        calculate_etag: send an ``ETag`` and honour ``If-None-Match``.
        weak: make that ETag weak, from size and mtime only.
        request: header lines set on requests a file is served for.
        response: header lines set on every file response.
    """

    app: ASGIApp
    root: DocumentRoot
    calculate_etag: bool = False
    weak: bool = False
    request: Headers = attrs.field(factory=list)
    response: Headers = attrs.field(factory=list)
    _etags: dict[tuple[int, int, int, int], bytes] = attrs.field(
        factory=dict, init=False
    )

    @classmethod
    def from_config(
        cls, app: ASGIApp, config: StaticConfig, *, working_dir: Path
    ) -> StaticFiles:
        """Build it from ``[http.static]``; ``dir`` is relative to ``working_dir``.

        Raises:
            ConfigError: ``dir`` is not an existing directory.
        """
        directory = working_dir / config.dir
        if not directory.is_dir():
            raise ConfigError(
                f"http.static.dir must be an existing directory, got "
                f"{config.dir!r} ({directory} is not one; relative paths are "
                "relative to working_dir)"
            )
        if ".php" not in config.forbid and (not config.allow or ".php" in config.allow):
            logger.warning(
                "http.static serves .php files from %s as plain text: add "
                '".php" to http.static.forbid unless that is what you want',
                directory,
                extra={"reason": "static_serves_php"},
            )
        # mimetypes reads the system's tables on first use: do it now, not
        # on the event loop while a request waits.
        mimetypes.guess_type("index.html")
        return cls(
            app,
            DocumentRoot.from_dir(directory, config.forbid, config.allow),
            calculate_etag=config.calculate_etag,
            weak=config.weak,
            request=encode_table(config.request),
            response=encode_table(config.response),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path")
        segments = scope_segments(
            None if raw_path is None else bytes(raw_path), str(scope.get("path", ""))
        )
        if segments is None or not self.root.may_serve(segments):
            await self.app(scope, receive, send)
            return
        opened = await trio.to_thread.run_sync(self.root.open_file, segments)
        if opened is None:
            await self.app(scope, receive, send)
            return
        try:
            await self._serve(opened, scope, receive, send)
        finally:
            os.close(opened.fd)

    async def _serve(
        self, opened: OpenedFile, scope: Scope, receive: Receive, send: Send
    ) -> None:
        request = replace_headers(scope.get("headers", ()), self.request)
        etag = await self._etag(opened) if self.calculate_etag else None
        headers: Headers = [
            (b"content-type", _content_type(opened.name)),
            (b"last-modified", format_http_date(opened.mtime)),
            (b"accept-ranges", b"bytes"),
            (b"x-content-type-options", b"nosniff"),
        ]
        if etag is not None:
            headers.append((b"etag", etag))
        headers = replace_headers(headers, self.response)

        if _not_modified(request, etag, opened.mtime):
            kept = without(headers, [b"content-type", b"accept-ranges"])
            await _send_empty(send, 304, kept)
            return
        first, last, status = 0, opened.size - 1, 200
        if scope["method"] == "GET" and _range_applies(request, etag, opened.mtime):
            wanted = parse_range(header_values(request, b"range")[0], opened.size)
            if isinstance(wanted, Unsatisfiable):
                lines = [(b"content-range", b"bytes */%d" % opened.size)]
                await _send_empty(send, 416, replace_headers(lines, self.response))
                return
            if wanted is not None:
                first, last, status = wanted[0], wanted[1], 206
                span = b"bytes %d-%d/%d" % (first, last, opened.size)
                headers.append((b"content-range", span))
        headers.append((b"content-length", b"%d" % (last - first + 1)))
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        await _stream(opened, first, last, receive, send)

    async def _etag(self, opened: OpenedFile) -> bytes:
        if self.weak:
            return b'W/"%x-%x"' % (opened.size, opened.mtime_ns)
        key = (opened.device, opened.inode, opened.size, opened.mtime_ns)
        etag = self._etags.get(key)
        if etag is None:
            crc = await trio.to_thread.run_sync(_crc32, opened.fd, opened.size)
            etag = b'"%08x-%x"' % (crc, opened.size)
            if len(self._etags) >= _ETAG_CACHE_SIZE:
                del self._etags[next(iter(self._etags))]  # the oldest entry
            self._etags[key] = etag
        return etag


def _content_type(name: str) -> bytes:
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    if encoding is not None:
        # A .tar.gz is a gzip file to download, never Content-Encoding: gzip.
        guessed = _ARCHIVE_TYPES.get(encoding, "application/octet-stream")
    elif guessed is None:
        extension = os.path.splitext(name)[1].lower()
        guessed = _WEB_TYPES.get(extension, "application/octet-stream")
    if guessed.startswith("text/"):
        guessed += "; charset=utf-8"
    return guessed.encode("ascii")


def _crc32(fd: int, size: int) -> int:
    crc = offset = 0
    while offset < size:
        data = os.pread(fd, CHUNK_SIZE, offset)
        if not data:
            break
        crc = zlib.crc32(data, crc)
        offset += len(data)
    return crc


def _weak_equal(left: bytes, right: bytes) -> bool:
    return left.removeprefix(b"W/") == right.removeprefix(b"W/")


def _not_modified(request: Headers, etag: bytes | None, mtime: float) -> bool:
    """RFC 9110 13.2.2: If-None-Match first; If-Modified-Since only without it."""
    tags = split_list(header_values(request, b"if-none-match"))
    if tags:
        return any(
            tag == b"*" or (etag is not None and _weak_equal(tag, etag)) for tag in tags
        )
    since = single_header(request, b"if-modified-since")
    if since is None:
        return False
    moment = parse_http_date(since)
    return moment is not None and int(mtime) <= moment


def _range_applies(request: Headers, etag: bytes | None, mtime: float) -> bool:
    """A single ``Range`` header, and ``If-Range`` (if any) still matching."""
    if len(header_values(request, b"range")) != 1:
        return False
    condition = single_header(request, b"if-range")
    if condition is None:
        return not header_values(request, b"if-range")
    condition = condition.strip()
    if condition.startswith((b'"', b"W/")):
        # Only a strong validator may pass (RFC 9110 13.1.5).
        return etag is not None and not etag.startswith(b"W/") and condition == etag
    moment = parse_http_date(condition)
    return moment is not None and int(mtime) == moment


async def _send_empty(send: Send, status: int, headers: Headers) -> None:
    if status != 304:
        headers = [*headers, (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _stream(
    opened: OpenedFile, first: int, last: int, receive: Receive, send: Send
) -> None:
    """Send bytes ``first`` to ``last`` of the file, chunk by chunk.

    A task watches ``receive`` for the disconnect; sends are never
    cancelled (cancelling inside a server's send can wedge its connection),
    the loop just stops before the next read.
    """
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        if first > last:  # an empty file
            await send({"type": "http.response.body", "body": b""})
        offset = first
        while offset <= last and not gone:
            wanted = min(CHUNK_SIZE, last + 1 - offset)
            data = await trio.to_thread.run_sync(os.pread, opened.fd, wanted, offset)
            if not data:
                # The file shrank after its size was sent: leave the body
                # unended so the server drops the connection; a short body
                # must not look complete.
                logger.warning(
                    "static file %s shrank while it was sent; dropping the connection",
                    opened.name,
                    extra={"reason": "static_file_changed"},
                )
                break
            offset += len(data)
            more = offset <= last
            await send({"type": "http.response.body", "body": data, "more_body": more})
        nursery.cancel_scope.cancel()
