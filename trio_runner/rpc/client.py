"""A blocking goridge RPC client, for the command line and plain Python.

::

    with RpcClient("tcp://127.0.0.1:6001") as rpc:
        workers = rpc.call("informer.Workers", "http")["workers"]

One call at a time per client; the seq starts at 1 and goes up by one per
call, as PHP's client does. Arguments and replies are encoded in the codec
asked for: JSON values, raw bytes, protobuf messages, or msgpack values.
Failures are ``RpcError`` (the server's own text when it answered with an
error) and ``RpcUnreachable`` when nothing listens at the address.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import TracebackType
from typing import Any

import msgpack
from google.protobuf.message import Message

from trio_runner.errors import (
    FrameCorrupted,
    RemoteProtocolError,
    RpcError,
    RpcUnreachable,
)
from trio_runner.protocol import (
    Codec,
    FrameDecoder,
    encode_request,
    parse_reply,
)
from trio_runner.rpc.address import parse_address

__all__ = ["RpcClient"]

_READ_SIZE = 64 << 10


class RpcClient:
    """A connection to an RPC server; connects on the first call.

    Args:
        address: ``tcp://host:port`` or ``unix://path``.
        timeout: seconds to connect, and for each call's reply.
        base_dir: what a relative unix path is relative to.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = 10.0,
        base_dir: Path | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self._where = parse_address(address, base_dir=base_dir)
        self._socket: socket.socket | None = None
        self._decoder = FrameDecoder()
        self._seq = 0

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def connect(self) -> None:
        """Connect now (a call connects by itself when needed).

        Raises:
            RpcUnreachable: nothing accepts connections at the address.
        """
        if self._socket is not None:
            return
        where = self._where
        try:
            if where.kind == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout)
                    sock.connect(str(where.path))
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection(
                    (where.host or "127.0.0.1", where.port), timeout=self.timeout
                )
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
            if isinstance(exc, TimeoutError):
                reason = f"no answer within {self.timeout:g} s"
            raise RpcUnreachable(
                f"no trio_runner answers RPC at {self.address}: "
                f"{reason[:1].lower()}{reason[1:]}"
            ) from exc
        self._socket = sock

    def call(
        self,
        method: str,
        argument: Any = None,
        *,
        codec: Codec = Codec.JSON,
        reply_type: type[Message] | None = None,
    ) -> Any:
        """Call ``method`` with ``argument``; return the decoded reply.

        JSON and msgpack encode ``argument`` as a value (None sends an empty
        body); raw sends bytes; proto sends a message. A proto reply is
        parsed into ``reply_type`` when given, else returned as bytes.

        Raises:
            RpcError: the server answered with an error (its text), or the
                connection broke or timed out.
            RpcUnreachable: nothing listens at the address.
        """
        self.connect()
        assert self._socket is not None
        self._seq += 1
        seq = self._seq
        body = _encode(codec, argument)
        try:
            self._socket.sendall(encode_request(seq, method, codec, body))
            reply = parse_reply(self._read_frame())
        except (OSError, ValueError, RemoteProtocolError) as exc:
            self.close()
            if isinstance(exc, TimeoutError):
                raise RpcError(
                    f"{method}: no reply from {self.address} within {self.timeout:g} s"
                ) from exc
            if isinstance(exc, FrameCorrupted):
                raise RpcError(
                    f"{method}: what answers at {self.address} does not speak "
                    "goridge RPC (is rpc.listen the address of another service, "
                    "such as http.address?)"
                ) from exc
            raise RpcError(f"{method}: RPC to {self.address} failed: {exc}") from exc
        if reply.seq != seq:
            self.close()
            raise RpcError(
                f"{method}: the reply has seq {reply.seq}, the call had {seq}"
            )
        if reply.error is not None:
            raise RpcError(reply.error)
        return _decode(reply.codec, reply.body, reply_type)

    def _read_frame(self) -> Any:
        assert self._socket is not None
        while True:
            frame = self._decoder.next_frame()
            if frame is not None:
                return frame
            data = self._socket.recv(_READ_SIZE)
            if not data:
                raise ConnectionResetError("the server closed the connection")
            self._decoder.feed(data)


def _encode(codec: Codec, argument: Any) -> bytes:
    if codec is Codec.JSON:
        return b"" if argument is None else json.dumps(argument).encode()
    if codec is Codec.MSGPACK:
        return b"" if argument is None else bytes(msgpack.packb(argument))
    if codec is Codec.PROTO:
        return b"" if argument is None else bytes(argument.SerializeToString())
    if codec is Codec.RAW:
        return bytes(argument or b"")
    raise ValueError(f"the client does not speak the {codec.name} codec")


def _decode(codec: Codec, body: bytes, reply_type: type[Message] | None) -> Any:
    if codec is Codec.JSON:
        return json.loads(body) if body else None
    if codec is Codec.MSGPACK:
        return msgpack.unpackb(body, raw=False) if body else None
    if codec is Codec.PROTO and reply_type is not None:
        return reply_type.FromString(body)
    return body
