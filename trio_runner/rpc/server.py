"""The goridge RPC server: connections, calls in flight, replies.

Each connection is read frame by frame; each call runs in its own task, so
a slow ``resetter.Reset`` does not hold up an ``informer.Workers`` sent
after it on the same connection, and replies go out as calls finish,
possibly out of order (the seq matches them up, PROTOCOL.md 5.1). A reply
is one frame written with one ``send_all`` under the connection's send
lock, so replies never interleave.

::

    client ──frames──> reader ──> call task ──> handler ──> reply ──┐
                         │    └─> call task ──> ...                 │
                         └─ at most ``max_in_flight`` at once        │
    client <────────────── send lock (one frame, one write) <───────┘

A frame that cannot be a call (wrong option count, a method length past
the payload) gets an error reply and the connection goes on: the frame
boundary is intact. (Go's net/rpc drops the connection instead.) A frame
whose header fails its CRC loses the boundary: the connection is answered
once with the error and closed. When the client closes its end, calls in
flight still finish (a reset that was asked for is carried out); their
replies are dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import trio

from trio_runner.errors import (
    BadRpcCall,
    BindError,
    FrameCorrupted,
    RemoteProtocolError,
    RpcError,
    ScriptNotFound,
    TrioRunnerError,
)
from trio_runner.process.unix import UnixSocketFile, bind_unix_socket
from trio_runner.protocol import (
    Codec,
    FrameDecoder,
    RpcRequest,
    encode_error,
    encode_reply,
    parse_request,
)
from trio_runner.rpc.address import parse_address
from trio_runner.rpc.codec import decode_argument, encode_reply_value
from trio_runner.rpc.peer import calls_from
from trio_runner.rpc.registry import Registry, RpcService

__all__ = ["RpcServer"]

logger = logging.getLogger(__name__)

_READ_SIZE = 64 << 10


class RpcServer:
    """Serves RPC methods on ``listen`` (``tcp://host:port``, ``unix://path``).

    ``await nursery.start(server.run)`` returns once the socket is bound;
    cancel the nursery to stop. A unix socket file left by an earlier run is
    replaced (``process.unix``: nothing else is), and removed when the
    server stops.

    Args:
        listen: the address. Port 0 takes a free port (``address`` then
            names it); PHP workers need the real one, so the server config
            refuses port 0.
        services: objects whose ``methods()`` are registered.
        base_dir: what a relative unix socket path is relative to.
        user: who the PHP workers run as (``server.user``); a unix
            socket is given to that user, so they can connect to
            ``RR_RPC``.
        max_in_flight: calls one connection may have running at once;
            reading that connection waits while it has that many.
    """

    def __init__(
        self,
        listen: str,
        services: Iterable[RpcService] = (),
        *,
        base_dir: Path | None = None,
        max_in_flight: int = 64,
        user: str = "",
    ) -> None:
        self.listen = listen
        self.registry = Registry(services)
        self.address: str | None = None
        self._where = parse_address(listen, base_dir=base_dir)
        self._max_in_flight = max_in_flight
        self._user = user

    async def run(
        self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen, report the bound address, and serve until cancelled.

        Raises:
            BindError: the address cannot be bound (in use, no permission).
        """
        listener, self.address, socket_file = await self._bind()
        try:
            async with listener, trio.open_nursery() as nursery:
                logger.info(
                    "rpc: listening on %s",
                    self.address,
                    extra={"address": self.address},
                )
                task_status.started(str(self.address))
                while True:
                    stream = await listener.accept()
                    nursery.start_soon(self._serve_connection, stream)
        finally:
            if socket_file is not None:
                socket_file.remove()

    async def _bind(
        self,
    ) -> tuple[trio.SocketListener, str, UnixSocketFile | None]:
        where = self._where
        if where.kind == "unix":
            assert where.path is not None
            listener, socket_file = await bind_unix_socket(
                where.path, "rpc.listen", user=self._user
            )
            return listener, str(where), socket_file
        try:
            listeners = await trio.open_tcp_listeners(
                where.port, host=where.host or None
            )
        except OSError as exc:
            raise BindError(
                f"rpc.listen: cannot listen on {self.listen}: {exc.strerror or exc} "
                "(choose another address for rpc.listen)"
            ) from exc
        for extra in listeners[1:]:
            extra.socket.close()  # a host name may resolve to several
        port = listeners[0].socket.getsockname()[1]
        bound = str(parse_address(f"tcp://{_bracket(where.host)}:{port}"))
        return listeners[0], bound, None

    async def _serve_connection(self, stream: trio.abc.Stream) -> None:
        calls_from(stream)  # for handlers that ask who calls (resetter.Reset)
        decoder = FrameDecoder()
        send_lock = trio.Lock()
        slots = trio.Semaphore(self._max_in_flight)

        async def send(data: bytes) -> None:
            async with send_lock:
                try:
                    await stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the client left; its reply has nowhere to go

        async def call(request: RpcRequest) -> None:
            try:
                await send(await self._answer(request))
            finally:
                slots.release()

        async with stream, trio.open_nursery() as calls:
            while True:
                try:
                    data = await stream.receive_some(_READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    break
                if not data:
                    break
                decoder.feed(bytes(data))
                try:
                    while (frame := decoder.next_frame()) is not None:
                        try:
                            request = parse_request(frame)
                        except BadRpcCall as bad:
                            codec = Codec(bad.codec)
                            await send(
                                encode_error(bad.seq, bad.method, codec, bad.text)
                            )
                            continue
                        await slots.acquire()
                        calls.start_soon(call, request)
                except RemoteProtocolError as exc:
                    if isinstance(exc, FrameCorrupted | ScriptNotFound):
                        # The decoder's words are about workers; here the
                        # peer is whatever connected to the RPC address.
                        text = (
                            "it does not speak goridge RPC (no valid frame "
                            f"header; it sent {decoder.buffered[:60]!r})"
                        )
                    else:
                        text = f"it sent a broken frame: {exc}"
                    logger.warning("rpc: closing a connection: %s", text)
                    await send(encode_error(0, "", Codec.GOB, text))
                    break

    async def _answer(self, request: RpcRequest) -> bytes:
        """Run one call; return its reply frame, an error reply on failure."""
        name = request.method
        codec = request.codec
        try:
            method = self.registry.lookup(name)
            argument = decode_argument(codec, request.body, method.argument)
            logger.debug("rpc: %s (seq %d)", name, request.seq)
            result = await method.handler(argument)
            body = encode_reply_value(codec, result)
        except RpcError as exc:
            return encode_error(request.seq, name, codec, str(exc))
        except TrioRunnerError as exc:
            # PoolClosed, WorkerStartError, ...: the caller's problem to see.
            return encode_error(request.seq, name, codec, str(exc))
        except Exception as exc:
            logger.exception("rpc: %s failed unexpectedly", name)
            return encode_error(
                request.seq, name, codec, f"{name}: internal error: {exc!r}"
            )
        return encode_reply(request.seq, name, codec, body)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
