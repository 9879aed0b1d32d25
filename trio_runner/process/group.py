"""A worker's process group: ended whole, before its leader is reaped.

A worker leads a process group of its own (``spawn.py``), and whatever it
forks (a ``pcntl_fork`` child, a shell wrapper's PHP) joins that group.
When the worker is done, however it ended (it exited by itself, took the
stop frame, or was killed), ``GroupLeader.wait`` SIGKILLs what is left of
the group, then reaps the leader::

    leader exits ──> zombie: its pid, so the group id, cannot be reused
                       │
                       ├─ killpg(pid, SIGKILL)   the children it left
                       ├─ reaper.forget(pid)     nothing there to watch
                       └─ waitpid               the pid is free again

The order is what makes ``killpg`` safe. While the leader is an unreaped
zombie the kernel keeps its pid, and a group id is a pid, so the signal can
reach no one but the group's own members. After the reap, an emptied group
id may be handed to a new process (another worker leading its own group),
and a late ``killpg`` would kill it.

So nothing may reap the leader behind our back: ``trio.Process.returncode``
and ``poll`` reap as a side effect. ``GroupLeader`` is what the rest of the
package holds; it learns that the leader exited from a pidfd of its own (a
``waitid`` thread where there is none), reads the exit status with
``WNOWAIT``, and reaps only in ``wait``, after the group is killed.

Children that leave the group (``setsid``, ``setpgid``) are out of reach,
as they are for RoadRunner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from io import FileIO

import trio

from trio_runner.process import reaper

__all__ = ["GroupLeader"]

logger = logging.getLogger(__name__)

# waitid flags: has it exited, without reaping it (and without blocking)?
_EXITED = getattr(os, "WEXITED", 0) | getattr(os, "WNOWAIT", 0)


class GroupLeader:
    """A spawned worker process that leads its own process group.

    Implements ``spawn.WorkerProcess``; ``process`` is the ``trio.Process``
    underneath, for its pipes. Never reap through it: use ``wait``.
    """

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid
        self._returncode: int | None = None  # set once reaped
        self._lock = trio.Lock()  # one task waits on the pidfd at a time
        self._pidfd: FileIO | None = None
        try:
            self._pidfd = FileIO(os.pidfd_open(self.pid), closefd=True)
        except (AttributeError, OSError):
            pass  # an old kernel, or not Linux: wait in a thread instead

    def __repr__(self) -> str:
        return f"<GroupLeader pid={self.pid} returncode={self.returncode}>"

    @property
    def returncode(self) -> int | None:
        """The exit code once the leader exited (negative: the signal).

        Reading it does not reap the leader, so the group can still be
        killed (except where ``waitid`` is missing: see ``_wait_exited``).
        """
        if self._returncode is not None:
            return self._returncode
        if not hasattr(os, "waitid"):
            return self._reap()
        try:
            status = os.waitid(os.P_PID, self.pid, _EXITED | os.WNOHANG)
        except ChildProcessError:
            return self._reap()  # someone else reaped it: nothing to kill
        if status is None:
            return None
        if status.si_code == os.CLD_EXITED:
            return status.si_status
        return -status.si_status  # killed, or dumped core

    def kill(self) -> None:
        """SIGKILL the whole group, leader included, unless it is reaped."""
        self._kill_group()

    async def wait(self) -> int:
        """Wait for the leader to exit; kill its group; reap it.

        Cancellation leaves the leader unreaped: a later call goes on.
        """
        async with self._lock:
            if self._returncode is None:
                if self.returncode is None:
                    await self._wait_exited()
                self._kill_group()
                await reaper.forget(self.pid)
                if self._reap() is None:  # cannot happen: it is a zombie
                    self._returncode = await self.process.wait()
                self._close_pidfd()
        assert self._returncode is not None
        return self._returncode

    async def _wait_exited(self) -> None:
        if self._pidfd is not None:
            await trio.lowlevel.wait_readable(self._pidfd.fileno())
        elif hasattr(os, "waitid"):
            # Abandoned on cancellation; it returns when the leader exits.
            with contextlib.suppress(ChildProcessError):
                await trio.to_thread.run_sync(
                    os.waitid, os.P_PID, self.pid, _EXITED, abandon_on_cancel=True
                )
        else:
            # XXX: no way here to wait without reaping, so the group is not
            # killed on exit (its id may belong to someone else by then);
            # only kill() ends the leader's children.
            await self.process.wait()
            self._reap()

    def _kill_group(self) -> None:
        if self._returncode is not None:
            return  # reaped: the group id is no longer ours to signal
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except OSError as exc:  # EPERM: a child that changed its user
            logger.warning(
                "cannot kill what is left of worker %d's process group: %s",
                self.pid,
                exc.strerror,
                extra={"pid": self.pid},
            )

    def _reap(self) -> int | None:
        """Reap the leader if it exited (trio's ``returncode`` does)."""
        code = self.process.returncode
        if code is not None:
            self._returncode = code
        return code

    def _close_pidfd(self) -> None:
        if self._pidfd is not None:
            trio.lowlevel.notify_closing(self._pidfd.fileno())
            self._pidfd.close()
            self._pidfd = None
