"""goridge, sans-I/O: frames, events, the worker connection and RPC framing.

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
from trio_runner.protocol.rpc import (
    RpcReply,
    RpcRequest,
    encode_error,
    encode_reply,
    encode_request,
    parse_reply,
    parse_request,
    reply_codec,
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
    "RpcReply",
    "RpcRequest",
    "State",
    "StopRequest",
    "StreamCancelled",
    "StreamFlag",
    "WorkerConnection",
    "encode_error",
    "encode_frame",
    "encode_reply",
    "encode_request",
    "parse_reply",
    "parse_request",
    "reply_codec",
]
