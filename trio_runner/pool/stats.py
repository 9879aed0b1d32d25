"""Point-in-time figures about a pool, as frozen values."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from trio_runner.config.kinds import FrozenMap

__all__ = ["PoolStatistics"]


@attrs.frozen
class PoolStatistics:
    """What ``Pool.statistics()`` returns.

    Attributes:
        name: the pool's name.
        workers: live worker processes, including ones on their way out.
        ready: workers idle and available.
        working: workers running a request.
        waiting: requests waiting for a free worker.
        execs: requests the pool has sent to workers since it started.
        no_free_workers: requests refused since the pool started because no
            worker was free in time, the wait queue was full, or no worker
            could start (``NoFreeWorkers`` and ``QueueFull``).
        restarts: workers replaced since the pool started, by why they left
            (the values of ``process.worker.Retirement``: ``"max_jobs"``,
            ``"crashed"``, ...); shutdown is not counted.
        start_failure: why the latest worker start failed, while starting
            keeps failing; None once a worker started.
    """

    name: str
    workers: int
    ready: int
    working: int
    waiting: int
    execs: int
    no_free_workers: int = 0
    restarts: Mapping[str, int] = attrs.field(
        factory=FrozenMap, converter=FrozenMap[int]
    )
    start_failure: str | None = None
