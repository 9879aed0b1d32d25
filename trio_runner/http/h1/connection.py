"""One HTTP/1.1 client connection: its requests served in order, with limits.

One task per connection, none per request; a second one only to watch::

    handler:  socket ──receive_some──> RequestParser.feed ──> RequestHead
              ──> app(scope, receive, send) ──> socket
              send() frames with ResponseFramer and writes at once
    reader:   (while the app waits for body bytes or for the client to
              leave, or once it has run for a tick of watch_deadlines)
              socket ──> parser.events, and wakes the app's receive()

Requests are served one at a time, so pipelined responses leave in request
order. Reading happens in the task that needs the bytes: the handler reads
the next head itself, so a short request costs one pass through the
scheduler on the client's side, not two. While the app runs, the reader
task (started only when needed, stopped before the next head) reads the
body ahead of the app up to ``_HIGH_WATER`` bytes, and pipelined requests
up to ``_PIPELINED_MAX`` heads, and then stops (the client is held back by
TCP): a body is never read much further than the app has asked for, so
``max_request_size`` caps what reaches memory, and a client that pipelines
without reading its answers holds a few requests, not all it sent. The
reader is also what notices a client that leaves during a long request:
``http.disconnect`` for ``receive()`` and, for apps that ask through the
``trio_runner.disconnect`` extension (the bridge does), a callback and the
cancellation of their call (the request loop's scope: one per connection,
not one per request). A client that leaves during a short request is
noticed when its response is written.

End of input is the client leaving only when it comes in the middle of a
request (its head or body incomplete). After a complete request it is a
half-close (``shutdown(SHUT_WR)``, ``nc -N``, scripted clients): the client
has sent all it will and waits for the answer. The requests already
received are answered, pipelined ones in order (with ``Connection:
close`` on the last if the end of input was seen before its answer
began), then the connection closes. A reset while reading is the client
leaving, whatever it had sent. So does hypercorn with fix 12 of
``trio_runner/http/connection.py``; nginx and Go's net/http (RoadRunner)
take the half-close for the client aborting instead. The price:
TCP shows a client that closed for good just as one that half-closed, so
such a client is noticed only when its answer is written (a broken pipe or
a reset). PHP finishes a plain request nobody waits for any more, and a
streamed response is stopped (STOP, the worker kept) when a write fails:
the closed socket takes the first write and answers it with a reset, so
usually at the chunk after, not at once.

Deadlines (``H1Limits``), checked by ``watch_deadlines`` rather than by a
scope per wait (a CancelScope per request costs more than the parsing):

- ``read_header_timeout``: from accepting the connection, or from the first
  byte of a later request, until its head is complete (408 if part of it
  came);
- ``idle_timeout``: between requests, between pieces of a request body the
  app waits for (the app then sees the client leave), and for each piece
  of response the client is slow to take.

The connection closes after a response when the client or the app asked
for it, HTTP/1.0 without keep-alive, a body the app left unread, the
client's end of input (after the requests it sent are answered), a
framing error (answered 400 first, or 501 for a transfer coding other than
``chunked``), a websocket upgrade (refused until a websocket front
exists), a ``CONNECT`` (answered 501: this is no proxy, and it never
reaches the app), or a graceful shutdown (``shutdown``). Closing
half-closes first and reads what is still coming for a moment, so the last
response is not lost to a reset.

This module is past 600 lines because ``_Exchange`` (one request's
``receive`` and ``send``) and ``H1Connection`` share the parser, the
deadlines and the reader's state at every step; split apart they would
reach into each other's internals anyway. (The websocket refusal, which
does not, is in ``websocket.py``.)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from typing import Any, Final

import attrs
import trio

from trio_runner.http.asgi import (
    DISCONNECT_EXTENSION,
    NO_BODY_EXTENSION,
    ASGIApp,
    Message,
)
from trio_runner.http.h1.framing import (
    ResponseError,
    ResponseFramer,
    informational,
    simple_response,
)
from trio_runner.http.h1.parser import (
    END_OF_BODY,
    Refusal,
    RequestHead,
    RequestParser,
)
from trio_runner.http.h1.websocket import WebsocketRefusal
from trio_runner.stream import DirectStream

__all__ = ["H1Connection", "H1Limits", "watch_deadlines"]

logger = logging.getLogger(__name__)

_READ_SIZE = 64 * 1024
# Body bytes parsed ahead of the app before the reader stops reading.
_HIGH_WATER = 256 * 1024
# Pipelined requests parsed ahead of the one served before the reader
# stops reading: a client that sends and never reads its answers is held
# back by TCP, not queued in memory.
_PIPELINED_MAX = 32
# Body bytes handed to the app in one http.request message at most.
_RECEIVE_MAX = 1024 * 1024
# Writes larger than this go out in pieces, each with its own deadline.
_WRITE_PIECE = 1024 * 1024
# How long a closing connection reads what the client still sends.
_LINGER = 0.5

# What a connection waits for from the client, for check_deadline().
_NOTHING: Final = "nothing"
_HEAD: Final = "head"  # a request head: the first, or one under way
_IDLE: Final = "idle"  # the next request on a kept-alive connection
_BODY: Final = "body"  # more of the body the app asked for
_BUSY: Final = "busy"  # nothing: the app runs (its deadline starts the reader)

_ASGI: Final = {"version": "3.0", "spec_version": "2.3"}
_DISCONNECT: Final = {"type": "http.disconnect"}
_CONTINUE: Final = informational(100, ())
_NOT_A_PROXY: Final = "CONNECT is not supported: this server is not a proxy.\n"


@attrs.frozen
class H1Limits:
    """What a client may take of the server (``[http]`` keys of the same names).

    Attributes:
        max_header_size: bytes a request line and headers may take (431).
        read_header_timeout: seconds to send a request head, from the
            connection or the request's first byte.
        idle_timeout: seconds a connection may wait on the client: between
            requests, within a request body, for a response to be read.
    """

    max_header_size: int = 64 * 1024
    read_header_timeout: float = 30.0
    idle_timeout: float = 60.0


def _wake(lot: trio.lowlevel.ParkingLot) -> None:
    """``unpark_all``, without its cost when nobody waits (the usual case)."""
    if lot:
        lot.unpark_all()


class _Gone(Exception):
    """The client cannot be written to any more."""


async def watch_deadlines(
    connections: Iterable[H1Connection], limits: H1Limits
) -> None:
    """Enforce the deadlines of ``connections`` (a live set) until cancelled.

    Checked a few times per shortest timeout, at most once a second: a
    deadline is met within that tick.
    """
    tick = min(1.0, limits.read_header_timeout / 4, limits.idle_timeout / 4)
    while True:
        await trio.sleep(tick)
        now = trio.current_time()
        for connection in list(connections):
            connection.check_deadline(now)


class H1Connection:
    """Serves one connection's requests to ``app`` until it closes.

    Args:
        app: the ASGI app.
        stream: the connection; any trio stream (a socket, or memory in
            tests).
        client: the peer's (host, port), None if unknown.
        server: this end's (host, port), None if unknown.
        limits: deadlines and the head size limit.
        date_header: add ``Date`` to responses that have none.
        state: the lifespan state; each request gets a shallow copy.
    """

    def __init__(
        self,
        app: ASGIApp,
        stream: trio.abc.Stream,
        *,
        client: tuple[str, int] | None,
        server: tuple[str, int] | None,
        limits: H1Limits,
        date_header: bool = True,
        state: dict[str, Any] | None = None,
    ) -> None:
        self._app = app
        self._stream = stream
        self._client = client
        self._server = server
        self._limits = limits
        self._date = date_header
        self._state = state
        # isinstance() against an ABC is slow: checked once, not per write.
        self._direct = stream if isinstance(stream, DirectStream) else None
        self._parser = RequestParser(max_header_size=limits.max_header_size)
        self._wakeup = trio.lowlevel.ParkingLot()  # the handler waits here
        self._resume = trio.lowlevel.ParkingLot()  # the reader waits here
        self._eof = False
        self.gone = False
        self._closing = False
        # Deadlines are checked by watch_deadlines(), not by a scope per
        # wait: a CancelScope per request costs more than the parsing.
        self.deadline = math.inf
        self._waiting = _NOTHING
        self._timed_out = False
        self._exchange: _Exchange | None = None
        # The reader task runs only while someone must watch the socket
        # during the app (see "Reading" in the module docstring).
        self._nursery: trio.Nursery | None = None
        self._reader: trio.CancelScope | None = None
        self._reader_done = trio.Event()
        self._loop = trio.CancelScope()  # the request loop; deadlines end it

    def shutdown(self) -> None:
        """Close once the request in progress (if any) is answered."""
        self._closing = True
        if self._waiting in (_HEAD, _IDLE) and not self._parser.in_head:
            self._loop.cancel()

    def check_deadline(self, now: float) -> None:
        """Act on a deadline that has passed (``watch_deadlines`` calls this)."""
        if now < self.deadline:
            return
        self.deadline = math.inf
        waiting = self._waiting
        if waiting is _BUSY:
            self._watch()  # the app runs long: watch for the client leaving
        elif waiting is _BODY:
            logger.debug("the client sent no body for too long; closing")
            self._lost()
        elif waiting is not _NOTHING:
            self._timed_out = True
            self._loop.cancel()

    async def serve(self) -> None:
        """Serve until the connection closes; always closes the stream.

        Cancellation closes the connection at once (shielded, bounded).
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                with self._loop:
                    await self._serve_requests()
                if self._timed_out and self._parser.in_head:
                    await self._write_final(
                        simple_response(408, "The request head took too long.\n")
                    )
                nursery.cancel_scope.cancel()
            self._reader = None
            await self._linger()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await trio.aclose_forcefully(self._stream)

    # -- reading -------------------------------------------------------------

    async def _fill(self) -> None:
        """Read once, in the task that needs the bytes.

        End of input inside a request marks the client gone; after a
        complete one it only ends reading (see the module docstring).
        """
        try:
            data = await self._stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._eof = True
            self._lost()  # a reset: the client is gone, whatever it sent
            return
        if data:
            self._feed(bytes(data))  # the same object for bytes
            return
        self._eof = True
        parser = self._parser
        if (parser.in_head or parser.in_body) and not parser.failed:
            self._lost()
        else:
            _wake(self._wakeup)  # a half-close: the handler answers, then closes

    def _last_request(self) -> bool:
        """No request follows the one in progress (once input has ended)."""
        return not any(type(event) is RequestHead for event in self._parser.events)

    def _feed(self, data: bytes) -> None:
        parser = self._parser
        fresh = self._waiting is _IDLE and not parser.in_head
        parser.feed(data)
        if fresh and parser.in_head:
            # The first byte of the next request: its head has
            # read_header_timeout from now.
            self.deadline = trio.current_time() + self._limits.read_header_timeout

    def _watch(self) -> None:
        """Start the reader task, unless it runs (or the client is gone)."""
        if self._reader is None and not self._eof and self._nursery is not None:
            self._reader = trio.CancelScope()
            self._reader_done = trio.Event()
            self._nursery.start_soon(self._read, self._reader)

    async def _unwatch(self) -> None:
        """Stop the reader task; the handler reads for itself again."""
        reader = self._reader
        if reader is not None:
            reader.cancel()
            await self._reader_done.wait()
            self._reader = None

    async def _read(self, scope: trio.CancelScope) -> None:
        """Read ahead while the app runs: its body, its client's leaving."""
        parser = self._parser
        try:
            with scope:
                while not (parser.failed or self._eof):
                    while (
                        parser.body_buffered > _HIGH_WATER
                        or parser.heads_queued > _PIPELINED_MAX
                        or parser.paused
                    ):
                        await self._resume.park()
                    await self._fill()
                    _wake(self._wakeup)
        finally:
            self._reader_done.set()

    def _lost(self) -> None:
        """The client is gone: tell the request in progress, wake the handler."""
        if not self.gone:
            self.gone = True
            if self._exchange is not None:
                self._exchange.client_gone()
        _wake(self._wakeup)

    def _lost_for_reading(self) -> None:
        """The request cannot be read on; the response can still be sent."""
        if self._exchange is not None:
            self._exchange.client_gone(cancel=False)

    def _taken(self) -> None:
        """The app took body bytes: the reader may read on."""
        if self._parser.body_buffered <= _HIGH_WATER:
            _wake(self._resume)

    # -- requests ------------------------------------------------------------

    async def _serve_requests(self) -> None:
        first = True
        while not self._closing:
            event = await self._next_head(first)
            if event is None:
                return
            if isinstance(event, Refusal):
                logger.debug("refused a request (%d): %s", event.status, event.reason)
                await self._write_final(
                    simple_response(event.status, f"{event.reason}\n", date_header=True)
                )
                return
            if not await self._serve(event):
                return
            first = False

    async def _next_head(self, first: bool) -> RequestHead | Refusal | None:
        """The next request's head; None when the connection is to close.

        A deadline that passes cancels ``_loop`` (``check_deadline``).
        """
        parser = self._parser
        if self._reader is not None:
            await self._unwatch()
        if self.gone:
            return None
        if not parser.events:
            limits = self._limits
            timeout = limits.read_header_timeout if first else limits.idle_timeout
            if parser.in_head:
                timeout = limits.read_header_timeout
            self.deadline = trio.current_time() + timeout
            self._waiting = _HEAD if first or parser.in_head else _IDLE
            try:
                while not (parser.events or self.gone or self._eof):
                    if self._closing and not parser.in_head:
                        return None
                    await self._fill()
            finally:
                self.deadline = math.inf
                self._waiting = _NOTHING
            if not parser.events:
                return None
        event = parser.take()
        if isinstance(event, RequestHead | Refusal):
            return event
        # Body left of a request the connection went on from: never, as a
        # connection goes on only once the previous body was read whole.
        raise AssertionError(f"unexpected parser event {event!r}")

    async def _serve(self, head: RequestHead) -> bool:
        """Run the app for one request; whether the connection goes on."""
        keep_alive = head.keep_alive and not self._closing
        exchange = _Exchange(self, head, keep_alive)
        self._exchange = exchange
        # A short request is never watched; one that runs a while is, from
        # the next tick of watch_deadlines on.
        self._waiting = _BUSY
        self.deadline = trio.current_time()
        try:
            if head.upgrade == b"websocket" and head.method == "GET":
                await self._refuse_websocket(exchange)
                return False
            if head.method == "CONNECT":
                # Not a proxy: a 2xx from the app would make this
                # connection a tunnel. Answered as hypercorn's side does.
                await self._write_final(simple_response(501, _NOT_A_PROXY))
                return False
            await self._app(exchange.scope(), exchange.receive, exchange.send)
        except Exception as error:
            if self.gone:
                logger.debug("the app failed after its client left: %r", error)
                return False
            logger.error(
                "the ASGI app failed on %s %s",
                head.method,
                head.path,
                exc_info=True,
                extra={"reason": "app_failed"},
            )
            if not exchange.framer.started:
                await self._write_final(
                    simple_response(500, "Internal Server Error\n", date_header=True)
                )
            return False
        finally:
            self._waiting = _NOTHING
            self.deadline = math.inf
            self._exchange = None
            exchange.done()
        return await self._after(head, exchange)

    async def _after(self, head: RequestHead, exchange: _Exchange) -> bool:
        """The app returned: end the response; can the connection go on?"""
        framer = exchange.framer
        if exchange.refusal is not None and not framer.started:
            refusal = exchange.refusal
            await self._write_final(
                simple_response(refusal.status, f"{refusal.reason}\n")
            )
            return False
        if self.gone:
            return False
        if not framer.started:
            logger.error(
                "the ASGI app returned without a response to %s %s; answering 500",
                head.method,
                head.path,
                extra={"reason": "app_failed"},
            )
            await self._write_final(
                simple_response(500, "Internal Server Error\n", date_header=True)
            )
            return False
        if not framer.complete:
            return False  # the app left the body unended: truncated
        if not framer.keep_alive or self._closing or not exchange.skip_body():
            return False
        if head.upgrade:
            if head.upgrade == b"connect":
                return False  # what follows would be the tunnel
            self._parser.resume()  # the upgrade was declined
            _wake(self._resume)
        return True

    async def _refuse_websocket(self, exchange: _Exchange) -> None:
        # TODO: #6 websockets reach PHP through their own front (a later
        # issue); until then an upgrade is offered to the app only to be
        # refused (403, or the denial response the app sends).
        await WebsocketRefusal(self._app, exchange, self._write_final).run()

    # -- writing -------------------------------------------------------------

    async def write(self, data: bytes | memoryview) -> None:
        """Write ``data``; each piece must go within ``idle_timeout``.

        Raises:
            _Gone: the client is gone or too slow; it counts as gone.
        """
        if self.gone:
            raise _Gone
        timeout = self._limits.idle_timeout
        stream = self._stream
        try:
            if self._direct is not None:
                # Usually the kernel takes it all: no scope, no scheduling.
                sent = self._direct.send_nowait(data)
                if sent == len(data):
                    return
                data = memoryview(data)[sent:]
            if len(data) <= _WRITE_PIECE:
                with trio.fail_after(timeout):
                    await stream.send_all(data)
                return
            view = memoryview(data)
            for start in range(0, len(view), _WRITE_PIECE):
                with trio.fail_after(timeout):
                    await stream.send_all(view[start : start + _WRITE_PIECE])
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError):
            self._lost()
            raise _Gone from None

    async def _write_final(self, data: bytes) -> None:
        try:
            await self.write(data)
        except _Gone:
            pass

    async def _linger(self) -> None:
        """Half-close, then read what the client still sends for a moment."""
        stream = self._stream
        if self._eof or not isinstance(stream, trio.abc.HalfCloseableStream):
            return
        with trio.move_on_after(_LINGER):
            try:
                await stream.send_eof()
                while await stream.receive_some(_READ_SIZE):
                    pass
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass


