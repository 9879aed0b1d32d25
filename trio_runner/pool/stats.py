"""Point-in-time figures about a pool, as frozen values."""

from __future__ import annotations

import attrs

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
    """

    name: str
    workers: int
    ready: int
    working: int
    waiting: int
    execs: int
