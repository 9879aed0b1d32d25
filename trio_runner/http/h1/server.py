"""``serve_h1``: the lean HTTP/1.1 server, plain TCP, for any ASGI app.

Why a server of our own next to hypercorn: measured on one core with wrk,
an ASGI hello world did about 970 req/s under hypercorn's trio worker and
about 12,600 under uvicorn with httptools (DESIGN.md); parsing with
httptools and writing each response in one piece is what closes that gap.
hypercorn still serves TLS, HTTP/2 and h2c (``serve_http``).

The loop: the app's lifespan start-up, then accept, each connection an
``H1Connection`` in the connections nursery; a connection that fails
inside the server is logged and closed, never the server. Shutdown, when
``serve_h1`` is cancelled: the listening socket closes at once, idle
keep-alive connections close, busy ones close after their response, and
after ``grace_period`` whatever is left is cancelled; then the lifespan
shutdown. As in ``serve_http``, the loop runs in a shielded scope so that
the caller's cancellation becomes this graceful shutdown; a deadline
bounds the shield.
"""

from __future__ import annotations

import errno
import logging
import socket

import trio

from trio_runner.errors import LifespanFailed
from trio_runner.http.asgi import ASGIApp
from trio_runner.http.h1.connection import H1Connection, H1Limits, watch_deadlines
from trio_runner.http.h1.lifespan import Lifespan
from trio_runner.http.listen import format_address, listen, socket_address
from trio_runner.stream import SocketStream

__all__ = ["serve_h1"]

logger = logging.getLogger(__name__)

# How long after the grace period the lifespan shutdown may take before the
# shield around the server is lifted.
_SHUTDOWN_MARGIN = 5.0

# accept() failures that concern one connection only: try the next.
_ACCEPT_SKIP = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
# Out of descriptors or memory: wait a moment (other connections close).
_ACCEPT_PAUSE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_PAUSE = 0.1


async def serve_h1(
    app: ASGIApp,
    address: str,
    *,
    grace_period: float = 30.0,
    date_header: bool = True,
    limits: H1Limits | None = None,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` over plain HTTP/1.1 on ``address`` until cancelled.

    Args:
        app: the ASGI app, usually an ``HttpBridge`` or ``build_app``'s.
        address: ``host:port`` or ``[ipv6]:port``; port 0 picks a free one.
        grace_period: seconds requests in flight may take to finish once
            the server is cancelled.
        date_header: add a ``Date`` header to responses that have none.
        limits: the head size limit and the deadlines (``H1Limits``).
        task_status: receives the bound address as ``host:port`` (IPv6 in
            brackets) with the real port, once the socket listens and the
            app's lifespan start-up is done.

    Raises:
        ConfigError: a malformed address.
        BindError: the address cannot be bound (in use, no permission).
        LifespanFailed: the app failed its lifespan start-up.

    On cancellation the listening socket closes at once, requests in
    flight get ``grace_period`` seconds, then the app's lifespan shutdown
    runs, and ``Cancelled`` propagates.
    """
    sock = listen(address)
    sock.setblocking(False)
    bound = format_address(sock)
    server = _Server(app, limits or H1Limits(), date_header, grace_period)
    failure: LifespanFailed | None = None
    try:
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(server.run, sock)
            except LifespanFailed as exc:
                failure = exc  # raised below, bare rather than in a group
            else:
                logger.debug("listening on %s", bound)
                task_status.started(bound)
                try:
                    await trio.sleep_forever()
                finally:
                    server.stop()
    finally:
        _close_listener(sock)
    if failure is not None:
        raise failure


def _close_listener(sock: socket.socket) -> None:
    if sock.fileno() >= 0:
        trio.lowlevel.notify_closing(sock)
        sock.close()


class _Server:
    """The accept loop and the live connections of one ``serve_h1``."""

    def __init__(
        self, app: ASGIApp, limits: H1Limits, date_header: bool, grace_period: float
    ) -> None:
        self._app = app
        self._limits = limits
        self._date = date_header
        self._grace = grace_period
        self._connections: set[H1Connection] = set()
        self._stopping = trio.Event()
        self._state: dict[str, object] | None = None

    def stop(self) -> None:
        self._stopping.set()

    async def run(
        self,
        listener: socket.socket,
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        failure: LifespanFailed | None = None
        with trio.CancelScope() as scope:
            lifespan = Lifespan(self._app)
            async with trio.open_nursery() as lifespan_nursery:
                lifespan_nursery.start_soon(lifespan.run_app)
                try:
                    await lifespan.startup()
                except LifespanFailed as exc:
                    failure = exc
                else:
                    self._state = lifespan.state if lifespan.supported else None
                    scope.shield = True
                    await self._serve(listener, scope, task_status)
                    await lifespan.shutdown()
                lifespan_nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def _serve(
        self,
        listener: socket.socket,
        shield: trio.CancelScope,
        task_status: trio.TaskStatus[None],
    ) -> None:
        async with trio.open_nursery() as watcher:
            watcher.start_soon(watch_deadlines, self._connections, self._limits)
            async with trio.open_nursery() as connections:
                async with trio.open_nursery() as acceptor:
                    acceptor.start_soon(self._accept, listener, connections)
                    task_status.started()
                    await self._stopping.wait()
                    margin = self._grace + _SHUTDOWN_MARGIN
                    shield.deadline = trio.current_time() + margin
                    acceptor.cancel_scope.cancel()
                _close_listener(listener)
                # Idle connections close now, busy ones after their response.
                for connection in list(self._connections):
                    connection.shutdown()
                deadline = trio.current_time() + self._grace
                connections.cancel_scope.deadline = deadline
            watcher.cancel_scope.cancel()

    async def _accept(self, listener: socket.socket, connections: trio.Nursery) -> None:
        """Accept until cancelled; each connection is served in ``connections``."""
        while True:
            await trio.lowlevel.wait_readable(listener)
            while True:
                try:
                    sock, peer = listener.accept()
                except BlockingIOError:
                    break
                except OSError as error:
                    if error.errno in _ACCEPT_SKIP:
                        continue
                    if error.errno not in _ACCEPT_PAUSE:
                        raise
                    logger.error(
                        "cannot accept HTTP connections: %s; retrying in %g s",
                        error.strerror,
                        _PAUSE,
                        extra={"reason": "accept_failed"},
                    )
                    await trio.sleep(_PAUSE)
                    break
                connections.start_soon(self._handle, sock, peer)

    async def _handle(self, sock: socket.socket, peer: object) -> None:
        stream = SocketStream(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            client = socket_address(peer)
            server = socket_address(sock.getsockname())
        except OSError:
            await stream.aclose()
            return  # gone before it was served
        connection = H1Connection(
            self._app,
            stream,
            client=client,
            server=server,
            limits=self._limits,
            date_header=self._date,
            state=self._state,
        )
        self._connections.add(connection)
        if self._stopping.is_set():
            connection.shutdown()
        try:
            await connection.serve()
        except Exception:
            logger.error(
                "an HTTP/1.1 connection failed inside the server; it was closed "
                "and the server carries on",
                exc_info=True,
                extra={"reason": "connection_failed"},
            )
        finally:
            self._connections.discard(connection)
