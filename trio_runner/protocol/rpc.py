"""goridge RPC framing, sans-I/O: calls and replies as frames (PROTOCOL.md 5.1).

Both directions use frames with exactly two options and the method name in
front of the body::

    flags = one codec bit (| ERROR on a failed reply)
    options = [seq, len(method)]
    payload = b"Service.Method" + body      (error reply: method + text)

A server reads a request with ``parse_request`` and answers with
``encode_reply`` or ``encode_error``; a client writes with
``encode_request`` and reads with ``parse_reply``. The reply echoes the
request's codec bit, picked by ``reply_codec`` when a client set several.

Error texts that PHP code matches (``should be 2 options...``, the ``rpc:``
lookup texts in ``trio_runner.rpc.registry``) are RoadRunner's, verbatim.
"""

from __future__ import annotations

import attrs

from trio_runner.errors import BadRpcCall
from trio_runner.protocol.frame import ERROR, Codec, Frame, encode_frame

__all__ = [
    "OPTIONS_ERROR",
    "RpcReply",
    "RpcRequest",
    "encode_error",
    "encode_reply",
    "encode_request",
    "parse_reply",
    "parse_request",
    "reply_codec",
]

# Go's goridge codec says this when a request lacks its two options.
OPTIONS_ERROR = "should be 2 options. SEQ_ID and METHOD_LEN"

# Which codec a reply uses when a request set several bits (section 5.1).
_PRECEDENCE = (Codec.PROTO, Codec.JSON, Codec.RAW, Codec.MSGPACK, Codec.GOB)


@attrs.frozen(slots=True)
class RpcRequest:
    """One call as a server reads it.

    Attributes:
        seq: the client's sequence number, echoed in the reply.
        method: ``"Service.Method"`` as sent (not yet checked).
        codec: the codec the body is in and the reply must use.
        body: the encoded argument; empty means "no argument".
    """

    seq: int
    method: str
    codec: Codec
    body: bytes


@attrs.frozen(slots=True)
class RpcReply:
    """One reply as a client reads it.

    Attributes:
        seq: the sequence number of the call it answers.
        method: the method name the server echoed.
        codec: the reply's codec bit.
        body: the encoded reply value, or the error text's bytes.
        error: the error text when the call failed, else None.
    """

    seq: int
    method: str
    codec: Codec
    body: bytes
    error: str | None = None


def reply_codec(flags: int) -> Codec:
    """The single codec a reply to a request with ``flags`` uses.

    Proto, JSON, raw, msgpack, gob in that order; gob when none is set, as
    Go's codec falls back to it.
    """
    for codec in _PRECEDENCE:
        if flags & codec:
            return codec
    return Codec.GOB


def parse_request(frame: Frame) -> RpcRequest:
    """Split a request frame into its call.

    Raises:
        BadRpcCall: the frame has not exactly two options, or its method
            length runs past the payload.
    """
    codec = reply_codec(frame.flags)
    if len(frame.options) != 2:
        seq = frame.options[0] if frame.options else 0
        raise BadRpcCall(OPTIONS_ERROR, seq=seq, method="", codec=int(codec))
    seq, length = frame.options
    payload = frame.payload
    if length > len(payload):
        text = (
            f"rpc: method name length {length} is longer than the payload "
            f"({len(payload)} bytes)"
        )
        raise BadRpcCall(text, seq=seq, method="", codec=int(codec))
    method = payload[:length].decode("utf-8", "replace")
    return RpcRequest(seq, method, codec, payload[length:])


def encode_reply(seq: int, method: str, codec: Codec, body: bytes) -> bytes:
    """A successful reply frame, whole, for one write."""
    name = method.encode()
    return encode_frame(int(codec), name + body, (seq, len(name)))


def encode_error(seq: int, method: str, codec: Codec, text: str) -> bytes:
    """An error reply: the codec bit plus ERROR, the method, then the text."""
    name = method.encode()
    return encode_frame(int(codec) | ERROR, name + text.encode(), (seq, len(name)))


def encode_request(seq: int, method: str, codec: Codec, body: bytes = b"") -> bytes:
    """A call frame, whole, for one write."""
    name = method.encode()
    return encode_frame(int(codec), name + body, (seq, len(name)))


def parse_reply(frame: Frame) -> RpcReply:
    """Split a reply frame into its parts.

    Raises:
        ValueError: the frame is not a reply (not two options, or a method
            length past the payload).
    """
    if len(frame.options) != 2:
        raise ValueError(
            f"an RPC reply carries 2 options (seq, method length), "
            f"got {len(frame.options)}"
        )
    seq, length = frame.options
    if length > len(frame.payload):
        raise ValueError(
            f"RPC reply method length {length} is past its payload "
            f"({len(frame.payload)} bytes)"
        )
    method = frame.payload[:length].decode("utf-8", "replace")
    body = frame.payload[length:]
    error = body.decode("utf-8", "replace") if frame.flags & ERROR else None
    return RpcReply(seq, method, reply_codec(frame.flags & ~ERROR), body, error)
