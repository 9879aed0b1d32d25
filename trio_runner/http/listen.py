"""Listening sockets for the HTTP servers: parsing, binding, naming addresses.

Both servers (``serve_h1`` and hypercorn's ``serve_http``) bind their own
socket here rather than inside the server code, so that a failure is one
plain ``BindError`` and no socket is leaked.
"""

from __future__ import annotations

import re
import socket

from trio_runner.errors import BindError, ConfigError

__all__ = ["format_address", "listen", "parse_address", "socket_address"]

# How a dual-stack socket names an IPv4 peer: ::ffff:127.0.0.1.
_MAPPED = "::ffff:"
_ADDRESS = re.compile(r"(?:\[(?P<ipv6>[^\]]+)\]|(?P<host>[^:\[\]]*)):(?P<port>\d+)")


def parse_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[ipv6]:port``; an empty host means 0.0.0.0
    (which ``listen`` widens to IPv6 too).

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


def listen(address: str, *, backlog: int = socket.SOMAXCONN) -> socket.socket:
    """A listening TCP socket on ``address``, with TCP_NODELAY.

    An empty host (``":8080"``) and ``[::]`` listen on every address, IPv4
    and IPv6, where the system can, as Go does; IPv4 clients then show as
    IPv4 addresses (``socket_address``). The backlog defaults to the system's
    largest (``net.core.somaxconn`` caps it): a burst of connections waits
    in the kernel rather than being dropped, as with nginx and Go.

    Raises:
        ConfigError: a malformed address.
        BindError: the address cannot be bound (in use, no permission).
    """
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    everywhere = address.strip().startswith(":") or host == "::"
    dualstack = everywhere and socket.has_dualstack_ipv6()
    if dualstack:
        host, family = "", socket.AF_INET6
    try:
        sock = socket.create_server(
            (host, port), family=family, backlog=backlog, dualstack_ipv6=dualstack
        )
    except OSError as exc:
        reason = exc.strerror or exc
        raise BindError(f"cannot listen on {address}: {reason}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def format_address(sock: socket.socket) -> str:
    """``host:port`` of a bound socket, IPv6 hosts in brackets."""
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def socket_address(address: object) -> tuple[str, int] | None:
    """An ASGI ``client`` or ``server`` value from ``getpeername()`` output.

    An IPv4 peer of a dual-stack socket (``::ffff:127.0.0.1``) is given as
    the IPv4 address it is, as Go gives it: PHP's REMOTE_ADDR checks,
    allow-lists and log readers expect that.
    """
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        if host.startswith(_MAPPED) and "." in host:
            host = host[len(_MAPPED) :]
        return host, int(address[1])
    return None
