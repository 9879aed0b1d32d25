"""Relays: how frames travel between the server and a worker process.

``pipes`` uses the child's stdin and stdout. ``tcp://host:port`` and
``unix://path`` make the server listen and each worker connect; since any
worker may connect first, the listener handshakes every connection, files it
by the pid the worker reports, and the spawner waits for the pid of the
process it started (PROTOCOL.md 2.1). A wrapper that does not ``exec`` PHP
reports another pid and never pairs: the spawn then times out with a message
that says so.

Both kinds hand back a handshaken ``WorkerConnection`` in state IDLE.
"""

from __future__ import annotations

import logging
import os
import select
from pathlib import Path
from typing import Protocol

import attrs
import trio
from trio.lowlevel import FdStream

from trio_runner.errors import BindError, RemoteProtocolError
from trio_runner.process.unix import UnixSocketFile, bind_unix_socket
from trio_runner.protocol import Handshake, WorkerConnection
from trio_runner.stream import DirectStream, PipeStream

__all__ = [
    "Link",
    "PipeRelay",
    "Relay",
    "SocketRelay",
    "handshake",
    "open_relay",
]

logger = logging.getLogger(__name__)

_READ_SIZE = 64 << 10


@attrs.define(eq=False)
class Link:
    """A handshaken relay to one worker: the byte stream and its protocol."""

    stream: trio.abc.Stream
    connection: WorkerConnection
    pid: int
    # Registered once: select.poll keeps its registrations in user space
    # (no descriptor to close), and this is asked before every request.
    _poller: select.poll | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        fd = _receive_fd(self.stream)
        if fd is not None:
            self._poller = select.poll()
            self._poller.register(fd, select.POLLIN)

    def readable_now(self) -> bool:
        """Whether bytes (or end of file) wait to be read, without reading.

        An idle worker has nothing to say: anything readable is stray output
        or a relay that closed. False for streams without a file descriptor
        (the in-memory ones of the tests).
        """
        if self._poller is None:
            return False
        return bool(self._poller.poll(0))


def _receive_fd(stream: trio.abc.Stream) -> int | None:
    if isinstance(stream, DirectStream):
        return stream.receive_fileno()  # pipes, on the hot path
    receiving: trio.abc.ReceiveStream = stream
    if isinstance(stream, trio.StapledStream):
        receiving = stream.receive_stream  # pipes: the child's stdout
    if isinstance(receiving, trio.lowlevel.FdStream):
        return receiving.fileno()
    if isinstance(receiving, trio.SocketStream):
        return receiving.socket.fileno()
    return None


async def handshake(stream: trio.abc.Stream) -> Link:
    """Send the pid control frame and wait for the worker's pid.

    Raises:
        RemoteProtocolError: the worker answered with something else or
            closed the relay (``trailing_data`` of the error has the bytes).
        trio.BrokenResourceError: the relay broke.
    """
    connection = WorkerConnection()
    await stream.send_all(connection.handshake(os.getpid()))
    while True:
        event = connection.next_event()
        if isinstance(event, Handshake):
            return Link(stream, connection, event.pid)
        data = await stream.receive_some(_READ_SIZE)
        connection.receive_data(bytes(data))


class Relay(Protocol):
    """What the spawner needs from a relay kind."""

    @property
    def spec(self) -> str:
        """The ``RR_RELAY`` value workers get."""

    @property
    def uses_stdio(self) -> bool:
        """True when frames travel on the child's stdin and stdout."""

    async def link(self, process: trio.Process) -> Link:
        """Return the handshaken link to ``process``."""


class PipeRelay:
    """Frames on the child's stdin/stdout; stderr stays a log stream."""

    spec = "pipes"
    uses_stdio = True

    async def link(self, process: trio.Process) -> Link:
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None and stdout is not None
        stream: trio.abc.Stream
        if isinstance(stdin, FdStream) and isinstance(stdout, FdStream):
            stream = PipeStream(stdin, stdout)  # no scheduler pass per frame
        else:
            stream = trio.StapledStream(stdin, stdout)
        return await handshake(stream)


