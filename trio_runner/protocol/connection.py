"""The server's side of one worker relay, as a state machine without I/O.

The caller moves bytes; this module decides what they mean. Methods that
send return the bytes to write (one frame, one write); ``receive_data`` takes
what was read (``b""`` for end of file) and ``next_event`` returns the next
event, or None when it needs more bytes.

::

    NEW ──handshake()──> HANDSHAKING ──Handshake──> IDLE <─────────────────┐
                                                     │                     │
                                          request()  │                     │
                                                     v        final Response,
      IDLE <──StopRequest / ErrorReply / Response── AWAITING   ErrorReply  │
                                                     │                     │
                                       Response(more)│                     │
                                                     v                     │
                            ┌── cancel() ───────── STREAMING ──────────────┘
                            v                        (pong() while here)
                        CANCELLING ──StreamCancelled──> IDLE

    IDLE ──stop()──> STOPPING ──Closed──> CLOSED
    any state ──a protocol error──> BROKEN (every later call raises)

Anything the worker sends that its state does not allow raises
``RemoteProtocolError``; a method called in the wrong state raises
``LocalProtocolError``.
"""

from __future__ import annotations

import enum
import json

from trio_runner.errors import LocalProtocolError, RelayClosed, RemoteProtocolError
from trio_runner.protocol.events import (
    Closed,
    ErrorReply,
    Event,
    Handshake,
    Payload,
    Response,
    StopRequest,
    StreamCancelled,
)
from trio_runner.protocol.frame import (
    CONTROL,
    ERROR,
    Flag,
    Frame,
    FrameDecoder,
    StreamFlag,
    encode_frame,
)

__all__ = ["STOP_REQUEST_CONTEXT", "State", "WorkerConnection"]

# The exact context of a worker's "please stop me" frame (PROTOCOL.md 3.4).
STOP_REQUEST_CONTEXT = b'{"stop":true}'

_CONTROL_JSON = CONTROL | Flag.CODEC_JSON
_STREAM = int(StreamFlag.STREAM)
_PING = int(StreamFlag.PING)
_STOP_FRAME = encode_frame(_CONTROL_JSON, STOP_REQUEST_CONTEXT)
_PONG_FRAME = encode_frame(0, stream=StreamFlag.PONG)
_CANCEL_FRAME = encode_frame(0, stream=StreamFlag.STOP)


class State(enum.Enum):
    NEW = "new"
    HANDSHAKING = "handshaking"
    IDLE = "idle"
    AWAITING = "awaiting"
    STREAMING = "streaming"
    CANCELLING = "cancelling"
    STOPPING = "stopping"
    CLOSED = "closed"
    BROKEN = "broken"

    # As for WorkerState: identity is a correct hash for enum members, and
    # Enum's own is Python code; ``_SEND`` is looked up once per request.
    __hash__ = object.__hash__


# What the worker was at when its relay closed, for the error message.
_DOING = {
    State.HANDSHAKING: "during the handshake",
    State.AWAITING: "before answering its request",
    State.STREAMING: "in the middle of a streamed response",
    State.CANCELLING: "while cancelling a streamed response",
}

# What each outgoing call needs and leads to: (method, from) -> to.
_SEND = {
    ("handshake", State.NEW): State.HANDSHAKING,
    ("request", State.IDLE): State.AWAITING,
    ("pong", State.STREAMING): State.STREAMING,
    ("cancel", State.AWAITING): State.CANCELLING,
    ("cancel", State.STREAMING): State.CANCELLING,
    ("stop", State.IDLE): State.STOPPING,
}


