"""One HTTP connection under hypercorn, with the faults seen here fixed.

``serve_http`` runs hypercorn's trio worker loop itself so that every
accepted connection is a ``Connection``: hypercorn's ``TCPServer`` and its
HTTP/1.1 and HTTP/2 protocol classes with these changes, each pinned by a
test in ``tests/http/test_connection.py``:

1. The close path half-closes the socket only when no send is in
   progress. hypercorn called ``send_eof()`` outside its send lock, and
   trio's ``send_eof`` holds the stream's send-conflict detector across a
   checkpoint, so a response written at that moment (an HTTP/2 client that
   leaves with responses in flight) raised ``BusyResourceError``; raised in
   h2's send task, it ended the whole server (DESIGN.md).
2. Whatever else fails inside hypercorn for one connection is logged with
   its traceback and ends that connection only, never the server.
3. HTTP/2 DATA that arrives for a stream whose response is already complete
   (a body refused early with 413) is acknowledged and dropped: hypercorn
   raised ``KeyError`` for it, which ended the server. A client that goes
   on sending for long is told to stop with a NO_ERROR reset (``_H2``).
4. An HTTP/2 response the app leaves unfinished (a worker died mid-stream)
   is reset with INTERNAL_ERROR; hypercorn left the stream open and the
   client waited for the rest forever.
5. HTTP/2 without TLS (h2c) only when asked for. hypercorn always accepts
   both forms; here, with ``h2c`` off, the prior-knowledge preface gets
   ``505 HTTP Version Not Supported`` and ``Upgrade: h2c`` is ignored (the
   request is answered over HTTP/1.1), as a server without h2c must.
6. When an HTTP/2 connection closes (the client left without GOAWAY),
   every stream's send buffer is closed. hypercorn closed the streams and
   stopped its send task but left an app waiting for its body to drain
   asleep for good, and with it the connection, its socket and its request
   (``serve`` then waited out the whole grace period). A response that was
   complete when the connection closed is not reset as unfinished (fix 4
   raised ``KeyError`` for it).
7. Once the client has gone (reading has ended), the connection no longer
   waits out the keep-alive timeout: it closes as soon as its requests
   have returned. hypercorn held the socket for ``keep_alive_timeout``.
8. HTTP/1.1: when the client's next bytes are refused by h11 while a
   response is still being written (a pipelined request after a 413 that
   says ``Connection: close``), reading stops and the response is finished
   before the connection closes. hypercorn closed at once and the client
   got the headers without the body.
9. HTTP/1.1 status lines carry the standard reason phrase (``200 OK``);
   hypercorn sent none (``HTTP/1.1 200 ``), which some clients count as a
   failure (h2load).
10. ``CONNECT`` is answered ``501 Not Implemented`` here, and never reaches
    the app: this is no proxy. Over HTTP/1.1 hypercorn passed it on, and a
    2xx answer switched h11 to a tunnel that refused the response body: an
    error with a long traceback per request, and a connection that never
    closed (shutdown waited out the whole grace period). Over HTTP/2 a
    CONNECT (it has no ``:path``) failed the whole connection. An extended
    CONNECT (with ``:protocol``, RFC 8441 websockets) goes on as before.
11. HTTP/1.1 ``Expect: 100-continue`` is answered ``100 Continue`` when the
    app first asks for the body (``receive()``), as uvicorn does. hypercorn
    sent it as soon as the head was in, so a body the app refuses unread
    (a declared Content-Length over ``max_request_size``: 413) was asked
    for anyway.
12. HTTP/1.1: a client that shuts down its sending side once its request
    is complete still gets the answer, then the connection closes.
    hypercorn took that end of input for the client leaving and dropped
    the request. The price: a client that closes for good while its
    request waits is noticed only when the answer is written to it.
13. Lingering close: when the server closes while the client may still be
    sending (a body left unread, as after a 413, or bytes not yet read),
    it half-closes, then reads and drops what still comes, until the
    client closes too, for at most ``LINGER_SECONDS`` and
    ``LINGER_BYTES``. Closed at once, the kernel answers those bytes with
    a reset, which fails a client still sending its body before it reads
    the answer, and can destroy an answer not yet delivered.
14. ``http.disconnect`` never waits for room. hypercorn hands the app each
    piece of a request body through a channel of a few messages, waiting
    while it is full, and puts the disconnect there when the stream closes.
    An app that answers without reading a large body (a 413, a HEAD, a
    file) left both waiting for good: the reading task on a piece, and the
    app's own last send, which closes the stream, on the disconnect; the
    connection was never closed. Here the disconnect is queued if there is
    room, else ``receive()`` gives it once the app has taken what is
    queued, and pieces still waiting when the stream closes are dropped
    (``_Inbox``).
15. HTTP/1.1: a request head over ``h11_max_incomplete_size`` (which
    ``http.max_header_size`` sets) gets 431 and the connection closes,
    however it arrived. h11 held the limit only against a head still
    incomplete, so one that came whole in a single read (up to 64 KiB;
    under TLS one record, up to 16 KiB) reached the app.
16. HTTP/2: a request whose header list is over ``h2_max_header_list_size``
    (advertised as SETTINGS_MAX_HEADER_LIST_SIZE, and set by
    ``http.max_header_size`` too) gets 431 on its stream, without reaching
    the app; the connection's other streams go on. h2 held the limit only
    once the client had acknowledged the setting, and as a GOAWAY that
    failed every stream. A header list past four times the limit (never
    less than 64 KiB) is still that connection error (``_Decoder``).
17. HTTP/2: a stream whose app is slow to take its request body holds up
    only that stream. hypercorn's reading task waited for room in the
    stream's channel of a few pieces, and with it every other stream of
    the connection (a large upload queued for a worker stalled the GETs
    beside it). Here a piece without room is held by the stream's inbox,
    the connection's window is reopened at once, and the stream's own
    window only as its app takes the held pieces: flow control, not the
    reading task, holds that client, and what is held is bounded by the
    stream's window (``_Inbox.offer``).
18. HTTP/1.1: a request head whose framing h11 took on trust gets 400 and
    the connection closes, before the app sees it, as the lean server
    (``h1/parser.py``) refuses it: both Content-Length and
    Transfer-Encoding (RFC 9112 6.1; h11 read the body as chunked and what
    followed it as the next request), a Content-Length repeated or given
    as a list (``5, 5``; h11 kept one), an obsolete line fold (h11
    unfolded it, which RFC 9112 5.2 allows) and a line ending in a bare LF
    (h11 took it for CRLF, which RFC 9112 2.2 allows), and Transfer-Encoding
    in an HTTP/1.0 request (RFC 9112 6.1); and a chunk size line with a
    bare LF or CR or past 16 hex digits, or a trailer line ending in a bare
    LF (``_HeadBuffer``). Allowed or not, each
    is read otherwise by some proxy in front, which then sees a different
    next request. A version other than HTTP/1.0 and HTTP/1.1 gets 505
    (h11 served ``HTTP/2.0`` as 1.1 and told the app ``2.0``), as on the
    lean server. h11 already refused two different
    lengths (400), and a Transfer-Encoding other than ``chunked`` (501).
    The check is one pass over the parsed headers per request head, and
    compares them with the lines h11 parsed them from (``_HeadBuffer``).
19. After ``Upgrade: h2c``, the request served as HTTP/2 stream 1 reaches
    the app without ``Connection``, the fields it names, ``Upgrade``,
    ``HTTP2-Settings`` and the other HTTP/1.1 hop-by-hop fields, which have
    no place in HTTP/2 (RFC 9113 8.2.2). hypercorn passed them on.
20. HTTP/1.1: bytes after a websocket request's head, before its handshake
    is answered (a body, a pipelined request), are dropped, and the app's
    answer is sent. hypercorn answered 400 at once while the app answered
    too, and the second response raised inside h11
    (``_drop_bytes_before_handshake``).

What h11 lets through and is kept: a Transfer-Encoding on an HTTP/1.0
request is read as chunked, where RFC 9112 6.1 says to distrust its
framing; h11 closes after every HTTP/1.0 response, so nothing can follow
it on the connection. An ``Expect`` other than ``100-continue`` reaches the
app (the lean server answers 417).

HTTP/1.0 keep-alive is not offered: h11 closes every HTTP/1.0 connection
after one response (``Connection: keep-alive`` or not), and working around
that means replacing h11's own state machine.

Everything else is hypercorn's own code. It reaches into hypercorn's
internals, so the hypercorn version is bounded in ``pyproject.toml``. That
is also why this module is one piece, past the usual size: it is the whole
of what trio_runner overrides in hypercorn, and its fixes meet (8, 12 and
13 all decide when an HTTP/1.1 connection closes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import logging
import math
import struct
import termios
from collections import deque
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import h2.errors
import h2.stream
import h11
import hpack
import trio
from h11._receivebuffer import ReceiveBuffer
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import Body, Data, EndBody, StreamClosed
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import (
    H2CProtocolRequiredError,
    H2ProtocolAssumedError,
    H11Protocol,
)
from hypercorn.protocol.ws_stream import WSStream
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import (
    AppWrapper,
    ASGIReceiveCallable,
    ASGIReceiveEvent,
    ASGISendEvent,
    ConnectionState,
    H11SendableEvent,
    Scope,
)

from trio_runner.http.listen import socket_address

__all__ = ["Connection"]

logger = logging.getLogger(__name__)

# Fix 10: what a CONNECT request gets.
_NOT_A_PROXY = b"CONNECT is not supported: this server is not a proxy.\n"
# Fix 16: what an HTTP/2 request over the header limit gets (the lean
# HTTP/1.1 server says the same).
_HEAD_TOO_LARGE = b"the request head is too large\n"


class _Inbox:
    """The way from a stream to its app, replacing hypercorn's ``app_put``
    (fixes 14, 17). ``put`` is what the stream calls; the app's ``receive()``
    goes through ``receive``.

    Given ``credit`` (HTTP/2), body pieces never wait: one without room in
    the channel is held (``offer``), and ``credit`` is called with the size
    of the held pieces the app has taken, to reopen the stream's window.
    Without it (HTTP/1.1), ``put`` waits for room, which holds the client
    through TCP.
    """

    def __init__(
        self,
        put: Callable[[ASGIReceiveEvent], Awaitable[None]],
        credit: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self._put = put
        channel = put.__self__  # type: ignore[attr-defined]
        self._channel: trio.MemorySendChannel[ASGIReceiveEvent] = channel
        self._credit = credit
        # Pieces without room yet, with their flow-controlled sizes.
        self._held: deque[tuple[ASGIReceiveEvent, int]] = deque()
        self._waiting: set[trio.CancelScope] = set()
        self._closed = False
        self._owed = False  # the disconnect, when there was no room for it

    @classmethod
    def fit(
        cls, stream: object, credit: Callable[[int], Awaitable[None]] | None = None
    ) -> None:
        """Give ``stream`` (hypercorn's ``HTTPStream``) an inbox."""
        put = getattr(stream, "app_put", None)
        if isinstance(getattr(put, "__self__", None), trio.MemorySendChannel):
            inbox = cls(put, credit)  # type: ignore[arg-type]
            stream.app_put = inbox.put  # type: ignore[attr-defined]
            stream.inbox = inbox  # type: ignore[attr-defined]

    def offer(self, message: ASGIReceiveEvent, size: int) -> bool:
        """Pass ``message`` on without waiting (with ``credit`` only).

        True if it is off our hands (taken, or dropped as unwanted): its
        ``size`` may be acknowledged now. False if it is held, to be
        credited once the app takes it.
        """
        if self._closed:
            return True
        if not self._held:
            try:
                self._channel.send_nowait(message)
            except trio.WouldBlock:
                pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return True  # the app has returned
            else:
                return True
        self._held.append((message, size))
        return False

    async def put(self, message: ASGIReceiveEvent) -> None:
        if message["type"] == "http.disconnect":
            # The stream has closed: what still waits is not wanted. Held
            # pieces are credited all the same: the client may still be
            # sending a body that is now read and dropped (fix 3).
            self._closed = True
            dropped = sum(size for _, size in self._held)
            self._held.clear()
            for scope in self._waiting:
                scope.cancel()
            try:
                self._channel.send_nowait(message)
            except trio.WouldBlock:
                self._owed = True
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the app has returned
            if dropped and self._credit is not None:
                await self._credit(dropped)
            else:
                await trio.lowlevel.checkpoint()
        elif self._credit is not None:
            self.offer(message, 0)  # the end of the body: nothing to credit
            await trio.lowlevel.checkpoint()
        elif not self._closed:
            with trio.CancelScope() as scope:
                self._waiting.add(scope)
                try:
                    await self._put(message)
                finally:
                    self._waiting.discard(scope)

    async def receive(self, receive: ASGIReceiveCallable) -> ASGIReceiveEvent:
        message: ASGIReceiveEvent
        if not self._owed:
            message = await receive()
            if self._held:
                await self._move_held()
            return message
        channel: Any = getattr(receive, "__self__", None)
        try:
            message = channel.receive_nowait()
        except trio.WouldBlock:  # all taken: now the disconnect
            self._owed = False
            message = {"type": "http.disconnect"}
        await trio.lowlevel.cancel_shielded_checkpoint()
        return message

    async def _move_held(self) -> None:
        """Move held pieces into the room the app has made, and credit them."""
        taken = 0
        while self._held:
            message, size = self._held[0]
            try:
                self._channel.send_nowait(message)
            except trio.WouldBlock:
                break
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._held.clear()  # cannot happen while the app receives
                break
            self._held.popleft()
            taken += size
        if taken and self._credit is not None:
            await self._credit(taken)


class _RefuseConnection(Exception):
    """Raised by the HTTP/1.1 protocol once it has answered: close now."""


class _HeadBuffer(ReceiveBuffer):
    """h11's receive buffer, keeping what the last request head it gave out
    looked like on the wire (fix 18).

    XXX: h11's request reader takes the head from this buffer as lines with
    their ends dropped, then merges what it takes for one field (a folded
    line, a repeated Content-Length) into the ``Request``: only these lines
    still show what came. Both this class and ``_Peer._receive_buffer`` are
    h11 internals (``_receivebuffer``), tested on h11 0.16.
    """

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[bytearray] = []
        self.bare_lf = False

    def maybe_extract_lines(self) -> list[bytearray] | None:
        before = len(self)
        lines = super().maybe_extract_lines()
        if lines is not None:  # a request head, or a chunked body's trailer
            if lines:
                self.lines = lines
            # With CRLF everywhere, each line and the blank one add two bytes.
            wire = sum(map(len, lines)) + 2 * len(lines) + 2
            self.bare_lf = before - len(self) != wire
        return lines

    # A chunk size line longer than this, or a size of more hex digits
    # than 2**64 needs, cannot be meant (llhttp refuses both too).
    MAX_CHUNK_LINE = 4096
    MAX_CHUNK_DIGITS = 16

    def maybe_extract_next_line(self) -> bytearray | None:
        # Only h11's chunked reader asks for one line: a chunk's size. It
        # waited for a CRLF that a bare LF never brings, and took sizes of
        # up to 20 hex digits, then waited for the body: both until the
        # body timeout, and a 408. Refused here with 400 (fix 18).
        line = super().maybe_extract_next_line()
        if line is None:
            if b"\n" in self._data:  # and no CRLF before it
                raise h11.RemoteProtocolError(
                    "a chunk size line ends in a bare LF", error_status_hint=400
                )
            cr = self._data.find(b"\r")
            if cr != -1 and cr + 1 < len(self._data):  # a CR, and no LF after it
                raise h11.RemoteProtocolError(
                    "a chunk size line has a bare CR", error_status_hint=400
                )
            if len(self) > self.MAX_CHUNK_LINE:
                raise h11.RemoteProtocolError(
                    "a chunk size line is too long", error_status_hint=400
                )
            return None
        size = bytes(line).partition(b";")[0].strip().lstrip(b"0")
        if len(size) > self.MAX_CHUNK_DIGITS:
            raise h11.RemoteProtocolError(
                "a chunk size overflows", error_status_hint=400
            )
        return line


class _Peer(h11.Connection):
    """h11's server side, remembering whether the client broke the protocol
    only after a complete request (bytes sent after ``Connection: close``),
    and refusing the request heads h11 lets through (fixes 15, 18).
    """

    broke_after_request = False

    def __init__(self, our_role: Any, *, max_incomplete_event_size: int) -> None:
        super().__init__(our_role, max_incomplete_event_size=max_incomplete_event_size)
        self.max_head_size = max_incomplete_event_size
        self._head = _HeadBuffer()
        self._receive_buffer = self._head  # still empty

    @property
    def they_are_waiting_for_100_continue(self) -> bool:
        # Fix 11: read by hypercorn, which then sends 100 Continue at once;
        # ``_H11.send_continue`` sends it when the app asks for the body.
        return False

    def next_event(self) -> Any:
        before = self.their_state
        try:
            event = super().next_event()
        except h11.RemoteProtocolError:
            self.broke_after_request = before in {h11.DONE, h11.MUST_CLOSE}
            raise
        if isinstance(event, h11.Request):
            refusal = _refusal(event, self._head, self.max_head_size)
            if refusal is not None:
                # XXX: refused as h11 refuses its own: the client's state
                # becomes ERROR (h11's private ``_process_error``), and
                # hypercorn answers the status hint, with ``Connection:
                # close``, and closes. The request never reaches the app.
                self._process_error(self.their_role)
                status, reason = refusal
                raise h11.RemoteProtocolError(reason, error_status_hint=status)
        elif type(event) is h11.EndOfMessage and self._head.bare_lf:
            # The trailer of a chunked body (or its last line) ended in a
            # bare LF: refused as a head's is (fix 18).
            self._process_error(self.their_role)
            raise h11.RemoteProtocolError(
                "a line of the chunked body's trailer ends in a bare LF",
                error_status_hint=400,
            )
        return event


def _refusal(
    request: h11.Request, head: _HeadBuffer, max_head_size: int
) -> tuple[int, str] | None:
    """The status and reason a request head h11 has parsed is refused with
    (fixes 15, 18), or None: it may be served."""
    # The size as the lean server counts it (``h1/parser.py``): the request
    # line and headers as long as they are on the wire, without extra OWS.
    size = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n\r\n")
    length = chunked = False
    # h11's own (raw name, name, value) list: one pass, no copies.
    for _, name, value in request.headers._full_items:
        size += len(name) + len(value) + len(b": \r\n")
        if name == b"content-length":
            length = True
        elif name == b"transfer-encoding":
            chunked = True
    if head.bare_lf:
        return 400, "a line of the request head ends in a bare LF"
    if len(request.headers) != len(head.lines) - 1:
        # h11 made one field of two lines: a folded line, or a repeated
        # Content-Length it kept once.
        if any(line.startswith((b" ", b"\t")) for line in head.lines):
            return 400, "obsolete line folding in the request head"
        return 400, "more than one Content-Length header"
    if length and chunked:
        return 400, "both Content-Length and Transfer-Encoding"
    if chunked and request.http_version == b"1.0":
        # RFC 9112 6.1: faulty framing, as the lean server says too.
        return 400, "an HTTP/1.0 request cannot use Transfer-Encoding"
    if length and any(
        line[:15].lower() == b"content-length:" and b"," in line for line in head.lines
    ):
        return 400, "a list of lengths in Content-Length"
    if size > max_head_size:
        # Fix 15: h11 checks its limit only against a head still
        # incomplete, so one that came whole in a single read (up to 64 KiB,
        # or 16 KiB under TLS) went through.
        return 431, "the request head is too large"
    if request.http_version not in {b"1.1", b"1.0"} and not _is_preface(request):
        return 505, "only HTTP/1.0 and HTTP/1.1 are served over HTTP/1"
    return None


def _is_preface(request: h11.Request) -> bool:
    """The h2c preface, which h11 reads as a request (``_H11._check_protocol``
    answers it)."""
    preface = (b"PRI", b"*", b"2.0")
    return (request.method, request.target, request.http_version) == preface


# TODO: #6 HTTP/1.0 keep-alive (ab -k) needs h11's keep-alive rule replaced;
# the lean HTTP/1.1 server, which serves plain HTTP by default, offers it.
class _H11(H11Protocol):
    """HTTP/1.1 with fixes 5, 8, 9, 11, 12, 14, 15 and 18 (through ``_Peer``)."""

    def __init__(self, *args: Any, h2c: bool) -> None:
        super().__init__(*args)
        self._h2c = h2c
        self.connection = _Peer(
            h11.SERVER, max_incomplete_event_size=self.config.h11_max_incomplete_size
        )
        # Fix 8: set once a Closed is held back until the response is out.
        self._closing = False
        self._send_upstream = self.send
        self.send = self._send

    async def handle(self, event: Event) -> None:
        if self._closing and isinstance(event, RawData):
            return  # refused bytes: read and dropped until the response is out
        await super().handle(event)

    def _answering(self) -> bool:
        """The client broke the protocol, but its request is still being
        answered and that answer can still be delivered whole (fix 8)."""
        if self.stream is None or self.connection.their_state is not h11.ERROR:
            return False
        state = self.connection.our_state
        peer = self.connection
        after_request = isinstance(peer, _Peer) and peer.broke_after_request
        return state is h11.SEND_BODY or (state is h11.SEND_RESPONSE and after_request)

    async def _send(self, event: Event) -> None:
        if isinstance(event, Closed) and not self._closing and self._answering():
            # hypercorn closes here, with the response half written. The
            # app's StreamClosed, once the response is complete, closes.
            self._closing = True
            return
        await self._send_upstream(event)

    async def _create_stream(self, request: h11.Request) -> None:
        await super()._create_stream(request)
        if isinstance(self.stream, WSStream):
            _drop_bytes_before_handshake(self.stream)
        _Inbox.fit(self.stream)

    def inbox(self, scope: Scope) -> _Inbox | None:
        if getattr(self.stream, "scope", None) is scope:
            return getattr(self.stream, "inbox", None)
        return None

    async def send_continue(self, scope: Scope) -> None:
        """The app serving ``scope`` asks for its body: say 100 Continue, if
        the client waits for that (fix 11)."""
        peer = self.connection
        if (
            getattr(self.stream, "scope", None) is scope
            and isinstance(peer, h11.Connection)
            and peer.client_is_waiting_for_100_continue
        ):
            headers = self.config.response_headers("h11")
            await self._send_h11_event(
                h11.InformationalResponse(status_code=100, headers=headers)
            )

    def answering_after_eof(self) -> bool:
        """Input has ended after a complete request whose answer is still to
        be sent (fix 12): the client only half-closed."""
        peer = self.connection
        return (
            self.stream is not None
            and isinstance(peer, h11.Connection)
            and peer.their_state is h11.CLOSED
            and peer.our_state in {h11.SEND_RESPONSE, h11.SEND_BODY}
        )

    def may_be_receiving(self) -> bool:
        """Whether the client may still be sending: its body was not read
        whole, or it sent bytes past what could be taken (fix 13)."""
        peer = self.connection
        return isinstance(peer, h11.Connection) and peer.their_state in {
            h11.SEND_BODY,
            h11.ERROR,
        }

    async def _send_error_response(self, status_code: int) -> None:
        if self._answering():
            return  # the app's own answer is coming (fix 8)
        await super()._send_error_response(status_code)

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        # Fix 9: h11 writes the reason phrase it is given, and hypercorn
        # gives none.
        heads = h11.Response | h11.InformationalResponse
        if isinstance(event, heads) and not event.reason:
            event = dataclasses.replace(event, reason=_reason(event.status_code))
        await super()._send_h11_event(event)

    async def _check_protocol(self, event: h11.Request) -> None:
        if self._h2c:
            await super()._check_protocol(event)
        elif event.method == b"PRI" and event.http_version == b"2.0":
            await self._send_error_response(505)
            raise _RefuseConnection
        # Else "Upgrade: h2c" is ignored and the request served as it came.


def _drop_bytes_before_handshake(stream: WSStream) -> None:
    """Fix 20: bytes that follow a websocket request's head before the
    handshake is answered are dropped, and the app's answer is the one
    sent.

    A client must wait for that answer before it sends anything more (RFC
    6455 4.1). hypercorn answered such bytes 400 at once, while the app,
    already running, went on to answer too (the bridge refuses websockets
    with 403): two responses, whose second raised inside h11 and was logged
    twice with long tracebacks, for any client that sends a body or a
    pipelined request with its upgrade.
    """
    handle = stream.handle

    async def handle_once_answered(event: StreamEvent) -> None:
        if isinstance(event, Body | Data) and not stream.handshake.accepted:
            return
        await handle(event)

    stream.handle = handle_once_answered  # type: ignore[method-assign]


def _field_section_size(headers: list[tuple[bytes, bytes]]) -> int:
    """A header list's size as SETTINGS_MAX_HEADER_LIST_SIZE counts it: each
    field's name and value plus 32 bytes, pseudo-headers included (RFC 9113
    6.5.2)."""
    return sum(len(name) + len(value) + 32 for name, value in headers)


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b"status code %d" % status  # what Go writes for a code it lacks


class _GoneStream:
    """Takes the events of a stream hypercorn has already forgotten."""

    idle = True

    def __init__(self, protocol: _H2, stream_id: int) -> None:
        self._protocol = protocol
        self._stream_id = stream_id

    async def handle(self, event: StreamEvent) -> None:
        if isinstance(event, Body):
            self._protocol.discard(self._stream_id, len(event.data))
        elif isinstance(event, EndBody):
            self._protocol.discarding.pop(self._stream_id, None)


class _Streams(dict[int, Any]):
    """hypercorn's table of HTTP/2 streams, with a sink for missing ones.

    XXX: hypercorn looks up the stream of every DATA frame with
    ``streams[id]`` and forgets a stream as soon as its response is
    complete, so DATA still arriving for it raised ``KeyError`` (fix 3).
    ``in``, ``get`` and ``pop`` are unchanged; only the lookup by ``[]``
    answers, for a missing stream, with a sink that drops what it gets.
    """

    def __init__(self, protocol: _H2) -> None:
        super().__init__()
        self._protocol = protocol

    def __missing__(self, stream_id: int) -> _GoneStream:
        return _GoneStream(self._protocol, stream_id)


class _Decoder(hpack.Decoder):
    """hpack's decoder, decoding header lists of up to ``cap`` bytes whatever
    h2 asks (fix 16).

    XXX: h2 sets ``max_header_list_size`` to the SETTINGS_MAX_HEADER_LIST_SIZE
    advertised once the client has acknowledged it, and a header block over
    it is then a connection error: a GOAWAY that fails every stream. Here
    those assignments are ignored and the block is decoded whole (which keeps
    HPACK's table in step with the client's), so that ``_H2`` can refuse the
    one stream with 431. Past ``cap`` (an HPACK bomb, or a client far past
    the limit) it stays h2's connection error (ENHANCE_YOUR_CALM).
    """

    def __init__(self, cap: int) -> None:
        self._cap = cap
        super().__init__(max_header_list_size=cap)

    @property
    def max_header_list_size(self) -> int:
        return self._cap

    @max_header_list_size.setter
    def max_header_list_size(self, value: int) -> None:
        pass  # the advertised limit, held per stream by _H2 instead


class _H2(H2Protocol):
    """HTTP/2 with fixes 3, 4, 6, 10, 14, 16 and 17.

    Fix 3 in detail: once a response has ended while the client is still
    sending its request body, that body is read and dropped (hypercorn
    acknowledges it, so the connection's flow-control window is not used
    up), up to ``DISCARD_LIMIT`` bytes; past that the stream is reset with
    NO_ERROR. Resetting at once, as Go does, is what RFC 9113 8.1 suggests,
    but clients that read no response before they have sent their whole
    request (httpx) then fail instead of seeing the 413; the limit lets a
    modest body finish and still stops a large upload.
    """

    DISCARD_LIMIT = 8 * 1024 * 1024

    # Fix 16: header lists up to this many times the advertised limit are
    # decoded and their stream answered 431; never less than h2's default.
    DECODE_FACTOR = 4
    DECODE_FLOOR = 64 * 1024

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        limit = self.config.h2_max_header_list_size
        cap = max(self.DECODE_FACTOR * limit, self.DECODE_FLOOR)
        self.connection.decoder = _Decoder(cap)  # nothing decoded yet
        self.streams = _Streams(self)
        # Request body bytes dropped, by stream, since the response ended.
        self.discarding: dict[int, int] = {}
        self._ended: set[int] = set()
        # Fixes 10, 16: a request was answered here (CONNECT, a head too
        # large); hypercorn took it for a new stream.
        self._idle_again = False

    async def handle(self, event: Event) -> None:
        await super().handle(event)
        if isinstance(event, Closed):
            # Fix 6: hypercorn closes the streams and stops its send task,
            # but an app waiting for its body to drain (EndBody) or for room
            # in a full buffer (Body) was never woken: it hung, and held the
            # connection, its socket and its request open for good.
            for buffer in list(self.stream_buffers.values()):
                await buffer.close()

    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        # Fix 17: body pieces for a stream with an inbox go there without
        # waiting; the events between them go to hypercorn in order.
        others: list[h2.events.Event] = []
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                if others:  # the stream may be among them
                    await super()._handle_events(others)
                    others = []
                inbox = self._inbox_for_data(event)
                if inbox is not None:
                    self._take_data(inbox, event)
                    continue
            others.append(event)
        await super()._handle_events(others)  # also flushes what _take_data says
        if self._idle_again:
            # hypercorn stopped the keep-alive timer for the refused request
            # as for any request; no stream will ever restart it.
            self._idle_again = False
            if self.idle:
                await self.send(Updated(idle=True))

    async def _create_stream(self, request: h2.events.RequestReceived) -> None:
        headers = request.headers or []
        names = {name for name, _ in headers}
        limit = self.config.h2_max_header_list_size
        if _field_section_size(headers) > limit:  # fix 16
            await self._answer_alone(request, 431, _HEAD_TOO_LARGE)
        elif (b":method", b"CONNECT") in headers and b":protocol" not in names:
            await self._answer_alone(request, 501, _NOT_A_PROXY)  # fix 10
        else:
            await super()._create_stream(request)
            credit = functools.partial(self._credit_stream, request.stream_id)
            _Inbox.fit(self.streams.get(request.stream_id), credit)

    def _inbox_for_data(self, event: h2.events.DataReceived) -> _Inbox | None:
        stream = self.streams.get(event.stream_id)
        if stream is None or getattr(stream, "closed", True):
            return None  # hypercorn's own handling (and fix 3) drops it
        inbox: _Inbox | None = getattr(stream, "inbox", None)
        return inbox

    def _take_data(self, inbox: _Inbox, event: h2.events.DataReceived) -> None:
        message: ASGIReceiveEvent = {
            "type": "http.request",
            "body": bytes(event.data),
            "more_body": True,
        }
        size = event.flow_controlled_length
        if inbox.offer(message, size):
            self.connection.acknowledge_received_data(size, event.stream_id)
        elif size:
            # Held: the connection's window reopens now, the stream's once
            # the app takes the piece (_credit_stream).
            self.connection.increment_flow_control_window(size)

    async def _credit_stream(self, stream_id: int, size: int) -> None:
        if self.closed:
            return
        with contextlib.suppress(h2.exceptions.ProtocolError, KeyError):
            # The stream may have closed meanwhile: nothing to reopen.
            self.connection.increment_flow_control_window(size, stream_id=stream_id)
            await self._flush()

    def inbox(self, scope: Scope) -> _Inbox | None:
        for stream in list(self.streams.values()):
            if getattr(stream, "scope", None) is scope:
                return getattr(stream, "inbox", None)
        return None

    async def _answer_alone(
        self, request: h2.events.RequestReceived, status: int, body: bytes
    ) -> None:
        """Refuse ``request`` with ``status`` and a text ``body``, without
        making a stream of it: the app never sees it (fixes 10, 16)."""
        self._idle_again = True
        stream_id = request.stream_id
        if self.connection.local_flow_control_window(stream_id) < len(body):
            body = b""
        headers = [
            (b":status", b"%d" % status),
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(body)),
            *self.config.response_headers("h2"),
        ]
        self.connection.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self.connection.send_data(stream_id, body, end_stream=True)
        if request.stream_ended is None:
            # The request's body, or a tunnel's bytes: not wanted (RFC 9113
            # 8.1).
            self._reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)
        await self._flush()

    def discard(self, stream_id: int, size: int) -> None:
        if stream_id not in self.discarding:
            return  # the response is still being sent; dropped uncounted
        self.discarding[stream_id] += size
        if self.discarding[stream_id] > self.DISCARD_LIMIT:
            del self.discarding[stream_id]
            # Flushed by hypercorn once the received frames are handled.
            self._reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)

    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, EndBody):
            self._ended.add(event.stream_id)
        elif isinstance(event, StreamClosed) and event.stream_id not in self._ended:
            await self._reset_unfinished(event.stream_id)
        try:
            await super().stream_send(event)  # forgets the stream on StreamClosed
        finally:
            # Only the app's own StreamClosed ends what ``_ended`` records:
            # the connection closing (``_close_stream``) must not make a
            # complete response look unfinished.
            if isinstance(event, StreamClosed):
                self._ended.discard(event.stream_id)

    async def _close_stream(self, stream_id: int) -> None:
        self.discarding.pop(stream_id, None)
        await super()._close_stream(stream_id)

    async def _reset_unfinished(self, stream_id: int) -> None:
        """The app finished without ending the body: reset the stream (fix 4)."""
        if self.closed or stream_id not in self.stream_buffers:
            return  # the client reset it, or the connection is gone
        self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)
        await self._flush()
        # The send task drops the buffer once it finds it complete and the
        # stream closed; dropping it here could pull it from under that task.
        # It may also have dropped it during the flush.
        buffer = self.stream_buffers.get(stream_id)
        if buffer is not None:
            await buffer.close()
            self.priority.unblock(stream_id)
            await self.has_data.set()

    async def _send_data(self, stream_id: int) -> None:
        await super()._send_data(stream_id)
        if stream_id in self.stream_buffers:
            return
        # The response has ended (or failed). Is the request still coming?
        stream = self.connection.streams.get(stream_id)
        state = stream.state_machine.state if stream is not None else None
        if state is h2.stream.StreamState.HALF_CLOSED_LOCAL:
            self.discarding[stream_id] = 0

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        with contextlib.suppress(h2.exceptions.ProtocolError):
            self.connection.reset_stream(stream_id, code)


