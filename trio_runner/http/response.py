"""What PHP answers, and what the client gets back when PHP cannot answer.

A response frame's context is sniffed, not trusted to its flags byte
(PROTOCOL.md 4.1): PHP before roadrunner-http 3.5 sends JSON with flags 0,
newer PHP sends whichever codec it received. A context starting with ``{``
is the JSON ``{"status": ..., "headers": {...}}``; anything else is a
protobuf ``http.v1.Response``. An empty context means 200 with no headers.

``response_headers`` turns PHP's header map into ASGI header lines: one
line per value (several ``Set-Cookie`` are never joined), framing headers
left to the server, and lines an HTTP library would refuse dropped rather
than allowed to break the connection. ``split_trailers`` takes out the
headers PHP names in ``Trailer``, to be sent after the body (PROTOCOL.md
4.6).

``error_response`` maps every pool failure to the response the client
sees; the bridge logs, this module only decides. Nothing here does I/O.
"""

from __future__ import annotations

import functools
import http
import json
import time
from email.utils import formatdate
from typing import Any

import attrs
from google.protobuf.message import DecodeError

from trio_runner.errors import (
    NoFreeWorkers,
    PoolClosed,
    RemoteProtocolError,
    SoftError,
    TrioRunnerError,
    WorkerCrashed,
    WorkerCutAtStop,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.http.fields import invalid_value_bytes, is_token
from trio_runner.http.proto import http_pb2

__all__ = [
    "PlainResponse",
    "ResponseHead",
    "decode_response_context",
    "error_response",
    "http_date",
    "plain_response",
    "response_headers",
    "split_trailers",
]

# The server frames the body itself; PHP must not choose the framing.
_FRAMING_HEADERS = frozenset({b"transfer-encoding"})
# HTTP/2 and HTTP/3 forbid connection-specific headers (RFC 9113 8.2.2).
_CONNECTION_HEADERS = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"upgrade",
    }
)


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The current time as an HTTP ``Date`` value, made once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


@attrs.frozen(cache_hash=True)
class ResponseHead:
    """The status and headers PHP sent in a response context.

    Attributes:
        status: the status code as PHP sent it; not validated here.
        headers: name -> values, in PHP's order.
    """

    status: int = 200
    headers: tuple[tuple[str, tuple[bytes, ...]], ...] = ()

    def values(self, name: str) -> list[bytes]:
        """Every value of header ``name`` (any case), in order."""
        name = name.lower()
        return [
            v for key, values in self.headers if key.lower() == name for v in values
        ]


# Most responses of an app carry the same few contexts (a page's status
# and headers, a redirect's): the short ones are decoded once, and so are
# their header lines. A context with a session cookie or an ETag in it is
# a miss that costs one entry of a small cache.
_CACHED_CONTEXT = 512  # bytes
_CACHE_ENTRIES = 256


def decode_response_context(context: bytes) -> ResponseHead:
    """Decode a response context, JSON or protobuf, whatever the frame flags.

    Raises:
        RemoteProtocolError: the context is neither valid JSON of the
            expected shape nor a valid ``http.v1.Response``.
    """
    if len(context) <= _CACHED_CONTEXT:
        return _decode_short(bytes(context))
    return _decode(context)


@functools.lru_cache(maxsize=_CACHE_ENTRIES)
def _decode_short(context: bytes) -> ResponseHead:
    return _decode(context)


def _decode(context: bytes) -> ResponseHead:
    if not context:
        return ResponseHead()
    if context[:1] == b"{":
        return _decode_json(context)
    try:
        message = http_pb2.Response.FromString(context)
    except DecodeError as exc:
        raise RemoteProtocolError(
            f"the response context is not a valid http.v1.Response: {exc}"
        ) from exc
    # Keys, then lookups: protobuf's map .items() is a slow Python view. A
    # slice of the values, because upb's repeated field has no __iter__ and
    # tuple() would index it until IndexError.
    table = message.headers
    headers = tuple([(name, tuple(table[name].value[:])) for name in table])
    return ResponseHead(message.status, headers)


def _decode_json(context: bytes) -> ResponseHead:
    try:
        data: Any = json.loads(context)
    except ValueError as exc:
        raise RemoteProtocolError(
            f"the response context is not valid JSON: {exc}"
        ) from exc
    status = data.get("status", 0)
    if not isinstance(status, int) or isinstance(status, bool):
        raise RemoteProtocolError(
            f'"status" in the JSON response context must be an integer, got {status!r}'
        )
    raw_headers = data.get("headers") or {}  # PHP encodes an empty map as []
    if not isinstance(raw_headers, dict):
        raise RemoteProtocolError(
            f'"headers" in the JSON response context must be an object, '
            f"got {type(raw_headers).__name__}"
        )
    headers = []
    for name, values in raw_headers.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise RemoteProtocolError(
                f"header {name!r} in the JSON response context must be a list "
                f"of strings, got {values!r}"
            )
        headers.append((name, tuple(v.encode("utf-8", "replace") for v in values)))
    return ResponseHead(status, tuple(headers))


