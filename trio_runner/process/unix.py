"""Unix socket files for listeners: take over only what is ours to take.

A listener on ``unix://path`` must bind a file. One left by a server that
died is *stale* and is replaced, as RoadRunner does. Anything else at that
path is refused instead: a regular file (a typo in the path must not cost
someone's data), or a socket some process still accepts on (a second
server would silently take the first one's socket over, and delete it on
the way out). And on the way out a listener removes the file only if it
is still the one it bound.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from pathlib import Path

import attrs
import trio

from trio_runner.errors import BindError

__all__ = ["UnixSocketFile", "bind_unix_socket"]


@attrs.frozen
class UnixSocketFile:
    """The file a listener bound: removed by ``remove`` if still that one."""

    path: Path
    identity: tuple[int, int, int]  # device, inode, change time (ns)

    def remove(self) -> None:
        try:
            now = self.path.lstat()
        except FileNotFoundError:
            return
        if _identity(now) == self.identity:  # (inodes are reused)
            self.path.unlink(missing_ok=True)


def _identity(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_dev, status.st_ino, status.st_ctime_ns


async def bind_unix_socket(
    path: Path, setting: str, *, backlog: int = 128
) -> tuple[trio.SocketListener, UnixSocketFile]:
    """Listen on ``path``, replacing a stale socket file and nothing else.

    Raises:
        BindError: the path holds something else, a live socket, or cannot
            be bound; the message names ``setting``.
    """
    await _clear_stale(path, setting)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(os.fspath(path))
        sock.listen(backlog)
        bound = await trio.Path(path).lstat()
    except OSError as exc:
        sock.close()
        raise BindError(
            f"{setting}: cannot listen on unix://{path}: {exc.strerror or exc}"
        ) from exc
    except BaseException:
        sock.close()
        raise
    return trio.SocketListener(sock), UnixSocketFile(path, _identity(bound))


async def _clear_stale(path: Path, setting: str) -> None:
    try:
        mode = (await trio.Path(path).lstat()).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BindError(f"{setting}: cannot use {path}: {exc.strerror}") from exc
    if not stat.S_ISSOCK(mode):
        raise BindError(
            f"{setting}: {path} exists and is not a socket; refusing to replace "
            "it (choose another path, or remove the file)"
        )
    probe = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await probe.connect(os.fspath(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise BindError(f"{setting}: cannot use {path}: {exc.strerror}") from exc
    else:
        raise BindError(
            f"{setting}: {path} is in use: another process (a running server?) "
            "accepts connections on it; stop it or choose another path"
        )
    finally:
        probe.close()
    await trio.Path(path).unlink(missing_ok=True)  # stale: its listener is gone
