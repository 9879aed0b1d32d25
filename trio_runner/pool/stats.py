"""Point-in-time figures about a pool and its workers, as frozen values.

``WorkerInfo.status`` uses RoadRunner's worker state numbers and names as
the informer shows them (PROTOCOL.md 3.5), so RoadRunner's tools read
trio_runner's workers the same way. A worker on its way out because a
limit was reached shows that limit (``ttlReached``, ...) until it stops.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from trio_runner.config.kinds import FrozenMap

__all__ = ["STATUS_NAMES", "PoolStatistics", "WorkerInfo"]

# RoadRunner's worker states by number (informer ``status`` / ``statusStr``).
STATUS_NAMES = {
    0: "inactive",
    1: "ready",
    2: "working",
    3: "invalid",
    4: "stopping",
    5: "stopped",
    6: "destroyed",
    7: "maxJobsReached",
    8: "errored",
    9: "idleTTLReached",
    10: "ttlReached",
    11: "maxMemoryReached",
    12: "execTTLReached",
}


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


@attrs.frozen
class WorkerInfo:
    """One worker as ``Pool.worker_info()`` reports it.

    Attributes:
        pid: the worker's process id.
        status: RoadRunner's state number (see ``STATUS_NAMES``).
        execs: requests sent to it so far.
        created: when it started, in Unix nanoseconds.
        memory: its resident memory (RSS) in bytes; 0 if unreadable.
        cpu_percent: CPU time over its lifetime, as a percentage of one core.
        command: the command line it runs.
    """

    pid: int
    status: int
    execs: int
    created: int
    memory: int
    cpu_percent: float
    command: str

    @property
    def status_name(self) -> str:
        return STATUS_NAMES.get(self.status, "unknown")