class WorkerConnection:
    """One worker relay, seen from the server.

    Attributes:
        state: the current ``State``.
    """

    __slots__ = ("_decoder", "_eof", "state")

    def __init__(self) -> None:
        self.state = State.NEW
        self._decoder = FrameDecoder()
        self._eof = False

    # -- sending ---------------------------------------------------------

    def _move(self, method: str) -> None:
        try:
            self.state = _SEND[method, self.state]
        except KeyError:
            raise LocalProtocolError(
                f"cannot {method}() a worker connection in state {self.state.value}"
            ) from None

    def handshake(self, server_pid: int) -> bytes:
        """The pid control frame that opens every relay (PROTOCOL.md 3.1)."""
        self._move("handshake")
        body = json.dumps({"pid": server_pid}, separators=(",", ":")).encode()
        return encode_frame(_CONTROL_JSON, body)

    def request(self, payload: Payload) -> bytes:
        """A data frame carrying ``payload``, with its single option."""
        if not payload.context and not payload.body:
            # The PHP side cannot tell this apart from a broken frame, and Go
            # refuses it too ("payload can not be empty").
            raise LocalProtocolError("a request needs a context or a body")
        self._move("request")
        return encode_frame(
            payload.codec, payload.context, (len(payload.context),), tail=payload.body
        )

    def pong(self) -> bytes:
        """The answer to a streamed chunk that carried PING."""
        self._move("pong")
        return _PONG_FRAME

    def cancel(self) -> bytes:
        """Ask the worker to abandon the response in progress (PROTOCOL 3.7)."""
        self._move("cancel")
        return _CANCEL_FRAME

    def stop(self) -> bytes:
        """The control frame that tells an idle worker to exit."""
        self._move("stop")
        return _STOP_FRAME

    # -- receiving -------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Add bytes read from the worker; ``b""`` means end of file."""
        if data:
            self._decoder.feed(data)
        else:
            self._eof = True

    @property
    def trailing_data(self) -> bytes:
        """Bytes received that are not part of any frame yet (for logs)."""
        return self._decoder.buffered

    @property
    def trailing_size(self) -> int:
        """``len(trailing_data)``, without copying the bytes."""
        return len(self._decoder)

    @property
    def needs_data(self) -> bool:
        """``next_event`` would return None until more bytes come: none
        are buffered, the end of input was not seen, and nothing is broken.
        """
        return not (self._eof or len(self._decoder) or self.state is State.BROKEN)

    def next_event(self) -> Event | None:
        """Return the next event, or None if more bytes are needed.

        Raises:
            RemoteProtocolError: the worker sent an invalid frame, a frame its
                state does not allow, or closed the relay unexpectedly. The
                connection is BROKEN afterwards.
        """
        try:
            return self._next_event()
        except RemoteProtocolError:
            self.state = State.BROKEN
            raise

    def _next_event(self) -> Event | None:
        if self.state is State.BROKEN:
            raise RemoteProtocolError("the worker connection is broken")
        while True:
            frame = self._decoder.next_frame()
            if frame is None:
                if not self._eof:
                    return None
                if self.state is State.STOPPING:
                    self.state = State.CLOSED
                    return Closed()
                if self.state is State.CLOSED:
                    return None
                if self._decoder.buffered:
                    raise RemoteProtocolError(self._eof_message())
                raise RelayClosed(self._eof_message())
            event = self._handle(frame)
            if event is not None:
                return event

    def _eof_message(self) -> str:
        trailing = self._decoder.buffered
        if trailing:
            return (
                "the worker closed its relay in the middle of a frame "
                f"({len(trailing)} bytes of it arrived)"
            )
        doing = _DOING.get(self.state, f"while {self.state.value}")
        return f"the worker closed its relay {doing}"

    def _handle(self, frame: Frame) -> Event | None:
        state = self.state
        if state is State.HANDSHAKING:
            return self._handle_handshake(frame)
        if state is State.AWAITING or state is State.STREAMING:
            return self._handle_reply(frame)
        if state is State.CANCELLING:
            if frame.flags & ERROR or not frame.stream & _STREAM:
                self.state = State.IDLE
                return StreamCancelled()
            return None  # a chunk written before the worker saw STOP
        if state is State.STOPPING or state is State.CLOSED:
            return None  # whatever a stopping worker still says is moot
        raise RemoteProtocolError(
            f"the worker sent a frame while {state.value}: {frame!r}"
        )

    def _handle_handshake(self, frame: Frame) -> Event:
        if not frame.flags & CONTROL:
            raise RemoteProtocolError(
                "the worker answered the pid handshake without the CONTROL "
                f"flag: {frame!r}"
            )
        try:
            pid = json.loads(frame.payload)["pid"]
        except (ValueError, TypeError, KeyError):
            pid = None
        if type(pid) is not int or pid <= 0:
            raise RemoteProtocolError(
                "the worker answered the pid handshake without a positive "
                f"pid: {frame.payload[:100]!r}"
            )
        self.state = State.IDLE
        return Handshake(pid)

    def _handle_reply(self, frame: Frame) -> Event:
        if frame.flags & ERROR:
            self.state = State.IDLE
            return ErrorReply(frame.payload.decode("utf-8", "replace"))
        if frame.flags & CONTROL:
            raise RemoteProtocolError(
                f"the worker sent a control frame instead of a response: {frame!r}"
            )
        if len(frame.options) != 1:
            raise RemoteProtocolError(
                "a response frame must carry exactly one option (the context "
                f"length), got {len(frame.options)}"
            )
        split = frame.options[0]
        data = frame.payload
        if split > len(data):
            raise RemoteProtocolError(
                f"response context length {split} exceeds the payload "
                f"({len(data)} bytes)"
            )
        context = data[:split]
        body = data[split:]
        more = bool(frame.stream & _STREAM)
        if (
            self.state is State.AWAITING
            and not more
            and not body
            and context == STOP_REQUEST_CONTEXT
        ):
            self.state = State.IDLE
            return StopRequest()
        self.state = State.STREAMING if more else State.IDLE
        return Response(
            Payload(context, body, frame.flags),
            more=more,
            ping=bool(frame.stream & _PING),
        )
