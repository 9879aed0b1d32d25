"""What a worker connection produces: payloads and the events of an exchange.

Every event is a frozen value. ``Payload`` is what a front sends and gets
back: a context (headers, routing, metadata; encoded by the front) and a
body, split by the single frame option of PROTOCOL.md 1.4.
"""

from __future__ import annotations

import attrs

__all__ = [
    "Closed",
    "ErrorReply",
    "Event",
    "Handshake",
    "Payload",
    "Response",
    "StopRequest",
    "StreamCancelled",
]


@attrs.frozen(slots=True)
class Payload:
    """A request or response: context and body, plus the codec flag bits.

    Attributes:
        context: the encoded context (protobuf or JSON, decided by the front).
        body: the raw body bytes.
        codec: the frame's flags byte (``Flag.CODEC_*``); 0 when unknown.
    """

    context: bytes = b""
    body: bytes = b""
    codec: int = 0


@attrs.frozen(slots=True)
class Handshake:
    """The worker answered the pid handshake (PROTOCOL.md 3.1)."""

    pid: int


@attrs.frozen(slots=True)
class Response:
    """A data frame from the worker.

    ``more`` is set on every chunk of a streamed response but the last;
    ``ping`` means the worker waits for a PONG (send ``pong()``).
    """

    payload: Payload
    more: bool = False
    ping: bool = False


@attrs.frozen(slots=True)
class ErrorReply:
    """The worker sent an error frame: a soft error, the worker stays."""

    message: str


@attrs.frozen(slots=True)
class StopRequest:
    """The worker asked to be replaced (PROTOCOL.md 3.4).

    The request it was given was not handled; run it on another worker.
    """


@attrs.frozen(slots=True)
class StreamCancelled:
    """A cancelled stream has been drained; the worker is idle again."""


@attrs.frozen(slots=True)
class Closed:
    """The worker closed its relay after being told to stop."""


Event = Handshake | Response | ErrorReply | StopRequest | StreamCancelled | Closed
