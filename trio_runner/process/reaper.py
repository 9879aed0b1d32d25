"""The reaper: a helper process that kills a dead server's PHP workers.

Workers run in process groups of their own (``spawn.py``), so nothing ends
them when the server dies without stopping them: an idle worker notices
end of file on its relay and exits, but one busy with a request (PHP in a
60 s sleep, say) lives on until that request is over. The kernel's
parent-death signal cannot close the gap (``spawn.py`` says why), so the
server keeps a helper that outlives it by a moment::

    server ──pipe──> reaper         "+1234\\n": watch process group 1234
       │                            "-1234\\n": forget it (it was killed)
       └── workers 1234, 1240, ...  end of file: SIGKILL every group still
                                    watched, then exit

The pipe's write end is the server's only link to the reaper. However the
server ends (SIGKILL included), the kernel closes that end, and the reaper
reads end of file. A server that stops normally has killed every
worker's group first, so nothing is left watched and the reaper simply
exits; the server then reaps the reaper. Invariants:

- A group is watched from just after its leader is spawned until the
  server has killed the group itself, which ``GroupLeader.wait``
  (``group.py``) does once the leader exited and before it is reaped. The
  reaper applies the lines in order, so it never kills a group it was told
  is gone; and a pid (hence a group id) is free for reuse only once
  reaped, after its ``-`` line. A server killed between a worker's fork
  and its ``+`` leaves that worker unwatched; it has no request yet, so it
  exits at the end of file on its relay.
- The server never blocks on the reaper. A line is a few bytes, written
  whole or not at all to a non-blocking pipe (``PIPE_BUF``). A reaper that
  died or stopped reading (so that the pipe filled) is given up on with
  one warning and killed: a reaper with a stale list must not act on it
  later. The server keeps serving, without that safety net.
- One reaper per server process, shared by its pools and started with the
  first worker. It runs while a pool runs (``open_reaper``) or a group is
  watched, and is closed and reaped once neither holds: when the pools
  stop, or, for a ``ProcessSpawner`` used on its own, when its last worker
  is reaped.

The reaper is ``python -I -S`` on a short script: no trio, no site
packages, under 10 MB of memory. It runs in its own process group, in
``/``. Its own group keeps it out of what is aimed at the server's job: a
Ctrl-C, Ctrl-Z or Ctrl-\\ in the terminal, a ``kill -KILL -<group>`` from a
supervisor, any of which would otherwise take it down along with the
server it is there to clean up after. It also ignores SIGINT, SIGTERM and
SIGHUP, which reach every process of a systemd unit on stop (or a
``pkill``): it ends with its server, by end of file.
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import attrs
import trio

__all__ = ["MARK", "Reaper", "forget", "open_reaper", "watch"]

logger = logging.getLogger(__name__)

# The reaper's first argument: how `ps` and tests tell it apart.
MARK = "trio_runner-reaper"

# Run with -I -S, so only the interpreter's built-in and frozen modules.
_SCRIPT = """\
import os, signal
for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, signal.SIG_IGN)
groups = set()
rest = b""
while data := os.read(0, 65536):
    *lines, rest = (rest + data).split(b"\\n")
    for line in lines:
        if line[:1] == b"+":
            groups.add(int(line[1:]))
        else:
            groups.discard(int(line[1:]))
for pgid in groups:
    if pgid > 1:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
