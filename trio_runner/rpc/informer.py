"""``informer.*``: what the pools' workers are doing, and adding or removing one.

=========================  ===========  ====================================
method                     argument     reply
=========================  ===========  ====================================
``informer.Workers``       pool name    ``{"workers": [...]}``; ``null`` for
                                        a name that is no pool
``informer.List``          (bool)       the pool names
``informer.AddWorker``     pool name    ``false`` once the new worker is up
``informer.RemoveWorker``  pool name    ``false`` once the worker stopped
=========================  ===========  ====================================

The worker objects carry RoadRunner's keys (PROTOCOL.md 5.2): ``pid``,
``status``, ``numExecs``, ``created`` (Unix ns), ``memoryUsage`` (RSS
bytes), ``CPUPercent``, ``command``, ``statusStr``. Add and remove reply
``false`` as RoadRunner does (it never sets the value); only an error
means failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trio_runner.errors import RpcError
from trio_runner.pool import Pool
from trio_runner.pool.stats import WorkerInfo
from trio_runner.rpc.registry import Method

__all__ = ["Informer", "worker_json"]


def worker_json(info: WorkerInfo) -> dict[str, Any]:
    """One worker as ``informer.Workers`` shows it."""
    return {
        "pid": info.pid,
        "status": info.status,
        "numExecs": info.execs,
        "created": info.created,
        "memoryUsage": info.memory,
        "CPUPercent": info.cpu_percent,
        "command": info.command,
        "statusStr": info.status_name,
    }


class Informer:
    """The informer service over ``pools`` (a live mapping: name -> pool)."""

    def __init__(self, pools: Mapping[str, Pool]) -> None:
        self._pools = pools

    def methods(self) -> list[Method]:
        return [
            Method("informer.Workers", str, self.workers),
            Method("informer.List", bool, self.list),
            Method("informer.AddWorker", str, self.add_worker),
            Method("informer.RemoveWorker", str, self.remove_worker),
        ]

    async def workers(self, name: str) -> dict[str, Any]:
        pool = self._pools.get(name)
        if pool is None:
            return {"workers": None}
        return {"workers": [worker_json(info) for info in pool.worker_info()]}

    async def list(self, _: bool) -> list[str]:
        return sorted(self._pools)

    async def add_worker(self, name: str) -> bool:
        await self._pool(name).add_worker()
        return False

    async def remove_worker(self, name: str) -> bool:
        await self._pool(name).remove_worker()
        return False

    def _pool(self, name: str) -> Pool:
        pool = self._pools.get(name)
        if pool is None:
            raise RpcError(f"plugin {name} does not support workers management")
        return pool
