"""How one HTTP/1.1 response goes on the wire: head, body framing, end.

``ResponseFramer`` takes what an ASGI app sends (a status with headers,
then body pieces) and returns the bytes to write, so that the connection
writes each response with as few writes as it can: the head together with
the first body piece, and the last piece together with the end of the
chunked body.

Framing, in this order of preference (RFC 9112 6):

- no body at all for HEAD, 1xx, 204 and 304, whatever the app sends; a
  1xx or 204 never carries Content-Length;
- the app's own ``Content-Length``, which the body must match exactly;
- a body sent in one piece gets its length;
- a streamed body is chunked for HTTP/1.1 and ends with the connection
  for HTTP/1.0.

The app does not choose the framing: a ``Transfer-Encoding`` it sends is
dropped. Header names and values are checked (a token, no CR, LF or NUL),
so that no app can split a response. ``connection: close`` from the app
closes the connection after the response; the framer adds it whenever the
connection is to close, so the client knows too.

Nothing here does I/O.
"""

from __future__ import annotations

import http
from collections.abc import Iterable
from typing import Final

from trio_runner.http.fields import invalid_value_bytes, is_token
from trio_runner.http.response import http_date

__all__ = ["ResponseError", "ResponseFramer", "informational", "simple_response"]

_NO_BODY_STATUSES: Final = frozenset({204, 304})
_FRAMING: Final = frozenset({b"content-length", b"transfer-encoding"})

_CLOSE: Final = (b"connection", b"close")
_CHUNKED_LINE: Final = b"transfer-encoding: chunked\r\n"
_CLOSE_LINE: Final = b"connection: close\r\n"
_KEEP_ALIVE_LINE: Final = b"connection: keep-alive\r\n"
_LAST_CHUNK: Final = b"0\r\n\r\n"

# A header line seen once is valid for good, and most repeat from one
# response to the next (the content type, the date within its second, a
# common length): each is checked and formatted once. Emptied when full,
# so short lines that never repeat (ETags) cost no memory.
_valid_lines: dict[tuple[bytes, bytes], bytes] = {}
_VALID_LINES_MAX = 4096
# Longer values (session cookies, CSP policies) are checked each time: they
# seldom repeat, and kept they would hold megabytes for nothing.
_REMEMBERED_VALUE_MAX = 128


class ResponseError(Exception):
    """The app sent a response that cannot be framed (a bug in the app)."""


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")


_STATUS_LINES: Final = {status: _status_line(status) for status in range(100, 600)}


def _header_lines(headers: Iterable[tuple[bytes, bytes]]) -> list[bytes]:
    """``name: value\\r\\n`` for each header, checked."""
    lines = []
    known = _valid_lines
    for header in headers:
        line = known.get(header)
        if line is None:
            name, value = header
            if not is_token(name):
                raise ResponseError(f"header name {name!r} is not a token")
            if invalid_value_bytes(value):
                raise ResponseError(f"header {name!r} has a value with CR, LF or NUL")
            line = b"%s: %s\r\n" % (name, value)
            if len(value) <= _REMEMBERED_VALUE_MAX:
                if len(known) >= _VALID_LINES_MAX:
                    known.clear()
                known[(bytes(name), bytes(value))] = line
        lines.append(line)
    return lines


# Whole heads seen lately, keyed on the status and the app's header pairs:
# the bridge sends the same few heads again and again (its lines are
# cached, the Date line changes once a second). Emptied when full; a head
# past _PREPARED_HEAD_MAX bytes (session cookies) is made each time.
_prepared_heads: dict[object, tuple[bytes, int | None, bool, bool]] = {}
_PREPARED_HEADS_MAX = 512
_PREPARED_HEAD_MAX = 1024


def _declared_length(value: bytes, declared: int | None) -> int:
    """The length a Content-Length value says; ``declared`` is an earlier one."""
    if declared is not None:
        raise ResponseError("the response has two Content-Length headers")
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        raise ResponseError(f"Content-Length {value!r} is not a length")
    return length


def informational(status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A whole 1xx response (``100 Continue``, ``103 Early Hints``)."""
    return b"".join([_STATUS_LINES[status], *_header_lines(headers), b"\r\n"])


def simple_response(status: int, text: str, *, date_header: bool = True) -> bytes:
    """A whole ``text/plain`` response of the server's own; it closes."""
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        _CLOSE,
    ]
    if date_header:
        headers.append((b"date", http_date()))
    return b"".join([_STATUS_LINES[status], *_header_lines(headers), b"\r\n", body])


