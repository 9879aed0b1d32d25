"""``resetter.*``: replace a pool's workers, as RoadRunner's ``rr reset`` does.

``resetter.Reset("http")`` returns ``true`` once the reset is done: every
old worker has finished its request and stopped (or ``reset_timeout`` ran
out) and new ones serve. No request is dropped: those that arrive meanwhile
wait for the new workers. ``resetter.List`` names the pools.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from trio_runner.errors import RpcError
from trio_runner.pool import Pool
from trio_runner.rpc.registry import Method

__all__ = ["Resetter"]

logger = logging.getLogger(__name__)


class Resetter:
    """The resetter service over ``pools`` (a live mapping: name -> pool)."""

    def __init__(self, pools: Mapping[str, Pool]) -> None:
        self._pools = pools

    def methods(self) -> list[Method]:
        return [
            Method("resetter.Reset", str, self.reset),
            Method("resetter.List", bool, self.list),
        ]

    async def reset(self, name: str) -> bool:
        pool = self._pools.get(name)
        if pool is None:
            known = ", ".join(sorted(self._pools)) or "none"
            raise RpcError(f"no pool named {name!r} to reset (pools: {known})")
        logger.info("rpc: resetting pool %s", name, extra={"pool": name})
        await pool.reset()
        return True

    async def list(self, _: bool) -> list[str]:
        return sorted(self._pools)
