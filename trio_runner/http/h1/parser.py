"""Requests out of a client's byte stream, parsed by httptools (llhttp).

``RequestParser`` is fed whatever the socket gave and queues what it found,
in order, in ``events``::

    RequestHead ─> bytes ... ─> END_OF_BODY ─> RequestHead ─> ...
                                      (pipelined requests follow at once)
    ... ─> Refusal                    (the stream cannot be read on: answer
                                       it, then close the connection)

llhttp enforces most framing rules of RFC 9112 itself, and each breach
becomes a ``Refusal`` with status 400: a request with both Content-Length
and Transfer-Encoding, two Content-Length headers, ``chunked`` given twice
or before another coding, a chunk size that is not hex or overflows,
obsolete line folding, bare LF line ends. On top of llhttp this module
refuses what it leaves to the server: a head over ``max_header_size``
(431), an HTTP version other than 1.0 and 1.1 (``HTTP/1.2`` too, which
llhttp calls malformed) or the HTTP/2 preface (505), an HTTP/1.1
request without exactly one Host (400), an ``Expect`` other than
``100-continue`` (417), a method llhttp does not know that is a valid
token (501: an extension method, which hypercorn serves), chunk framing
or trailers longer than ``max_header_size`` with no body data between
(431), Transfer-Encoding in an HTTP/1.0 request (400:
RFC 9112 §6.1), and transfer codings, read across all
Transfer-Encoding lines: ``chunked`` missing, not last or given twice is
400 (the body's length is unknown; llhttp let a lone ``gzip`` through as
a head with an empty body), and any coding besides the final ``chunked``
is 501 (llhttp de-chunks ``gzip, chunked`` and would hand the gzip bytes
on as plain; this server decodes no other coding). The 501 matches
hypercorn, where h11 answers 501 to any Transfer-Encoding but a lone
``chunked``, even one where ``chunked`` is not last: RFC 9112 §6.3 asks
for 400 there, and that is what this server answers.

An upgrade request (``Connection: upgrade`` with ``Upgrade``, or CONNECT)
pauses the parser after its head: what follows is not HTTP/1.1 unless the
server declines the upgrade, and then ``resume`` parses on. One that has a
body (not CONNECT) does not pause: its body is parsed as any other's, and
the server must decline the upgrade (RFC 9110 7.8 lets it). httptools
tells llhttp to skip the body of any upgrade request, which would leave
the body's bytes to be read as the next request: a smuggled request
behind a proxy that forwards ``Upgrade``.

No I/O here and no trio; the parser never looks at the clock.
"""

from __future__ import annotations

import collections
import re
from typing import Final
from urllib.parse import unquote

import attrs
import httptools

__all__ = [
    "END_OF_BODY",
    "EndOfBody",
    "ParserEvent",
    "Refusal",
    "RequestHead",
    "RequestParser",
]

# Request line and header lines count as what they are on the wire; llhttp
# hands over names and values without ": " and CRLF, so each line adds this
# (exact for the usual "name: value", as h11 counts on the hypercorn side).
_LINE_OVERHEAD = len(b": \r\n")
# And the request line adds two spaces, "HTTP/1.1" and its CRLF, and the
# head's blank line ends it.
_HEAD_OVERHEAD = len(b"  HTTP/1.1\r\n\r\n")

_VERSIONS: Final = frozenset({"1.0", "1.1"})
# A request line's method when it is an RFC 9110 token (and a space follows).
_TOKEN_METHOD: Final = re.compile(rb"(?:\r\n)*([!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32}) ")
# A well-formed request line of a version llhttp does not know (HTTP/1.2).
_OTHER_VERSION: Final = re.compile(rb"^[!-~]+ [!-~]+ HTTP/([0-9]\.[0-9])\r\n", re.M)


@attrs.frozen(slots=True)
class RequestHead:
    """The request line and headers of one request.

    Attributes:
        method: as sent (``GET``).
        target: the request-target as sent, query included.
        path: the target without its query, percent-decoded.
        raw_path: the target without its query, as sent.
        query: what follows ``?`` in the target, as sent.
        http_version: ``"1.0"`` or ``"1.1"``.
        headers: (lower-cased name, value) pairs in the order sent.
        keep_alive: the client lets the connection carry another request.
        expect_continue: the client waits for ``100 Continue`` before it
            sends the body.
        upgrade: the protocol asked for (``b"websocket"``), ``b"connect"``
            for CONNECT, empty for a plain request. The parser is paused,
            unless the request has a body.
        has_body: a body follows the head (``END_OF_BODY`` is not next).
    """

    method: str
    target: bytes
    path: str
    raw_path: bytes
    query: bytes
    http_version: str
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    expect_continue: bool = False
    upgrade: bytes = b""
    has_body: bool = False


