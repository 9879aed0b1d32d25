"""Serving an ASGI app with hypercorn's trio worker.

hypercorn brings TLS, HTTP/2 (h2 and h2c) and HTTP/1.1 over TLS. Its
defaults are changed where they hurt a long-running PHP server:

- ``keep_alive_max_requests``: hypercorn ends a connection after 1,000
  requests, which on HTTP/2 is a GOAWAY that fails the call that hits it
  (DESIGN.md). Here a connection lives as long as the client keeps it.
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
import re
import socket
import sys
from typing import Any, cast

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from hypercorn.typing import ASGIFramework

from trio_runner.errors import BindError, ConfigError
from trio_runner.http.asgi import ASGIApp

__all__ = ["parse_address", "serve_http"]

server_logger = logging.getLogger("trio_runner.http.server")

# hypercorn's own messages. Its INFO ones ("Running on ...") repeat the
# server's ready line, so only its warnings and errors are let through.
hypercorn_logger = logging.getLogger("trio_runner.http.hypercorn")
hypercorn_logger.setLevel(logging.WARNING)

# How long after the grace period hypercorn may take to finish the lifespan
# shutdown and return before the shield around it is lifted.
_SHUTDOWN_MARGIN = 5.0

_ADDRESS = re.compile(r"(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)")

# Set by serve_http itself; an option may not override them.
_RESERVED_OPTIONS = frozenset(
    {"bind", "insecure_bind", "quic_bind", "graceful_timeout", "include_date_header"}
)


def parse_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[ipv6]:port``; an empty host means 0.0.0.0.

    Raises:
        ConfigError: the address is not of that form or the port is not
            between 0 and 65535.
    """
    match = _ADDRESS.fullmatch(address.strip())
    port = int(match["port"]) if match else -1
    if match is None or port > 65535:
        raise ConfigError(
            "http address must be host:port or [ipv6]:port with a port from "
            f"0 to 65535 (0 picks a free port), got {address!r}"
        )
    host = match["ipv6"] or match["host"] or "0.0.0.0"
    return host, port


@attrs.define(eq=False)
class _ShieldOnStart:
    """Shields the server once it is listening, so cancellation is graceful.

    Before ``started`` a cancellation simply aborts start-up.
    """

    scope: trio.CancelScope
    task_status: trio.TaskStatus[list[str]]

    def started(self, value: list[str] | None = None) -> None:
        self.scope.shield = True
        self.task_status.started(value or [])


async def _run_hypercorn(
    app: ASGIFramework,
    config: Config,
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    with trio.CancelScope() as scope:

        async def wait_for_shutdown() -> None:
            await shutdown.wait()
            margin = config.graceful_timeout + _SHUTDOWN_MARGIN
            scope.deadline = trio.current_time() + margin

        await serve(
            app,
            config,
            shutdown_trigger=wait_for_shutdown,
            task_status=_ShieldOnStart(scope, task_status),
            mode="asgi",
        )


async def serve_http(
    app: ASGIApp,
    address: str,
    *,
    grace_period: float = 30.0,
    date_header: bool = True,
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
        task_status: receives the bound address as ``host:port`` (IPv6 in
            brackets) with the real port, once the socket listens.
        **options: any other ``hypercorn.config.Config`` attribute, e.g.
            ``certfile``, ``keyfile`` or ``keep_alive_timeout``.

    Raises:
        ConfigError: a malformed address or an unknown option.
        BindError: the address cannot be bound (in use, no permission).

    On cancellation the listening socket closes at once, requests in
    flight get ``grace_period`` seconds, then the app's lifespan shutdown
    runs, and ``Cancelled`` propagates.
    """
    host, port = parse_address(address)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
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
                "the address and grace_period as arguments, and see "
                "hypercorn.config.Config for the rest"
            )
        setattr(config, name, value)

    # TODO: #3 contain the hypercorn HTTP/2 fault of DESIGN.md (a client
    # that leaves with responses in flight ends the whole server with
    # BusyResourceError). Probable cause, read but not reproduced here:
    # TCPServer._close() calls send_eof() outside its send_lock, and trio's
    # send_eof holds the send conflict detector across a checkpoint, so
    # h2's send_task calling send_all then raises, and nothing catches it.
    # Bind here rather than in hypercorn: a failure is then one plain error
    # (hypercorn would raise it inside nested exception groups and leak the
    # socket), and hypercorn takes the bound socket over by its descriptor.
    listener = _listen(host, port, address)
    config.bind = [f"fd://{listener.detach()}"]

    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        # hypercorn's types want its TypedDict scopes; the bridge takes any
        # mapping, which is what the ASGI specification promises.
        asgi = cast(ASGIFramework, app)
        binds: list[str] = await nursery.start(_run_hypercorn, asgi, config, shutdown)
        bound = binds[0].partition("://")[2]
        server_logger.debug("listening on %s", bound)
        task_status.started(bound)
        try:
            await trio.sleep_forever()
        finally:
            shutdown.set()


def _listen(host: str, port: int, address: str) -> socket.socket:
    """A listening TCP socket on ``host:port``, as hypercorn would make it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=100)
    except OSError as exc:
        raise BindError(
            f"http: cannot listen on {address}: {exc.strerror or exc} "
            "(set http.address to a free host:port)"
        ) from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
