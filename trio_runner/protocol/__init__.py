"""goridge, sans-I/O: frames, events and the worker connection state machine.

Nothing here imports trio or touches the OS; a test pins that.
"""

from __future__ import annotations

from trio_runner.protocol.connection import (
    STOP_REQUEST_CONTEXT,
    State,
    WorkerConnection,
)
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
    Codec,
    Flag,
    Frame,
    FrameDecoder,
    StreamFlag,
    encode_frame,
)

__all__ = [
    "STOP_REQUEST_CONTEXT",
    "Closed",
    "Codec",
    "ErrorReply",
    "Event",
    "Flag",
    "Frame",
    "FrameDecoder",
    "Handshake",
    "Payload",
    "Response",
    "State",
    "StopRequest",
    "StreamCancelled",
    "StreamFlag",
    "WorkerConnection",
    "encode_frame",
]
