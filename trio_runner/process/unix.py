"""Unix socket files for listeners: take over only what is ours to take.

A listener on ``unix://path`` must bind a file. One left by a server that
died is *stale* and is replaced, as RoadRunner does. Anything else at that
path is refused instead: a regular file (a typo in the path must not cost
someone's data), or a socket some process still accepts on (a second
server would silently take the first one's socket over, and delete it on
the way out). And on the way out a listener removes the file only if it
is still the one it bound.

With ``server.user`` set, workers connect as that user: the socket file is
given to it once bound, and every directory above it must let it through
(search permission), or binding fails with a message naming both.
"""

from __future__ import annotations

import errno
import os
import pwd
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
    path: Path, setting: str, *, backlog: int = 128, user: str = ""
) -> tuple[trio.SocketListener, UnixSocketFile]:
    """Listen on ``path``, replacing a stale socket file and nothing else.

    ``user`` (``server.user``), when set, is who must be able to connect:
    the socket file is chowned to it and its primary group.

    Raises:
        BindError: the path holds something else, a live socket, or cannot
            be bound; or ``user`` does not exist or could not reach it. The
            message names ``setting``.
    """
    owner = _owner(path, setting, user) if user else None
    await _clear_stale(path, setting)
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(os.fspath(path))
        if owner is not None:
            # Before listen: no one can connect to it as the wrong owner.
            os.chown(path, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
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


def _owner(path: Path, setting: str, user: str) -> pwd.struct_passwd:
    """``user``'s entry, once sure it may reach a socket at ``path``.

    A worker runs with the user's uid and primary group only
    (``spawn.py``), so those are what the directory modes are checked
    against (ACLs are not read).
    """
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise BindError(
            f"{setting}: server.user {user!r} does not exist on this machine"
        ) from None
    if entry.pw_uid == 0:
        return entry
    absolute = Path(os.path.abspath(path))
    for directory in (*absolute.parents, *absolute.resolve().parents):
        try:
            status = directory.stat()
        except OSError:
            continue  # binding reports a missing directory better
        if not _may_search(status, entry):
            raise BindError(
                f"{setting}: server.user {user!r} cannot reach unix://{path}: "
                f"it may not enter {directory} (mode "
                f"{stat.filemode(status.st_mode)}, owner uid {status.st_uid}); "
                f"give {user!r} search permission there (chmod o+x) or put "
                "the socket in a directory it can reach"
            )
    return entry


def _may_search(status: os.stat_result, entry: pwd.struct_passwd) -> bool:
    if status.st_uid == entry.pw_uid:
        return bool(status.st_mode & stat.S_IXUSR)
    if status.st_gid == entry.pw_gid:
        return bool(status.st_mode & stat.S_IXGRP)
    return bool(status.st_mode & stat.S_IXOTH)


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
