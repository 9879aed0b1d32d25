"""The supervisor: every ``watch_tick``, mark workers past a soft limit.

Soft limits (``[<front>.pool.supervisor]``):

- ``ttl``: a worker older than this is replaced;
- ``idle_ttl``: a worker idle (since its last request began) this long is
  replaced, unless it never had a request: replacing a fresh worker with
  another would only churn;
- ``max_worker_memory``: a worker whose resident memory (RSS, the PHP
  process only, in MB) reaches this is replaced.

The supervisor only *marks* (``Pool.retire``): the worker's slot starts a
replacement at once and the old worker serves on until it is ready, then
leaves when idle. ``exec_ttl`` is hard and lives on the exchange path
instead.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import psutil
import trio

from trio_runner.process.worker import Retirement, Worker, WorkerState

if TYPE_CHECKING:
    from trio_runner.pool.pool import Pool

__all__ = ["CpuProbe", "MemoryProbe", "process_cpu_percent", "process_rss", "supervise"]

logger = logging.getLogger(__name__)

_MB = 1024 * 1024

MemoryProbe = Callable[[Worker], int | None]
CpuProbe = Callable[[Worker], float | None]


def process_rss(worker: Worker) -> int | None:
    """The worker process's resident memory in bytes; None if it is gone."""
    try:
        return int(psutil.Process(worker.pid).memory_info().rss)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def process_cpu_percent(worker: Worker) -> float | None:
    """CPU time over the process's lifetime, in percent of one core.

    What RoadRunner's informer shows (gopsutil's ``CPUPercent``): not a
    recent rate, an average since start. None if the process is gone.
    """
    try:
        process = psutil.Process(worker.pid)
        times = process.cpu_times()
        lived = time.time() - process.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if lived <= 0:
        return 0.0
    return 100.0 * (times.user + times.system) / lived


async def supervise(pool: Pool, *, memory: MemoryProbe = process_rss) -> None:
    """Check every worker of ``pool`` each ``watch_tick``; runs until cancelled."""
    limits = pool.config.supervisor
    ttl = limits.ttl or math.inf
    idle_ttl = limits.idle_ttl or math.inf
    max_memory = limits.max_worker_memory * _MB or math.inf
    while True:
        await trio.sleep(limits.watch_tick)
        now = trio.current_time()
        for worker in pool.workers:
            if worker.marked or worker.state is WorkerState.STOPPED:
                continue
            reason = None
            detail = ""
            if now - worker.started_at >= ttl:
                reason, detail = (
                    Retirement.TTL,
                    f"lived {now - worker.started_at:.0f} s",
                )
            elif (
                worker.state is WorkerState.READY
                and worker.execs  # a fresh one has nothing to let go of
                and now - worker.last_exec >= idle_ttl
            ):
                reason, detail = (
                    Retirement.IDLE_TTL,
                    f"idle {now - worker.last_exec:.0f} s",
                )
            elif max_memory != math.inf:
                rss = memory(worker)
                if rss is not None and rss >= max_memory:
                    reason, detail = Retirement.MEMORY, f"uses {rss / _MB:.0f} MB"
            if reason is not None:
                logger.info(
                    "pool %s: worker %d %s (%s); replacing it%s",
                    pool.name,
                    worker.pid,
                    detail,
                    reason.value,
                    "" if worker.state is WorkerState.READY else " after its request",
                    extra={
                        "pool": pool.name,
                        "pid": worker.pid,
                        "reason": reason.value,
                    },
                )
                pool.retire(worker, reason)
