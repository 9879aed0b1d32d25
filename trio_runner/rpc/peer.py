"""Which process is on the other end of the RPC call being answered.

The RPC server marks each connection's task with its stream
(``calls_from``), and the call tasks it starts inherit the mark;
``caller_pid`` then names the peer process: from ``SO_PEERCRED`` on a unix
socket, and over TCP (loopback) from the process table, found by the
connection's two addresses. Used where the answer
depends on who asks: a worker that resets its own pool from inside a
request is not waited for (``resetter.Reset``).
"""

from __future__ import annotations

import socket
import struct
from contextvars import ContextVar
from typing import Any

import psutil
import trio

__all__ = ["caller_pid", "calls_from"]

_stream: ContextVar[trio.abc.Stream | None] = ContextVar("rpc_stream", default=None)

_PEERCRED = struct.Struct("3i")  # pid, uid, gid


def calls_from(stream: trio.abc.Stream) -> None:
    """Calls answered in this task, and in the tasks it starts from now on,
    come from ``stream``. (Each connection has a task of its own, whose
    context no other connection shares.)"""
    _stream.set(stream)


async def caller_pid() -> int | None:
    """The pid of the process that sent the call being answered, if known."""
    sock = getattr(_stream.get(), "socket", None)
    if not isinstance(sock, trio.socket.SocketType):
        return None
    try:
        if sock.family == socket.AF_UNIX:
            creds = sock.getsockopt(
                socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size
            )
            pid: int = _PEERCRED.unpack(creds)[0]
            return pid or None
        if sock.family in {socket.AF_INET, socket.AF_INET6}:
            theirs = _endpoint(sock.getpeername())
            ours = _endpoint(sock.getsockname())
            return await trio.to_thread.run_sync(_tcp_owner, theirs, ours)
    except OSError:
        pass  # the connection has gone
    return None


def _endpoint(address: Any) -> tuple[str, int]:
    """``(host, port)`` of a socket address or a psutil ``addr``; IPv6's
    flow info and scope are left out."""
    return address[0], address[1]


def _tcp_owner(theirs: tuple[str, int], ours: tuple[str, int]) -> int | None:
    for connection in psutil.net_connections("tcp"):
        if (
            connection.pid
            and connection.raddr
            and _endpoint(connection.laddr) == theirs
            and _endpoint(connection.raddr) == ours
        ):
            return connection.pid
    return None
