"""Ending worker processes: always killed or exited, always reaped.

Graceful stop (stop frame, then a grace period) lives in ``worker.py``; this
module is the last step every path goes through, and where the reaper
(``reaper.py``) is told a worker's group is gone.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING

import trio

from trio_runner.process import reaper

if TYPE_CHECKING:
    from trio_runner.process.spawn import WorkerProcess

__all__ = ["describe_exit", "kill", "kill_and_reap", "reap"]

logger = logging.getLogger(__name__)

# After SIGKILL the kernel reaps quickly; this bound only guards against a
# process stuck in uninterruptible sleep (a dead NFS mount, say).
_KILL_WAIT = 5.0


def kill(process: WorkerProcess) -> None:
    """SIGKILL ``process`` and whatever it started, if it is still running.

    Workers are started as leaders of their own process group, so killing
    the group also ends children a worker forked (a shell wrapper's PHP,
    say), which would otherwise outlive the server.
    """
    if process.returncode is not None:
        return
    try:
        if isinstance(process, trio.Process):
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass


async def kill_and_reap(process: WorkerProcess) -> None:
    """SIGKILL ``process`` (if still running) and wait for it to be reaped.

    Shielded and bounded: safe to call from cancelled code.
    """
    kill(process)
    await reap(process)


async def reap(process: WorkerProcess) -> None:
    """Wait for ``process`` to exit, shielded, for at most a few seconds.

    Once it is reaped its pid may be reused, so the reaper forgets its
    group; one that did not exit stays watched.
    """
    with trio.CancelScope(shield=True), trio.move_on_after(_KILL_WAIT):
        await process.wait()
    if process.returncode is not None:
        await reaper.forget(process.pid)
        return
    logger.error(
        "worker %d did not exit %.0f s after SIGKILL; it may be stuck in the kernel",
        process.pid,
        _KILL_WAIT,
        extra={"pid": process.pid},
    )


def describe_exit(returncode: int | None) -> str:
    """``exit code 3``, or ``killed by SIGKILL`` for a negative code."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name}"
    return f"exit code {returncode}"