"""

# A reaper with nothing to kill exits within milliseconds of end of file;
# this bound only guards against one stopped with SIGSTOP.
_EXIT_WAIT = 2.0


@attrs.define(eq=False)
class _Helper:
    """One reaper process and the write end of its pipe."""

    process: subprocess.Popen[bytes]
    fd: int  # non-blocking; -1 once closed
    broken: bool = False  # given up on: nothing more is written

    @classmethod
    def start(cls) -> _Helper:
        """Start a reaper. Blocks for the fork and exec (well under 1 ms).

        Raises:
            OSError: it could not be started.
        """
        if not sys.executable:
            raise OSError("sys.executable is empty: no Python to run it with")
        read_end, write_end = os.pipe()  # both close-on-exec: workers get none
        try:
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _SCRIPT, MARK],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                cwd="/",
                process_group=0,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        os.set_blocking(write_end, False)
        return cls(process, write_end)

    def send(self, line: bytes) -> None:
        """Write one line, or give the reaper up if it cannot take it."""
        if self.broken:
            return
        assert len(line) <= select.PIPE_BUF  # so it is written whole or not at all
        try:
            os.write(self.fd, line)
        except BlockingIOError:
            self._give_up("stopped reading its pipe, which is full")
        except OSError as exc:  # EPIPE: it is gone
            code = self.process.poll()
            self._give_up(f"exited ({code})" if code is not None else str(exc))

    def _give_up(self, reason: str) -> None:
        self.broken = True
        # Killed, not left to read on: the list it has may be stale now.
        self.process.kill()
        logger.warning(
            "the reaper (pid %d) %s; PHP workers busy with a request will now "
            "outlive this server if it is killed with SIGKILL",
            self.process.pid,
            reason,
            extra={"pid": self.process.pid},
        )

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    async def aclose(self) -> None:
        """Close the pipe and reap the reaper. Shielded and bounded.

        Only once nothing is watched: if it does not exit in time, it is
        killed.
        """
        self.close()
        process = self.process
        with trio.CancelScope(shield=True):
            # A thread, not a pidfd: this is rare (pools stopping). _wait
            # bounds it, as a thread cannot be cancelled.
            await trio.to_thread.run_sync(_wait, process)
            if process.returncode is None:
                process.kill()
                await trio.to_thread.run_sync(_wait, process)
        if process.returncode is None:
            logger.error(
                "the reaper (pid %d) did not exit after SIGKILL",
                process.pid,
                extra={"pid": process.pid},
            )


def _wait(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=_EXIT_WAIT)
    except subprocess.TimeoutExpired:
        pass


class Reaper:
    """The watched process groups of one server and the reaper behind them.

    The server process has one, used through the module's ``watch``,
    ``forget`` and ``open_reaper``; tests make their own. Thread-safe: an
    embedding program may run servers in several threads, each its own
    trio run, and share the one reaper.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # never held across an await
        self._groups: set[int] = set()
        self._users = 0
        self._helper: _Helper | None = None
        self._failed = False  # the reaper could not start; warned already

    @property
    def pid(self) -> int | None:
        """The reaper's pid while it runs, else None."""
        helper = self._helper
        return None if helper is None or helper.broken else helper.process.pid

    def watch(self, pgid: int) -> None:
        """Have process group ``pgid`` killed if this server dies.

        Starts the reaper if it is not running. Never raises: a reaper that
        cannot start or broke is logged once, and the server goes on.
        """
        with self._lock:
            if self._helper is None and not self._failed:
                try:
                    self._helper = _Helper.start()
                except OSError as exc:
                    self._failed = True
                    logger.warning(
                        "cannot start the reaper (%s); PHP workers busy with a "
                        "request will outlive this server if it is killed with "
                        "SIGKILL",
                        exc,
                    )
                else:
                    logger.debug(
                        "reaper started (pid %d)",
                        self._helper.process.pid,
                        extra={"pid": self._helper.process.pid},
                    )
            self._groups.add(pgid)
            if self._helper is not None:
                self._helper.send(b"+%d\n" % pgid)

    async def forget(self, pgid: int) -> None:
        """``pgid`` has been killed (or its leader reaped): never kill it now.

        Once nothing is watched and no pool holds the reaper, it is closed
        and reaped (shielded, bounded). Unknown groups are ignored.
        """
        with self._lock:
            if pgid not in self._groups:
                return
            self._groups.discard(pgid)
            if self._helper is not None:
                self._helper.send(b"-%d\n" % pgid)
            helper = self._detach_if_idle()
        if helper is not None:
            await helper.aclose()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Keep the reaper (once started) running for the block.

        On the way out, by cancellation too, the reaper is closed and
        reaped if nothing is watched any more (shielded, bounded).
        """
        with self._lock:
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                helper = self._detach_if_idle()
            if helper is not None:
                await helper.aclose()

    def _detach_if_idle(self) -> _Helper | None:
        """The helper to close, if nothing needs it; called with the lock."""
        if self._groups or self._users:
            return None
        helper, self._helper = self._helper, None
        self._failed = False  # the next server may try again
        return helper

    def _after_fork_in_child(self) -> None:
        # A forked copy of the server (multiprocessing, say) must not keep
        # the pipe open, or the reaper would see no end of file while it
        # lives; nor does it own the workers it inherited the list of.
        self._lock = threading.Lock()
        self._groups = set()
        self._users = 0
        self._failed = False
        if self._helper is not None:
            self._helper.close()
            # Not this process's child to reap; kept, for a Popen collected
            # while its process runs warns.
            _inherited.append(self._helper)
            self._helper = None


_inherited: list[_Helper] = []


_reaper = Reaper()
os.register_at_fork(after_in_child=_reaper._after_fork_in_child)


def watch(pgid: int) -> None:
    """``Reaper.watch`` on this process's reaper; call once a worker spawned."""
    _reaper.watch(pgid)


async def forget(pgid: int) -> None:
    """``Reaper.forget`` on this process's reaper; call once a group is killed."""
    await _reaper.forget(pgid)


def open_reaper() -> AbstractAsyncContextManager[None]:
    """``Reaper.hold`` on this process's reaper: a pool runs inside it."""
    return _reaper.hold()