class _Protocol:
    """Picks HTTP/1.1 or HTTP/2 for a connection, as hypercorn's wrapper does,
    and switches to HTTP/2 on h2c (the upgrade request: fix 19)."""

    def __init__(
        self,
        arguments: tuple[Any, ...],
        alpn_protocol: str,
        *,
        h2c: bool,
    ) -> None:
        self._arguments = arguments
        self.protocol: _H11 | _H2
        if alpn_protocol == "h2":
            self.protocol = _H2(*arguments)
        else:
            self.protocol = _H11(*arguments, h2c=h2c)

    async def initiate(self) -> None:
        await self.protocol.initiate()

    def answering_after_eof(self) -> bool:
        return isinstance(self.protocol, _H11) and self.protocol.answering_after_eof()

    def may_be_receiving(self) -> bool:
        return isinstance(self.protocol, _H11) and self.protocol.may_be_receiving()

    def inbox(self, scope: Scope) -> _Inbox | None:
        return self.protocol.inbox(scope)

    async def send_continue(self, scope: Scope) -> None:
        if isinstance(self.protocol, _H11):
            await self.protocol.send_continue(scope)

    async def handle(self, event: Event) -> None:
        try:
            await self.protocol.handle(event)
        except H2ProtocolAssumedError as switch:  # the h2c preface
            self.protocol = _H2(*self._arguments)
            await self.protocol.initiate()
            if switch.data:
                await self.protocol.handle(RawData(data=switch.data))
        except H2CProtocolRequiredError as switch:  # Upgrade: h2c, answered 101
            self.protocol = _H2(*self._arguments)
            headers = _without_hop_by_hop(switch.headers)  # fix 19
            await self.protocol.initiate(headers, switch.settings)
            if switch.data:
                await self.protocol.handle(RawData(data=switch.data))
        except _RefuseConnection:
            await self.protocol.send(Closed())