@attrs.frozen(slots=True)
class Refusal:
    """The stream cannot be parsed on: answer ``status`` and close.

    ``reason`` says what was wrong, for the client and the debug log.
    """

    status: int
    reason: str


class EndOfBody:
    """The request body is complete (an empty body too)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "END_OF_BODY"


END_OF_BODY: Final = EndOfBody()

ParserEvent = RequestHead | bytes | EndOfBody | Refusal


class RequestParser:
    """One connection's requests, parsed incrementally.

    Args:
        max_header_size: the most bytes a request line and its headers
            may take; a larger head is refused with 431.

    Attributes:
        events: what was parsed and not yet taken, oldest first.
        body_buffered: bytes of body data in ``events``.
        heads_queued: request heads in ``events`` (pipelined requests).
        in_head: part of a request head has arrived, not all of it.
        in_body: a head was parsed and its body is not complete yet.
        paused: an upgrade request stopped the parser (``resume``).
        failed: a ``Refusal`` was queued; nothing more is parsed.
    """

    __slots__ = (
        "_began",
        "_bodies_in_feed",
        "_body_seen",
        "_done_in_feed",
        "_framing_bytes",
        "_head_bytes",
        "_headers",
        "_max",
        "_parser",
        "_pending",
        "_priming",
        "_upgrade_framing",
        "_url",
        "body_buffered",
        "events",
        "failed",
        "heads_queued",
        "in_body",
        "in_head",
        "paused",
    )

    def __init__(self, *, max_header_size: int) -> None:
        self._max = max_header_size
        self._parser = httptools.HttpRequestParser(self)
        self.events: collections.deque[ParserEvent] = collections.deque()
        self.body_buffered = 0
        self.heads_queued = 0
        self.in_head = False
        self.in_body = False
        self.paused = False
        self.failed = False
        self._pending = b""  # what arrived while paused
        # The framing header of an upgrade request's body, from its head to
        # the upgrade that ends llhttp's message; then a fresh parser is
        # primed with it, its callbacks ignored, to parse the body.
        self._upgrade_framing: bytes | None = None
        self._priming = False
        self._head_bytes = 0
        self._began = False
        # Bytes of a body that carried no body data (chunk sizes, their
        # extensions, trailers) since the last piece that did (or that
        # ended the head): see feed().
        self._framing_bytes = 0
        self._body_seen = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        # Of the current feed(): requests completed in it, and whether any
        # of them had body bytes (to find where a later one starts).
        self._done_in_feed = 0
        self._bodies_in_feed = False

    def feed(self, data: bytes) -> None:
        """Parse ``data``; what it completes is appended to ``events``."""
        if self.failed:
            return
        if self.paused:
            self._pending += data
            return
        self._began = False
        self._body_seen = False
        self._done_in_feed = 0
        self._bodies_in_feed = False
        mid_message = self.in_head or self.in_body
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            rest = data[upgrade.args[0] :]
            if self._upgrade_framing is not None:
                self._parse_upgrade_body(self._upgrade_framing, rest)
                return
            # The head (and any body of a CONNECT) is queued; what comes
            # after it belongs to the protocol asked for.
            self.paused = True
            self._pending = rest
            return
        except httptools.HttpParserError as error:
            if self.failed:
                return
            if self._url == b"*" and data.startswith(b"PRI * HTTP/2.0"):
                # The h2c preface: answered as hypercorn does without h2c.
                self._refuse(505, "HTTP/2 without TLS is not served here")
            elif (version := _OTHER_VERSION.search(data)) and "version" in str(error):
                # llhttp calls HTTP/1.2 malformed; it is a version not served.
                other = version.group(1).decode("ascii")
                self._refuse(505, f"HTTP/{other} is not served here")
            elif isinstance(error, httptools.HttpParserInvalidMethodError) and (
                method := self._failed_method(data, mid_message)
            ):
                # A valid token llhttp does not know (an extension method, a
                # lower-case one): not malformed, but not served here.
                name = method.decode("ascii")
                # (http.server = "hypercorn" serves any, README says.)
                self._refuse(501, f"the method {name} is not implemented here")
            else:
                self._refuse(400, _reason(error))
            return
        if self.in_body and not self.in_head:
            # Chunk framing and trailers are parsed and dropped, but llhttp
            # keeps a partial trailer line to itself, and a client could
            # send an endless one (or an endless chunk extension): that
            # much framing with no body data in it is refused, as a head
            # that large would be.
            if self._body_seen:
                self._framing_bytes = 0
            else:
                self._framing_bytes += len(data)
                if self._framing_bytes > self._max:
                    self._refuse(431, "the chunk framing or trailers are too large")
                    return
        if self.in_head:
            # llhttp keeps a partial line to itself, so an endless header
            # is counted here, raw. The read that began the head may hold
            # the end of the previous request: its bytes before the head
            # are left out, and all of that read when where the head began
            # cannot be told, so the count never exceeds the head
            # (on_headers_complete counts it exactly).
            if self._began:
                start = self._start_in(data, mid_message)
                self._head_bytes = 0 if start is None else len(data) - start
            else:
                self._head_bytes += len(data)
            if self._head_bytes > self._max:
                self._refuse(431, "the request head is too large")

    def _failed_method(self, data: bytes, mid_message: bool) -> bytes | None:
        """The method of the request llhttp failed on in ``data``, if it
        is a token; None when that request's start cannot be told."""
        start = self._start_in(data, mid_message)
        if start is None:
            return None
        match = _TOKEN_METHOD.match(data, start)
        return None if match is None else match.group(1)

    def _start_in(self, data: bytes, mid_message: bool) -> int | None:
        """Where in ``data`` the request begun in it starts; None when
        that cannot be told.

        llhttp does not say. The request begins where the requests
        completed before it in ``data`` end: after as many blank lines,
        when none of them had a body and none had begun before ``data``.
        """
        if mid_message:
            return None  # the request in progress began in an earlier read
        start = 0
        if self._done_in_feed:
            if self._bodies_in_feed:
                return None
            for _ in range(self._done_in_feed):
                end = data.find(b"\r\n\r\n", start)
                if end == -1:
                    return None
                start = end + 4
        return start

    def _parse_upgrade_body(self, framing: bytes, rest: bytes) -> None:
        """Parse ``rest`` as the body of the upgrade request just queued."""
        self._upgrade_framing = None
        self._parser = httptools.HttpRequestParser(self)
        self._priming = True
        try:
            self._parser.feed_data(b"POST / HTTP/1.1\r\nHost: _\r\n%s\r\n" % framing)
        finally:
            self._priming = False
        if rest:
            self.feed(rest)

    def resume(self) -> None:
        """Parse on after a declined upgrade: the next bytes are HTTP/1.1."""
        if not self.paused:
            return
        self.paused = False
        self._parser = httptools.HttpRequestParser(self)
        pending, self._pending = self._pending, b""
        if pending:
            self.feed(pending)

    def take(self) -> ParserEvent:
        """Remove and return the oldest event (``events`` must not be empty)."""
        event = self.events.popleft()
        if type(event) is bytes:
            self.body_buffered -= len(event)
        elif type(event) is RequestHead:
            self.heads_queued -= 1
        return event

    def _refuse(self, status: int, reason: str) -> None:
        self.failed = True
        self.in_head = False
        self.in_body = False
        self.events.append(Refusal(status, reason))

    # -- httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        if self._priming:
            return
        self.in_head = True
        self._began = True
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        if not self._priming:
            self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_head:  # llhttp reports chunked trailers here too: dropped
            # llhttp drops the whitespace before a value, not after it
            # (RFC 9110 5.5: neither is part of the value).
            self._headers.append((name.lower(), value.rstrip(b" \t")))

    def on_headers_complete(self) -> None:
        if self._priming:
            return  # the head was queued; the body is this parser's
        self.in_head = False
        # The piece the head ended in counts as body data for the framing
        # limit: its bytes are the head's, and what follows the head in it
        # is at most one read; the pieces after it are counted.
        self._body_seen = True
        if self.failed:
            return
        parser = self._parser
        method = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        headers = self._headers
        size = len(method) + len(self._url) + _HEAD_OVERHEAD
        for name, value in headers:  # a loop: a generator costs more here
            size += len(name) + len(value)
        if size + _LINE_OVERHEAD * len(headers) > self._max:
            self._refuse(431, "the request head is too large")
            return
        if version not in _VERSIONS:
            self._refuse(505, f"HTTP/{version} is not served here")
            return
        head = _head(method, self._url, version, headers)
        if isinstance(head, Refusal):
            self.failed = True
            self.events.append(head)
            return
        if parser.should_upgrade():
            upgrade = b"connect" if method == "CONNECT" else _upgrade(headers)
            head = attrs.evolve(head, upgrade=upgrade or b"unknown")
            if head.has_body and method != "CONNECT":
                self._upgrade_framing = _framing_line(headers)
        self.in_body = True  # until on_message_complete, at once if none
        self.heads_queued += 1
        self.events.append(head)

    def on_body(self, body: bytes) -> None:
        self._body_seen = True
        self._bodies_in_feed = True
        if not self.failed:
            self.body_buffered += len(body)
            self.events.append(body)

    def on_message_complete(self) -> None:
        if self._upgrade_framing is not None:
            return  # llhttp skipped the body: the next parser reads it
        self.in_body = False
        self._done_in_feed += 1
        if not self.failed:
            self.events.append(END_OF_BODY)