class _Exchange:
    """One request's ASGI ``receive`` and ``send``, and its disconnect."""

    __slots__ = (
        "_body_done",
        "_callbacks",
        "_cancel",
        "_connection",
        "_continued",
        "_head",
        "framer",
        "refusal",
    )

    def __init__(
        self, connection: H1Connection, head: RequestHead, keep_alive: bool
    ) -> None:
        self._connection = connection
        self._head = head
        self._body_done = False
        self._continued = not head.expect_continue
        self._callbacks: list[Callable[[], object]] = []
        self._cancel = False  # cancel the app's call when the client leaves
        self.refusal: Refusal | None = None
        self.framer = ResponseFramer(
            head.method,
            head.http_version,
            keep_alive=keep_alive,
            date_header=connection._date,
        )

    def scope(self) -> dict[str, Any]:
        connection = self._connection
        head = self._head
        extensions: dict[str, Any] = {
            DISCONNECT_EXTENSION: {
                "subscribe": self.subscribe,
                "refusal": self.refusal_status,
            },
        }
        if head.http_version == "1.1":
            extensions["http.response.early_hint"] = {}
        if not head.has_body:
            extensions[NO_BODY_EXTENSION] = {}
        scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": head.http_version,
            "method": head.method,
            "scheme": "http",
            "path": head.path,
            "raw_path": head.raw_path,
            "query_string": head.query,
            "root_path": "",
            "headers": head.headers,
            "client": connection._client,
            "server": connection._server,
            "extensions": extensions,
        }
        if connection._state is not None:
            scope["state"] = dict(connection._state)
        return scope

    def subscribe(self, callback: Callable[[], object], cancel: bool = False) -> None:
        if cancel:
            self._cancel = True
        if self._connection.gone:
            callback()
            if cancel:
                self._connection._loop.cancel()
        else:
            self._callbacks.append(callback)

    def refusal_status(self) -> int | None:
        """The status the connection answers for the app, if it does."""
        return None if self.refusal is None else self.refusal.status

    def client_gone(self, *, cancel: bool = True) -> None:
        """Call the callbacks; cancel the app if it asked and ``cancel``.

        ``cancel`` is False when only the request can no longer be read:
        the connection still answers it (400).
        """
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        if cancel and self._cancel:
            # The request loop: the app's call ends, and so does the
            # connection, which has nobody to answer any more.
            self._connection._loop.cancel()

    def done(self) -> None:
        self._callbacks = []
        _wake(self._connection._wakeup)

    def _body_arrived(self) -> bool:
        """Whether the whole request body has been received (read or not)."""
        if self._body_done or not self._head.has_body:
            return True
        if self.refusal is not None:
            return False
        return END_OF_BODY in self._connection._parser.events

    def skip_body(self) -> bool:
        """Drop what is left of the request body; False if it is not all here."""
        if self._body_done:
            return True
        if self.refusal is not None:
            return False
        parser = self._connection._parser
        events = parser.events
        while events and events[0] is not END_OF_BODY:
            if not isinstance(events[0], bytes):
                return False
            parser.take()
        if not events:
            return False
        parser.take()
        self._body_done = True
        self._connection._taken()
        return True

    async def receive(self) -> Message:
        connection = self._connection
        if self._body_done:
            # Nothing more comes but the client's leaving, which ASGI
            # reports, like the end of the response, as http.disconnect.
            connection._watch()
            while not (connection.gone or self.framer.complete):
                await connection._wakeup.park()
            return _DISCONNECT
        parser = connection._parser
        events = parser.events
        if not events:
            if connection.gone:
                return _DISCONNECT
            if not self._continued:
                self._continued = True
                if not self.framer.started:
                    await connection._write_final(_CONTINUE)
            timeout = connection._limits.idle_timeout
            connection.deadline = trio.current_time() + timeout
            connection._waiting = _BODY
            connection._watch()  # the reader fills the body in
            try:
                while not events and not connection.gone:
                    await connection._wakeup.park()
            finally:
                connection.deadline = math.inf
                connection._waiting = _BUSY
            if not events:
                return _DISCONNECT
        event = parser.take()
        if event is END_OF_BODY:
            self._body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        if not isinstance(event, bytes):
            # A framing error inside the body (a bad chunk): the request
            # cannot be read on. The app sees the client leave; the
            # connection answers 400 if the app did not answer.
            assert isinstance(event, Refusal), event
            self.refusal = event
            connection._lost_for_reading()
            return _DISCONNECT
        body = event
        if events and type(events[0]) is bytes:
            pieces = [body]
            size = len(body)
            while events and type(events[0]) is bytes and size < _RECEIVE_MAX:
                piece = parser.take()
                assert isinstance(piece, bytes)
                pieces.append(piece)
                size += len(piece)
            body = b"".join(pieces)
        if events and events[0] is END_OF_BODY:
            parser.take()
            self._body_done = True
        connection._taken()
        return {"type": "http.request", "body": body, "more_body": not self._body_done}

    async def send(self, message: Message) -> None:
        connection = self._connection
        if connection.gone:
            return  # as hypercorn: the app may finish after its client left
        kind = message["type"]
        framer = self.framer
        if kind == "http.response.body":
            if not framer.started:
                raise ResponseError("http.response.body before http.response.start")
            if framer.keep_alive and (
                connection._closing
                or not self._body_arrived()
                or (connection._eof and connection._last_request())
            ):
                # Shutting down, the rest of the body will not be read, or
                # the client half-closed and this is its last request: say
                # the connection closes after this response.
                framer.keep_alive = False
            more = bool(message.get("more_body", False))
            data = framer.body(bytes(message.get("body", b"")), more=more)
            try:
                if data:
                    await connection.write(data)
            except _Gone:
                return  # the disconnect reaches the app through receive()
            if framer.complete:
                _wake(connection._wakeup)
        elif kind == "http.response.start":
            framer.start(int(message["status"]), message.get("headers", ()))
        elif kind == "http.response.early_hint":
            if not framer.started and self._head.http_version == "1.1":
                links = [(b"link", bytes(link)) for link in message.get("links", ())]
                if links:
                    await connection._write_final(informational(103, links))
        else:
            raise ResponseError(f"unexpected ASGI message {kind!r} for an http scope")
