"""Writing PHP's response chunks to the client as ASGI messages.

``ResponseWriter`` gets the chunks of one response in order (PROTOCOL.md
4.6-4.7) and decides what goes on the wire:

- 1xx chunks come before the response. A 103 is passed on through ASGI's
  ``http.response.early_hint`` with its own ``Link`` headers only, as
  RoadRunner v6 does; the extension carries nothing else. The lean
  HTTP/1.1 server offers it too; over HTTP/1.1 hypercorn does not, so
  there the 103 is dropped (browsers act on early hints over HTTP/2
  only). A 101 is logged
  and ignored, other 1xx are dropped, and so is any body sent with a 1xx.
- The first other chunk starts the response: a status outside 100-599 is
  answered with 500 instead. Each later chunk's body is sent as it comes;
  its context is not read again (PHP resends it with every chunk).
- HEAD, 204, 205 and 304 responses never carry a body, and
  ``Content-Length`` is never wrong: a 204 has none, a 205 says 0; a
  whole body sent as one chunk gets its real length, correcting PHP's
  with a warning; a HEAD answer announces the body PHP wrote, PHP's own
  value, or nothing.
- Headers named in ``Trailer`` are sent after the body through ASGI's
  ``http.response.trailers`` when the server offers it (HTTP/2 under
  hypercorn) and the client accepts trailers (``TE: trailers``).
  Otherwise they are sent as ordinary headers, so that their values are
  never lost; ``Trailer`` itself is always dropped.
- ``Http2-Push`` paths are pushed through ``http.response.push`` where the
  server offers it (HTTP/2); the header stays, as in RoadRunner.
"""

from __future__ import annotations

import functools
import logging

import attrs

from trio_runner.errors import RemoteProtocolError
from trio_runner.http.asgi import Scope, Send
from trio_runner.http.response import (
    PlainResponse,
    ResponseHead,
    decode_response_context,
    http_date,
    plain_response,
    response_headers,
    split_trailers,
)
from trio_runner.protocol.events import Payload

__all__ = ["ResponseWriter", "send_plain"]

logger = logging.getLogger(__name__)

Lines = list[tuple[bytes, bytes]]

_BODYLESS_STATUSES = frozenset({204, 205, 304})


