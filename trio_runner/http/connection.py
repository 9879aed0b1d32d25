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

Everything else is hypercorn's own code. It reaches into hypercorn's
internals, so the hypercorn version is bounded in ``pyproject.toml``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from http import HTTPStatus
from typing import Any

import h2.errors
import h2.stream
import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.protocol.events import Body, EndBody, StreamClosed
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import (
    H2CProtocolRequiredError,
    H2ProtocolAssumedError,
    H11Protocol,
)
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ConnectionState, H11SendableEvent
from hypercorn.utils import parse_socket_addr

__all__ = ["Connection"]

logger = logging.getLogger(__name__)


class _RefuseConnection(Exception):
    """Raised by the HTTP/1.1 protocol once it has answered: close now."""


class _Peer(h11.Connection):
    """h11's server side, remembering whether the client broke the protocol
    only after a complete request (bytes sent after ``Connection: close``)."""

    broke_after_request = False

    def next_event(self) -> Any:
        before = self.their_state
        try:
            return super().next_event()
        except h11.RemoteProtocolError:
            self.broke_after_request = before in {h11.DONE, h11.MUST_CLOSE}
            raise


class _H11(H11Protocol):
    """HTTP/1.1 with fixes 5, 8 and 9."""

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


class _H2(H2Protocol):
    """HTTP/2 with fixes 3, 4 and 6.

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

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.streams = _Streams(self)
        # Request body bytes dropped, by stream, since the response ended.
        self.discarding: dict[int, int] = {}
        self._ended: set[int] = set()

    async def handle(self, event: Event) -> None:
        await super().handle(event)
        if isinstance(event, Closed):
            # Fix 6: hypercorn closes the streams and stops its send task,
            # but an app waiting for its body to drain (EndBody) or for room
            # in a full buffer (Body) was never woken: it hung, and held the
            # connection, its socket and its request open for good.
            for buffer in list(self.stream_buffers.values()):
                await buffer.close()

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
    """Picks HTTP/1.1 or HTTP/2 for a connection, as hypercorn's wrapper does."""

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
            await self.protocol.initiate(switch.headers, switch.settings)
            if switch.data:
                await self.protocol.handle(RawData(data=switch.data))
        except _RefuseConnection:
            await self.protocol.send(Closed())


class Connection(TCPServer):
    """One accepted connection (plain or TLS), served until it closes.

    Awaiting it serves it. Args as hypercorn's ``TCPServer``, plus ``h2c``:
    accept HTTP/2 without TLS. Nothing it raises but ``Cancelled`` leaves
    it: a failure is logged and ends this connection only.
    """

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
        super().__init__(app, config, context, state, stream)  # type: ignore[arg-type]
        self._h2c = h2c
        self._read_done = False

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
            client = parse_socket_addr(sock.family, sock.getpeername())
            server = parse_socket_addr(sock.family, sock.getsockname())
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

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, Updated) and event.idle and self._read_done:
            return  # fix 7: no idle wait once the client is gone
        await super().protocol_send(event)

    async def _close(self) -> None:
        # XXX: fix 1. Half-close only while holding the send lock; when a
        # send is in progress, skip it: aclose() below wakes that send with
        # ClosedResourceError, which hypercorn handles.
        try:
            self.send_lock.acquire_nowait()
        except trio.WouldBlock:
            pass
        else:
            try:
                with contextlib.suppress(
                    trio.BrokenResourceError,
                    trio.ClosedResourceError,
                    AttributeError,  # TLS streams cannot half-close
                ):
                    await self.stream.send_eof()
            finally:
                self.send_lock.release()
        await self.stream.aclose()