def response_headers(
    head: ResponseHead, *, http_version: str = "1.1"
) -> tuple[list[tuple[bytes, bytes]], list[str]]:
    """Return ASGI header lines for ``head``, and what had to be dropped.

    Names are lower-cased as ASGI requires. CR and LF inside a value become
    spaces, as Go does. ``Transfer-Encoding`` is always dropped, and over
    HTTP/2 and later so are the connection-specific headers; a name that is
    not a token or a value with control bytes is dropped too. The second
    list describes each dropped line, for the log. Both lists are the
    caller's to change.
    """
    lines, dropped = _header_lines(head, http_version.startswith("1"))
    return list(lines), list(dropped)


@functools.lru_cache(maxsize=_CACHE_ENTRIES)
def _header_lines(
    head: ResponseHead, http1: bool
) -> tuple[tuple[tuple[bytes, bytes], ...], tuple[str, ...]]:
    forbidden = _FRAMING_HEADERS if http1 else _CONNECTION_HEADERS
    lines: list[tuple[bytes, bytes]] = []
    dropped: list[str] = []
    for name, values in head.headers:
        raw_name = _header_name(name)
        if raw_name is None:
            dropped.append(f"header name {name!r} is not a valid token")
            continue
        if raw_name in forbidden:
            dropped.append(f"header {name!r} is set by the server, not by PHP")
            continue
        for value in values:
            invalid = invalid_value_bytes(value)
            if invalid:
                if b"\r" in invalid or b"\n" in invalid:
                    value = value.replace(b"\r", b" ").replace(b"\n", b" ")
                    invalid = invalid.replace(b"\r", b"").replace(b"\n", b"")
                if invalid:
                    dropped.append(f"header {name!r} has control bytes: {value[:60]!r}")
                    continue
            lines.append((raw_name, value))
    return tuple(lines), tuple(dropped)


@functools.lru_cache(maxsize=512)
def _header_name(name: str) -> bytes | None:
    """The ASGI (lower-case) form of a header name PHP sent; None if invalid."""
    raw_name = name.encode("utf-8", "replace").lower()
    return raw_name if is_token(raw_name) else None


def split_trailers(head: ResponseHead) -> tuple[ResponseHead, ResponseHead]:
    """Split ``head`` into the headers and the trailers PHP asked for.

    ``Trailer`` holds comma-separated header names; each named header that
    ``head`` has moves to the second result, and ``Trailer`` itself is
    dropped, as RoadRunner does. Without ``Trailer`` the second result has
    no headers.
    """
    names = {
        name.strip().lower()
        for value in head.values("trailer")
        for name in value.decode("latin-1").split(",")
    }
    if not names:
        return head, ResponseHead(head.status)
    kept: list[tuple[str, tuple[bytes, ...]]] = []
    moved: list[tuple[str, tuple[bytes, ...]]] = []
    for name, values in head.headers:
        if name.lower() != "trailer":
            (moved if name.lower() in names else kept).append((name, values))
    return ResponseHead(head.status, tuple(kept)), ResponseHead(
        head.status, tuple(moved)
    )


@attrs.frozen
class PlainResponse:
    """A short text response written by the bridge itself, not by PHP."""

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()


def plain_response(
    status: int, text: str, headers: tuple[tuple[bytes, bytes], ...] = ()
) -> PlainResponse:
    """A ``text/plain`` response with a Content-Length."""
    body = text.encode()
    return PlainResponse(
        status,
        body,
        (
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            *headers,
        ),
    )


_RETRY_LATER = ((b"retry-after", b"1"), (b"no-workers", b"true"))


def error_response(
    error: TrioRunnerError, *, internal_error_code: int = 500, debug: bool = False
) -> PlainResponse:
    """Return what the client gets when the pool fails a request.

    The text never shows PHP's error message or worker output unless
    ``debug`` is on: they may hold paths, queries and secrets. Failures of
    the worker use ``internal_error_code``, as RoadRunner does; waiting
    (503) and exec_ttl (504) have statuses of their own so that clients and
    load balancers can tell them apart.
    """
    if isinstance(error, SoftError):
        if debug:
            return plain_response(internal_error_code, error.message)
        return plain_response(internal_error_code, _phrase(internal_error_code))
    if isinstance(error, WorkerTimeout):
        return plain_response(504, "The request took too long and was stopped.\n")
    if isinstance(error, WorkerCutAtStop):
        return plain_response(503, "The server is shutting down.\n")
    if isinstance(error, WorkerCrashed):
        text = "The PHP worker failed while handling the request.\n"
        if debug:
            text = f"{text}{error}\n{error.output}"
        return plain_response(internal_error_code, text)
    if isinstance(error, WorkerStartError):
        text = "Could not start a PHP worker.\n"
        if debug:
            text = f"{text}{error}\n"
            if error.output not in str(error):  # the spawner's message quotes it
                text += error.output
        return plain_response(internal_error_code, text)
    if isinstance(error, NoFreeWorkers):
        return plain_response(
            503, "No PHP worker is free; retry shortly.\n", _RETRY_LATER
        )
    if isinstance(error, PoolClosed):
        return plain_response(503, "The server is shutting down.\n")
    return plain_response(internal_error_code, _phrase(internal_error_code))


def _phrase(status: int) -> str:
    try:
        return f"{http.HTTPStatus(status).phrase}\n"
    except ValueError:
        return "Error\n"