@attrs.define(eq=False)
class ResponseWriter:
    """Turns the response chunks of one request into ASGI messages.

    Attributes:
        started: the status and headers are sent.
        complete: the response is over; later chunks are ignored.
    """

    send: Send
    method: str
    http_version: str
    debug: bool
    date_header: bool
    early_hints: bool = False
    trailers: bool = False
    push: bool = False
    path: str = ""  # for the log: which request PHP answered badly
    started: bool = False
    complete: bool = False
    _bodyless: bool = False
    _trailer_lines: Lines | None = None

    @classmethod
    def for_request(
        cls, send: Send, scope: Scope, *, debug: bool, date_header: bool
    ) -> ResponseWriter:
        """A writer for the request in ``scope``, using what its server offers."""
        extensions = scope.get("extensions") or {}
        trailers = "http.response.trailers" in extensions and any(
            bytes(name).lower() == b"te" and b"trailers" in bytes(value).lower()
            for name, value in scope.get("headers", ())
        )
        return cls(
            send,
            str(scope["method"]),
            str(scope.get("http_version", "1.1")),
            debug,
            date_header,
            early_hints="http.response.early_hint" in extensions,
            trailers=trailers,
            push="http.response.push" in extensions,
            path=str(scope.get("path", "")),
        )

    async def write(self, chunk: Payload, *, last: bool = False) -> None:
        """Send one chunk; ``last`` ends the response with it."""
        if self.complete:
            return
        if not self.started:
            if not chunk.context and not chunk.body:
                return  # the empty frame that ends a cancelled stream
            try:
                head = decode_response_context(chunk.context)
            except RemoteProtocolError as error:
                self._warn(
                    "%s; answering 500 (context starts with %r)",
                    error,
                    chunk.context[:64],
                    reason="bad_response_context",
                )
                await self._internal_error(str(error))
                return
            if 100 <= head.status < 200:
                await self._informational(head, chunk.body)
                return
            if not 200 <= head.status <= 599:
                self._warn(
                    "the PHP worker sent status %d, outside 100-599; answering 500",
                    head.status,
                    reason="bad_status",
                )
                await self._internal_error(
                    f"The PHP worker sent an invalid status: {head.status}"
                )
                return
            await self._start(head, length=len(chunk.body) if last else None)
        body = b"" if self._bodyless else chunk.body
        if last:
            await self._end(body)
        elif body:
            await self.send(
                {"type": "http.response.body", "body": body, "more_body": True}
            )

    def _warn(self, message: str, *args: object, reason: str) -> None:
        """A warning about PHP's answer, naming the request it answered."""
        logger.warning(
            "%s %s: " + message,
            self.method,
            self.path,
            *args,
            extra={"reason": reason},
        )

    async def finish(self) -> None:
        """End the body. With no chunk but 1xx ones, the response is a bare 200."""
        if self.complete:
            return
        if not self.started:
            await self._start(ResponseHead())
        await self._end(b"")

    async def write_plain(self, response: PlainResponse) -> None:
        """Send a whole response of the bridge's own instead of PHP's."""
        await send_plain(self.send, response, self.method, self.date_header)
        self.started = self.complete = True

    async def _internal_error(self, detail: str) -> None:
        text = f"{detail}\n" if self.debug else "Internal Server Error\n"
        await self.write_plain(plain_response(500, text))

    async def _informational(self, head: ResponseHead, body: bytes) -> None:
        """A 1xx chunk, before the response (PROTOCOL.md 4.6)."""
        if body:
            self._warn(
                "dropped %d bytes of body the PHP worker sent with status %d",
                len(body),
                head.status,
                reason="informational_body",
            )
        if head.status == 101:
            self._warn(
                "the PHP worker sent 101 Switching Protocols; ignored (protocol "
                "switches are the server's, not PHP's)",
                reason="bad_status",
            )
            return
        links = head.values("link")
        if head.status != 103 or not links:
            logger.debug("dropped a %d response with nothing to send", head.status)
            return
        if not self.early_hints:
            logger.debug(
                "dropped 103 Early Hints: HTTP/%s here cannot send them",
                self.http_version,
            )
            return
        await self.send({"type": "http.response.early_hint", "links": links})

    async def _start(self, head: ResponseHead, *, length: int | None = None) -> None:
        """Send the status and headers.

        ``length`` is the whole body's size when it is known (the response
        is one chunk).
        """
        self._bodyless = self.method == "HEAD" or head.status in _BODYLESS_STATUSES
        http1 = self.http_version.startswith("1")
        lines = _lines_of(head, http1)
        dropped = lines.dropped
        message: dict[str, object] = {
            "type": "http.response.start",
            "status": head.status,
        }
        if lines.trailer:
            head, trailers = split_trailers(head)
            if trailers.headers and (self._bodyless or not self.trailers):
                # Sent as headers: the client gets the values, only earlier.
                head = ResponseHead(head.status, head.headers + trailers.headers)
                trailers = ResponseHead(head.status)
            lines = _lines_of(head, http1)
            dropped = lines.dropped
            if trailers.headers:
                trailer_lines = _lines_of(trailers, http1)
                dropped += trailer_lines.dropped
                self._trailer_lines = list(trailer_lines.all)
                message["trailers"] = True
        for problem in dropped:
            self._warn(
                "dropped a response header from PHP: %s",
                problem,
                reason="bad_response_header",
            )
        headers = self._content_length(lines, head.status, length)
        if self.date_header and not lines.has_date:
            headers.append((b"date", http_date()))  # as Go: PHP's own Date wins
        message["headers"] = headers
        if self.push:
            await self._push(head)
        await self.send(message)
        self.started = True

    def _content_length(
        self, lines: _HeadLines, status: int, length: int | None
    ) -> Lines:
        """The header lines with the Content-Length right for this response.

        A HEAD answer announces the body PHP wrote for it, and nothing when
        it wrote none: a framework that drops the body of a HEAD response
        must not make it look empty. A 304 keeps PHP's value, which
        describes the representation it stands for.
        """
        declared = lines.declared
        if status == 204:
            return list(lines.others)  # RFC 9110 8.6: never in a 204
        if status == 205:
            # RFC 9110 15.3.6: no content, and a length that says so.
            return [*lines.others, (b"content-length", b"0")]
        if length is None or status == 304:
            return list(lines.all)
        if self.method == "HEAD":
            if declared or length == 0:
                return list(lines.all)
            return [*lines.all, (b"content-length", b"%d" % length)]
        actual = b"%d" % length
        if declared == (actual,):
            return list(lines.all)
        if declared:
            self._warn(
                "the PHP worker declared Content-Length %s for a %d-byte body; "
                "sending the real length",
                b", ".join(declared).decode("latin-1"),
                length,
                reason="bad_content_length",
            )
        return [*lines.others, (b"content-length", actual)]

    async def _push(self, head: ResponseHead) -> None:
        for value in head.values("http2-push"):
            path = value.decode("latin-1").strip()
            if not path.startswith("/"):
                self._warn(
                    "Http2-Push path %r does not start with '/'; not pushed",
                    path,
                    reason="bad_response_header",
                )
                continue
            await self.send({"type": "http.response.push", "path": path, "headers": []})

    async def _end(self, body: bytes) -> None:
        await self.send({"type": "http.response.body", "body": body})
        if self._trailer_lines is not None:
            await self.send(
                {
                    "type": "http.response.trailers",
                    "headers": self._trailer_lines,
                    "more_trailers": False,
                }
            )
        self.complete = True


@attrs.frozen
class _HeadLines:
    """PHP's headers as ASGI lines, sorted for ``_start``.

    Attributes:
        all: every line kept, in PHP's order.
        others: the same without Content-Length.
        declared: the Content-Length values PHP sent.
        has_date: PHP sent a Date.
        dropped: what ``response_headers`` dropped, for the log.
        trailer: PHP named trailers in ``Trailer``.
    """

    all: tuple[tuple[bytes, bytes], ...]
    others: tuple[tuple[bytes, bytes], ...]
    declared: tuple[bytes, ...]
    has_date: bool
    dropped: tuple[str, ...]
    trailer: bool


@functools.lru_cache(maxsize=256)
def _lines_of(head: ResponseHead, http1: bool) -> _HeadLines:
    """Sort a head's lines once: an app sends the same few heads again
    and again (``ResponseHead`` keeps its hash)."""
    lines, dropped = response_headers(head, http_version="1.1" if http1 else "2")
    declared = tuple([value for name, value in lines if name == b"content-length"])
    others = tuple([line for line in lines if line[0] != b"content-length"])
    return _HeadLines(
        all=tuple(lines),
        others=others,
        declared=declared,
        has_date=any(name == b"date" for name, _ in lines),
        dropped=tuple(dropped),
        trailer=any(name.lower() == "trailer" for name, _ in head.headers),
    )


async def send_plain(
    send: Send, response: PlainResponse, method: str, date_header: bool
) -> None:
    """Send ``response`` whole; a HEAD answer without its body."""
    headers = list(response.headers)
    if date_header:
        headers.append((b"date", http_date()))
    await send(
        {"type": "http.response.start", "status": response.status, "headers": headers}
    )
    body = b"" if method == "HEAD" else response.body
    await send({"type": "http.response.body", "body": body})