class ResponseFramer:
    """Frames the one response to a request.

    Args:
        method: the request's method (HEAD responses carry no body).
        http_version: the request's, ``"1.0"`` or ``"1.1"``.
        keep_alive: the connection may carry another request after this
            one, as far as the server knows yet.
        date_header: add ``Date`` when the app sent none.

    Attributes:
        started: ``start`` was called.
        complete: the response is whole on the wire.
        keep_alive: the connection may carry another request after this
            response (final once ``start`` was called).
    """

    __slots__ = (
        "_app_closes",
        "_chunked",
        "_date",
        "_head",
        "_method",
        "_no_body",
        "_remaining",
        "_version",
        "complete",
        "keep_alive",
        "started",
        "status",
    )

    def __init__(
        self, method: str, http_version: str, *, keep_alive: bool, date_header: bool
    ) -> None:
        self._method = method
        self._version = http_version
        self._date = date_header
        self.keep_alive = keep_alive
        self.started = False
        self.complete = False
        self.status = 0
        self._head: list[bytes] = []
        self._no_body = False
        self._chunked = False
        self._app_closes = False
        self._remaining: int | None = None

    def start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        """Take the status and headers; they are written with the first body.

        Raises:
            ResponseError: a status outside 200-599 (1xx go through
                ``informational``), a header that is not valid, or a
                Content-Length that is not one number.
        """
        if self.started:
            raise ResponseError("the response was already started")
        if not 200 <= status <= 599:
            raise ResponseError(f"status {status!r} is not a final status (200-599)")
        self.started = True
        self.status = status
        self._no_body = self._method == "HEAD" or status in _NO_BODY_STATUSES
        lines = tuple(headers)
        key: tuple[int, tuple[tuple[bytes, bytes], ...]] | None = (status, lines)
        try:
            prepared = _prepared_heads.get(key)
        except TypeError:  # pairs as lists, values as bytearrays: not hashable
            prepared = key = None
        if prepared is None:
            prepared = self._prepare(status, lines)
            if key is not None and len(prepared[0]) <= _PREPARED_HEAD_MAX:
                if len(_prepared_heads) >= _PREPARED_HEADS_MAX:
                    _prepared_heads.clear()
                _prepared_heads[key] = prepared
        head, self._remaining, self._app_closes, has_date = prepared
        if self._app_closes:
            self.keep_alive = False
        if self._date and not has_date:
            self._head = [head, *_header_lines([(b"date", http_date())])]
        else:
            self._head = [head]

    @staticmethod
    def _prepare(
        status: int, headers: Iterable[tuple[bytes, bytes]]
    ) -> tuple[bytes, int | None, bool, bool]:
        """The status line and header lines of a head, checked, and what
        they say: the declared length, whether the app closes, whether
        they have a Date."""
        kept: list[tuple[bytes, bytes]] = []
        declared: int | None = None
        app_closes = has_date = False
        for name, value in headers:
            name = bytes(name).lower()
            value = bytes(value)
            if name in _FRAMING:
                if name == b"content-length" and status != 204:
                    declared = _declared_length(value, declared)
                    kept.append((name, value))
                continue
            if name == b"connection" and b"close" in value.lower():
                app_closes = True
            elif name == b"date":
                has_date = True
            kept.append((name, value))
        head = b"".join([_STATUS_LINES[status], *_header_lines(kept)])
        return head, declared, app_closes, has_date

    def body(self, data: bytes, *, more: bool) -> bytes:
        """The bytes to write for one body piece; ``more=False`` ends it.

        Raises:
            ResponseError: the body is longer than its Content-Length, or
                ended shorter; the connection must close.
        """
        if self.complete:
            raise ResponseError("the response is already complete")
        head = self._head
        if head:
            self._head = []
            prefix = self._head_end(head, data, more)
        else:
            prefix = b""
        if not more:
            self.complete = True
        if self._no_body:
            return prefix
        if self._remaining is not None:
            self._remaining -= len(data)
            if self._remaining < 0 or (not more and self._remaining):
                self.keep_alive = False
                raise ResponseError(
                    "the body does not match the response's Content-Length"
                )
        elif self._chunked:
            if data:
                data = b"%x\r\n%s\r\n" % (len(data), data)
            if not more:
                data += _LAST_CHUNK
        if prefix:
            return prefix + data
        return data

    def _head_end(self, head: list[bytes], data: bytes, more: bool) -> bytes:
        """The head, with the framing headers this body needs, and its end."""
        if not self._no_body and self._remaining is None:
            if not more:
                self._remaining = len(data)
                head.append(b"content-length: %d\r\n" % len(data))
            elif self._version == "1.1":
                self._chunked = True
                head.append(_CHUNKED_LINE)
            else:
                self.keep_alive = False  # the end of the body is the close
        if not self.keep_alive:
            if not self._app_closes:
                head.append(_CLOSE_LINE)
        elif self._version == "1.0":
            head.append(_KEEP_ALIVE_LINE)
        head.append(b"\r\n")
        return b"".join(head)
