"""A raw goridge RPC client for wire-level tests: bytes out, replies in.

``open_wire`` connects to an ``RpcServer`` address; ``send`` writes bytes
as they are (whole frames, or deliberately broken ones) and ``reply``
reads the next reply frame. No seq bookkeeping: the tests check it.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from trio_runner.protocol import (
    Codec,
    FrameDecoder,
    RpcReply,
    encode_request,
    parse_reply,
)
from trio_runner.protocol.frame import Frame


@attrs.define
class Wire:
    stream: trio.abc.Stream
    decoder: FrameDecoder = attrs.field(factory=FrameDecoder)

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def call(self, seq: int, method: str, body: bytes = b"", codec=Codec.JSON):
        await self.send(encode_request(seq, method, codec, body))

    async def frame(self) -> Frame:
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError("the server closed the connection")
            self.decoder.feed(bytes(data))

    async def reply(self) -> RpcReply:
        return parse_reply(await self.frame())

    async def closed(self) -> bool:
        """True once the server has closed its end (after any bytes)."""
        return await self.stream.receive_some(65536) == b""


@asynccontextmanager
async def open_wire(address: str) -> AsyncIterator[Wire]:
    kind, _, rest = address.partition("://")
    if kind == "unix":
        sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        await sock.connect(rest)
        stream: trio.abc.Stream = trio.SocketStream(sock)
    else:
        host, _, port = rest.rpartition(":")
        stream = await trio.open_tcp_stream(host.strip("[]"), int(port))
    async with stream:
        yield Wire(stream)
