"""Serving an ASGI app with hypercorn's trio worker.

hypercorn brings TLS, HTTP/2 (h2 and h2c) and HTTP/1.1 over TLS. The
worker loop (lifespan, accept, graceful stop) is run here rather than by
``hypercorn.trio.serve`` so that each connection is a
``connection.Connection``, which fixes the hypercorn faults seen here
(DESIGN.md; the list is in that module). Its defaults are changed where
they hurt a long-running PHP server:

- ``keep_alive_max_requests``: hypercorn ends a connection after 1,000
  requests, which on HTTP/2 is a GOAWAY that fails the call that hits it
  (DESIGN.md). Here a connection lives as long as the client keeps it.
- h2c (HTTP/2 without TLS) is off unless asked for; hypercorn always
  accepts it.
- hypercorn's access log is off (trio_runner writes its own), its error
  log goes to the ``trio_runner.http.hypercorn`` logger (warnings and
  errors only) instead of stderr, and it sends no ``Server`` header.

Shutdown: cancelling ``serve_http`` stops accepting at once, lets requests
in flight finish within ``grace_period`` seconds, then cancels them. The
server runs in a shielded scope so that the caller's cancellation becomes
this graceful shutdown instead of cutting every connection; a deadline
bounds the shield.
"""

from __future__ import annotations

import logging
import ssl
import sys
from functools import partial
from typing import Any, cast

import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import AppWrapper, ASGIFramework, ConnectionState

from trio_runner.errors import ConfigError
from trio_runner.http.asgi import ASGIApp
from trio_runner.http.connection import Connection
from trio_runner.http.listen import format_address, listen, parse_address

__all__ = ["parse_address", "serve_http"]

server_logger = logging.getLogger("trio_runner.http.server")

# hypercorn's own messages. Its INFO ones ("Running on ...") repeat the
# server's ready line, so only its warnings and errors are let through.
hypercorn_logger = logging.getLogger("trio_runner.http.hypercorn")
hypercorn_logger.setLevel(logging.WARNING)

# How long after the grace period the lifespan shutdown may take before the
# shield around the server is lifted.
_SHUTDOWN_MARGIN = 5.0

# Set by serve_http itself; an option may not override them.
_RESERVED_OPTIONS = frozenset(
    {"bind", "insecure_bind", "quic_bind", "graceful_timeout", "include_date_header"}
)


async def serve_http(
    app: ASGIApp,
    address: str,
    *,
    grace_period: float = 30.0,
    date_header: bool = True,
    tls: ssl.SSLContext | None = None,
    h2c: bool = False,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
    **options: Any,
) -> None:
    """Serve ``app`` on ``address`` with hypercorn until cancelled.

    Args:
        app: the ASGI app, usually an ``HttpBridge``.
        address: ``host:port`` or ``[ipv6]:port``; port 0 picks a free one.
        grace_period: seconds requests in flight may take to finish once
            the server is cancelled.
        date_header: add a ``Date`` header to every response. Turn it off
            when the app adds its own: ``HttpBridge(date_header=True)`` does,
            and keeps the one PHP sent, as RoadRunner does.
        tls: serve HTTPS with this context (``tls.server_context`` builds
            one from ``[http.ssl]``); HTTP/2 is offered when the context's
            ALPN protocols include ``h2``. Without it the hypercorn options
            ``certfile`` and ``keyfile`` also turn TLS on.
        h2c: accept HTTP/2 without TLS too, with prior knowledge or through
            ``Upgrade: h2c``. Off, a prior-knowledge client gets 505 and an
            upgrade request is answered over HTTP/1.1.
        task_status: receives the bound address as ``host:port`` (IPv6 in
            brackets) with the real port, once the socket listens.
        **options: any other ``hypercorn.config.Config`` attribute, e.g.
            ``h2_max_concurrent_streams`` or ``keep_alive_timeout``.

    Raises:
        ConfigError: a malformed address or an unknown option.
        BindError: the address cannot be bound (in use, no permission).

    On cancellation the listening socket closes at once, requests in
    flight get ``grace_period`` seconds, then the app's lifespan shutdown
    runs, and ``Cancelled`` propagates.
    """
    parse_address(address)  # a malformed address fails before anything else
    config = Config()
    config.graceful_timeout = grace_period
    config.keep_alive_max_requests = sys.maxsize
    config.accesslog = None
    config.errorlog = hypercorn_logger
    config.include_server_header = False
    config.include_date_header = date_header
    for name, value in options.items():
        if name in _RESERVED_OPTIONS or not hasattr(Config, name):
            raise ConfigError(
                f"{name!r} is not a hypercorn option serve_http accepts; pass "
                "the address, grace_period, tls and h2c as arguments, and see "
                "hypercorn.config.Config for the rest"
            )
        setattr(config, name, value)
    if tls is None:
        tls = config.create_ssl_context()

    # Bind here rather than in hypercorn: a failure is then one plain error
    # (hypercorn would raise it inside nested exception groups and leak the
    # socket).
    sock = listen(address)
    bound = format_address(sock)
    listener: trio.SocketListener | trio.SSLListener[trio.SocketStream]
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    if tls is not None:
        listener = trio.SSLListener(listener, tls, https_compatible=True)

    # hypercorn's types want its TypedDict scopes; the bridge takes any
    # mapping, which is what the ASGI specification promises.
    wrapped = ASGIWrapper(cast(ASGIFramework, app))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            partial(_serve_connections, wrapped, config, listener, h2c, shutdown)
        )
        server_logger.debug("listening on %s", bound)
        task_status.started(bound)
        try:
            await trio.sleep_forever()
        finally:
            shutdown.set()


async def _serve_connections(
    app: AppWrapper,
    config: Config,
    listener: trio.SocketListener | trio.SSLListener[trio.SocketStream],
    h2c: bool,
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """hypercorn's trio worker loop, serving each connection as a ``Connection``.

    Lifespan start-up, then accept until ``shutdown`` is set, then let the
    connections finish within ``config.graceful_timeout``, then lifespan
    shutdown. Once started the loop is shielded, so that being cancelled
    waits for ``shutdown`` instead of cutting connections; a deadline set at
    shutdown bounds the shield.
    """
    with trio.CancelScope() as scope:
        state: dict[str, Any] = {}
        lifespan = Lifespan(app, config, state)
        context = WorkerContext(None)
        async with trio.open_nursery() as lifespan_nursery:
            await lifespan_nursery.start(lifespan.handle_lifespan)
            await lifespan.wait_for_startup()
            async with trio.open_nursery() as connections:
                handler = partial(
                    Connection, app, config, context, ConnectionState(state), h2c=h2c
                )
                async with trio.open_nursery() as acceptor:
                    acceptor.start_soon(
                        partial(
                            trio.serve_listeners,
                            handler,
                            [listener],
                            handler_nursery=connections,
                        )
                    )
                    scope.shield = True
                    task_status.started()
                    await shutdown.wait()
                    margin = config.graceful_timeout + _SHUTDOWN_MARGIN
                    scope.deadline = trio.current_time() + margin
                    acceptor.cancel_scope.cancel()  # closes the listener
                # Idle keep-alive connections close now, busy ones after
                # their response (HTTP/2: GOAWAY once idle).
                await context.terminated.set()
                deadline = trio.current_time() + config.graceful_timeout
                connections.cancel_scope.deadline = deadline
            await lifespan.wait_for_shutdown()
            lifespan_nursery.cancel_scope.cancel()
