"""``resetter.*``: replace a pool's workers, as RoadRunner's ``rr reset`` does.

``resetter.Reset("http")`` returns ``true`` once the reset is done: every
old worker has finished its request and stopped and new ones serve, all
within ``reset_timeout`` (else an error says so). No request is dropped
or kept waiting: the old workers serve until the new ones are ready, and
if the new ones cannot start at all, the error says why at once and the
old ones serve on. PHP may call it from inside a request: its own worker
is then not waited for, and leaves once that request is over.
``resetter.List`` names the pools.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import trio

from trio_runner.errors import RpcError, WorkerStartError
from trio_runner.pool import Pool
from trio_runner.rpc.peer import caller_pid
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
        with trio.move_on_after(pool.config.reset_timeout):
            try:
                await pool.reset(caller=await caller_pid())
            except WorkerStartError as exc:
                # With the worker's own words, which `reset` prints: the
                # operator who ran it may not be reading the server's log.
                raise RpcError(
                    f"pool {name}: the reset failed, the old workers serve on "
                    f"(the pool keeps trying): {exc}"
                ) from None
            await pool.wait_ready()
            return True
        failure = pool.start_failure
        why = f": {str(failure).splitlines()[0]}" if failure else ""
        raise RpcError(
            f"pool {name}: the reset did not finish within "
            f"{pool.config.reset_timeout:g} s (reset_timeout){why}"
        )

    async def list(self, _: bool) -> list[str]:
        return sorted(self._pools)