def _head(
    method: str, target: bytes, version: str, headers: list[tuple[bytes, bytes]]
) -> RequestHead | Refusal:
    """The ``RequestHead`` of a parsed head, or why it is refused."""
    hosts = 0
    connection = b""
    expect = b""
    has_body = False
    codings: list[bytes] | None = None
    for name, value in headers:
        if name == b"host":
            hosts += 1
        elif name == b"connection":
            connection += b"," + value.lower()
        elif name == b"expect":
            expect = value.strip().lower()
        elif name == b"content-length":
            has_body = int(value) > 0  # llhttp checked it is digits
        elif name == b"transfer-encoding":
            codings = [] if codings is None else codings
            codings += value.split(b",")
    if codings is not None:
        if version == "1.0":
            # RFC 9112 6.1: its framing is faulty, whatever it says; and
            # kept alive, what follows could be read as another request.
            return Refusal(400, "an HTTP/1.0 request cannot use Transfer-Encoding")
        refusal = _transfer_codings(codings)
        if refusal is not None:
            return refusal
        has_body = True
    if version == "1.1" and hosts != 1:
        what = "no Host header" if hosts == 0 else f"{hosts} Host headers"
        return Refusal(400, f"an HTTP/1.1 request needs one Host header, got {what}")
    if expect and expect != b"100-continue":
        return Refusal(417, "the only expectation served is 100-continue")
    tokens = {token.strip() for token in connection.split(b",")} if connection else ()
    keep_alive = b"close" not in tokens if version == "1.1" else b"keep-alive" in tokens
    raw_path, _, query = target.partition(b"?")
    try:
        path = unquote(raw_path.decode("ascii"))
    except UnicodeDecodeError:
        return Refusal(400, "the request target is not ASCII")
    return RequestHead(
        method,
        target,
        path,
        raw_path,
        query,
        version,
        headers,
        keep_alive,
        expect_continue=bool(expect) and version == "1.1" and has_body,
        has_body=has_body,
    )


def _transfer_codings(listed: list[bytes]) -> Refusal | None:
    """Why the transfer codings in ``listed`` (header elements, in order)
    are refused, or None for a lone ``chunked``."""
    codings = [coding.strip().lower() for coding in listed]
    codings = [coding for coding in codings if coding]
    if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") > 1:
        return Refusal(400, "Transfer-Encoding must end in chunked, given once")
    if len(codings) > 1:
        unknown = b", ".join(codings[:-1]).decode("ascii", "replace")
        return Refusal(501, f"the transfer coding {unknown} is not implemented")
    return None


def _framing_line(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The header line that frames a body as ``headers`` do (checked)."""
    length = b"0"
    for name, value in headers:
        if name == b"transfer-encoding":
            return b"Transfer-Encoding: chunked\r\n"
        if name == b"content-length":
            length = value.strip()
    return b"Content-Length: %s\r\n" % length


def _upgrade(headers: list[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == b"upgrade":
            return value.strip().lower()
    return b""


def _reason(error: Exception) -> str:
    text = str(error).strip()
    if not text:
        return "malformed request"
    first = text.split(" ", 1)[0]
    if "-" in first or first.isupper():
        return text  # a header name or an acronym: "Content-Length overflow"
    return text[:1].lower() + text[1:]
