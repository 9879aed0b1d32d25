"""Ending worker processes: always killed or exited, always reaped.

Graceful stop (stop frame, then a grace period) lives in ``worker.py``; this
module is the last step every path goes through. Killing the rest of a
worker's process group, and telling the reaper (``reaper.py``) it is gone,
happen in ``GroupLeader.wait`` (``group.py``), just before the reap.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from trio_runner.process.spawn import WorkerProcess

__all__ = ["describe_exit", "kill", "kill_and_reap", "reap"]

logger = logging.getLogger(__name__)

# After SIGKILL the kernel reaps quickly; this bound only guards against a
# process stuck in uninterruptible sleep (a dead NFS mount, say).
_KILL_WAIT = 5.0


def kill(process: WorkerProcess) -> None:
    """SIGKILL ``process`` and whatever it started, if it is still running.

    A spawned worker (a ``GroupLeader``) is killed with its process group,
    so children it forked (a shell wrapper's PHP, say) go too.
    """
    if process.returncode is None:
        process.kill()


async def kill_and_reap(process: WorkerProcess) -> None:
    """SIGKILL ``process`` (if still running) and wait for it to be reaped.

    Shielded and bounded: safe to call from cancelled code.
    """
    kill(process)
    await reap(process)


async def reap(process: WorkerProcess) -> None:
    """Wait for ``process`` to exit, shielded, for at most a few seconds.

    A worker's ``wait`` kills what is left of its group before it reaps
    the leader. One that did not exit stays watched by the reaper.
    """
    with trio.CancelScope(shield=True), trio.move_on_after(_KILL_WAIT):
        await process.wait()
    if process.returncode is not None:
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