class SocketRelay:
    """Workers connect to a listener this relay owns; pairing by pid.

    Use ``open_relay`` to get one: the listener runs in a task of the
    caller's nursery until that nursery ends.
    """

    uses_stdio = False

    def __init__(self, spec: str, socket_file: UnixSocketFile | None = None) -> None:
        self.spec = spec
        self._socket_file = socket_file  # removed when serving ends
        self._pending: dict[int, Link] = {}
        self._arrived = trio.Condition()

    async def serve(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept and pair worker connections until cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                for listener in listeners:
                    nursery.start_soon(self._accept, listener, nursery)
                task_status.started()
        finally:
            for link in self._pending.values():
                await trio.aclose_forcefully(link.stream)
            self._pending.clear()
            if self._socket_file is not None:
                self._socket_file.remove()

    async def _accept(
        self, listener: trio.SocketListener, nursery: trio.Nursery
    ) -> None:
        async with listener:
            while True:
                stream = await listener.accept()
                nursery.start_soon(self._pair, stream)

    async def _pair(self, stream: trio.abc.Stream) -> None:
        try:
            # A worker that connects and then says nothing must not pin a task.
            with trio.fail_after(60):
                link = await handshake(stream)
        except (
            RemoteProtocolError,
            trio.BrokenResourceError,
            trio.ClosedResourceError,
            trio.TooSlowError,
        ) as exc:
            logger.warning(
                "relay: dropped a connection that failed the handshake: %s", exc
            )
            await trio.aclose_forcefully(stream)
            return
        async with self._arrived:
            stale = self._pending.pop(link.pid, None)
            self._pending[link.pid] = link
            self._arrived.notify_all()
        if stale is not None:
            await trio.aclose_forcefully(stale.stream)

    async def link(self, process: trio.Process) -> Link:
        async with self._arrived:
            while process.pid not in self._pending:
                await self._arrived.wait()
            return self._pending.pop(process.pid)


async def open_relay(
    spec: str,
    *,
    relay_nursery: trio.Nursery,
    base_dir: Path | None = None,
    user: str = "",
) -> PipeRelay | SocketRelay:
    """Return a relay for ``spec`` (``pipes``, ``tcp://h:p``, ``unix://path``).

    Socket relays bind now and serve in ``relay_nursery``. With port 0 the
    returned relay's ``spec`` names the port that was bound, so workers
    connect to the right place. A stale unix socket file is replaced, as
    RoadRunner does (``process.unix``: a live socket or another file is
    refused), and removed when the relay stops. With ``user`` (workers
    run as that ``server.user``) the socket file is given to that user.

    Raises:
        BindError: the socket cannot be bound.
    """
    if spec in ("", "pipes"):
        return PipeRelay()
    kind, _, rest = spec.partition("://")
    listeners: list[trio.SocketListener]
    socket_file: UnixSocketFile | None = None
    try:
        if kind == "tcp":
            host, _, port = rest.rpartition(":")
            listeners = await trio.open_tcp_listeners(int(port), host=host.strip("[]"))
            bound = listeners[0].socket.getsockname()
            spec = f"tcp://{host}:{bound[1]}"
        elif kind == "unix":
            path = Path(rest)
            if base_dir is not None and not path.is_absolute():
                path = base_dir / path
            listener, socket_file = await bind_unix_socket(
                path, "server.relay", user=user
            )
            listeners = [listener]
            spec = f"unix://{path}"
        else:
            raise ValueError(
                f"relay must be pipes, tcp://host:port or unix://path, got {spec!r}"
            )
    except OSError as exc:
        raise BindError(
            f"server.relay: cannot listen on {spec}: {exc.strerror or exc} "
            "(choose another address for server.relay)"
        ) from exc
    relay = SocketRelay(spec, socket_file)
    await relay_nursery.start(relay.serve, listeners)
    return relay