# RFC 9113 8.2.2: the fields that belong to one HTTP/1.1 hop, not to the
# request, besides those that ``Connection`` names.
_HOP_BY_HOP = frozenset(
    {b"connection", b"upgrade", b"http2-settings", b"keep-alive", b"proxy-connection"}
)


def _without_hop_by_hop(
    headers: list[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The headers of an ``Upgrade: h2c`` request, as its HTTP/2 stream 1
    carries them (fix 19). hypercorn passed them on whole."""
    named = {
        token.strip().lower()
        for name, value in headers
        if name.lower() == b"connection"
        for token in value.split(b",")
    }
    # Host, and hypercorn's pseudo-headers, stay even if the client names
    # them there: they make the request.
    dropped = _HOP_BY_HOP | (named - {b"host"})
    return [
        (name, value)
        for name, value in headers
        if name.startswith(b":") or name.lower() not in dropped
    ]


class _App:
    """The app as the streams of one connection call it (fixes 10, 11, 14)."""

    def __init__(self, app: AppWrapper, connection: Connection) -> None:
        self._app = app
        self._connection = connection

    async def __call__(
        self,
        scope: Scope,
        receive: ASGIReceiveCallable,
        send: Any,
        sync_spawn: Any,
        call_soon: Any,
    ) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send, sync_spawn, call_soon)
        elif scope["method"] == "CONNECT":  # HTTP/1.1; _H2 answers its own
            await _answer_connect(send)
        else:
            protocol: Any = self._connection.protocol  # a _Protocol
            inbox: _Inbox | None = None

            async def receive_body() -> ASGIReceiveEvent:
                nonlocal inbox
                await protocol.send_continue(scope)
                inbox = inbox or protocol.inbox(scope)
                if inbox is None:
                    return await receive()
                return await inbox.receive(receive)

            await self._app(scope, receive_body, send, sync_spawn, call_soon)


async def _answer_connect(send: Any) -> None:
    start: ASGISendEvent = {
        "type": "http.response.start",
        "status": 501,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", b"%d" % len(_NOT_A_PROXY)),
        ],
        "trailers": False,
    }
    await send(start)
    await send({"type": "http.response.body", "body": _NOT_A_PROXY, "more_body": False})


def _unread_bytes(stream: trio.SocketStream) -> int:
    """Bytes received by the kernel that nobody has read yet."""
    try:
        raw = fcntl.ioctl(stream.socket.fileno(), termios.FIONREAD, b"\0" * 4)
    except OSError:
        return 0
    count: int = struct.unpack("i", raw)[0]
    return count


class Connection(TCPServer):
    """One accepted connection (plain or TLS), served until it closes.

    Awaiting it serves it. Args as hypercorn's ``TCPServer``, plus ``h2c``:
    accept HTTP/2 without TLS. Nothing it raises but ``Cancelled`` leaves
    it: a failure is logged and ends this connection only.
    """

    # Fix 13: the most a closing connection waits for, and reads of, what
    # the client still sends.
    LINGER_SECONDS = 2.0
    LINGER_BYTES = 16 * 1024 * 1024

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        state: ConnectionState,
        stream: trio.SocketStream | trio.SSLStream[trio.SocketStream],
        *,
        h2c: bool = False,
    ) -> None:
        wrapped = _App(app, self)
        # hypercorn types the stream as TLS only; a plain one works the same.
        super().__init__(
            wrapped,
            config,
            context,
            state,
            stream,  # type: ignore[arg-type]
        )
        self._h2c = h2c
        self._read_done = False
        self._eof = False
        # Cancelled when a lingering close begins (fix 13): reading stops,
        # wherever it is, and only draining goes on, until this deadline.
        self._reading = trio.CancelScope()
        self._linger_until: float | None = None

    async def run(self) -> None:
        try:
            await self._serve()
        except* Exception as failure:  # fix 2
            logger.error(
                "an HTTP connection failed inside hypercorn; it was closed and "
                "the server carries on",
                exc_info=failure,
                extra={"reason": "connection_failed"},
            )
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await self._close()

    async def _serve(self) -> None:
        stream: Any = self.stream
        tls = isinstance(stream, trio.SSLStream)
        if tls:
            try:
                with trio.fail_after(self.config.ssl_handshake_timeout):
                    await stream.do_handshake()
            except (trio.BrokenResourceError, trio.TooSlowError) as exc:
                logger.debug("TLS handshake failed: %r", exc.__cause__ or exc)
                await stream.aclose()
                return
            alpn = stream.selected_alpn_protocol() or "http/1.1"
            sock = stream.transport_stream.socket
        else:
            alpn = "http/1.1"
            sock = stream.socket
        try:
            client = socket_address(sock.getpeername())
            server = socket_address(sock.getsockname())
            async with TaskGroup() as task_group:
                self._task_group = task_group
                arguments = (
                    self.app,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state),
                    tls,
                    client,
                    server,
                    self.protocol_send,
                )
                self.protocol = _Protocol(  # type: ignore[assignment]
                    arguments, alpn, h2c=self._h2c and not tls
                )
                await self.protocol.initiate()
                await self.idle_task.restart(task_group, self._idle_timeout)
                await self._read_data()
                # Fix 7: the client is gone; nothing is left to wait for.
                self._read_done = True
                await self.idle_task.stop()
        except OSError:
            pass  # the client is gone
        finally:
            await self._close()

    async def _read_data(self) -> None:
        protocol: Any = self.protocol
        with self._reading:
            while True:
                try:
                    with trio.fail_after(self.config.read_timeout or math.inf):
                        data = await self.stream.receive_some(MAX_RECV)
                except (
                    trio.ClosedResourceError,
                    trio.BrokenResourceError,
                    trio.TooSlowError,
                ):
                    break
                await protocol.handle(RawData(bytes(data)))
                if not data:
                    self._eof = True
                    if protocol.answering_after_eof():
                        return  # fix 12: closed once the answer is out
                    break
            await protocol.handle(Closed())
        if self._linger_until is not None:
            await self._drain(self._linger_until)

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated) and event.idle and self._read_done:
            return  # fix 7: no idle wait once the client is gone
        lingering = isinstance(event, Closed) and self._should_linger()
        if lingering and await self._half_close():
            await self._begin_linger()
            return
        await super().protocol_send(event)

    def _should_linger(self) -> bool:
        """Closing now would leave what the client sends unread (fix 13)."""
        if self._eof or self._linger_until is not None:
            return False
        protocol: Any = self.protocol
        return protocol.may_be_receiving() or _unread_bytes(self._transport()) > 0

    async def _begin_linger(self) -> None:
        self._linger_until = trio.current_time() + self.LINGER_SECONDS
        self._reading.cancel()
        # As hypercorn does once it has closed: the streams learn of it.
        # Shielded: this may run in the reading task just cancelled.
        with trio.CancelScope(shield=True), trio.move_on_after(1):
            await self.protocol.handle(Closed())

    async def _drain(self, deadline: float) -> None:
        """Read and drop what still comes, until EOF or the limits (fix 13)."""
        transport = self._transport()
        drained = 0
        with trio.move_on_at(deadline):
            while drained < self.LINGER_BYTES:
                try:
                    data = await transport.receive_some(MAX_RECV)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if not data:
                    return
                drained += len(data)

    def _transport(self) -> trio.SocketStream:
        """The TCP stream, under TLS if there is TLS."""
        stream: Any = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        transport: trio.SocketStream = stream
        return transport

    async def _half_close(self) -> bool:
        """Send FIN, unless a send is in progress; whether it was sent.

        XXX: fix 1. Only while holding the send lock: a send in progress
        must not race the half-close. Under TLS this ends the TCP stream
        without a close_notify, as closing does (``https_compatible``).
        """
        try:
            self.send_lock.acquire_nowait()
        except trio.WouldBlock:
            return False
        try:
            await self._transport().send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return False
        finally:
            self.send_lock.release()
        return True

    async def _close(self) -> None:
        # Skipped when a send is in progress: aclose() below wakes that send
        # with ClosedResourceError, which hypercorn handles.
        await self._half_close()
        await self.stream.aclose()
