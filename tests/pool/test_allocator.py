"""The allocator's hand-off: first come first served, and every way out of a
wait leaves the queue consistent."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_runner.errors import NoFreeWorkers, PoolClosed
from trio_runner.pool.allocator import Allocator


async def test_allocator_refuse_waiting_fails_current_waiters_only() -> None:
    allocator: Allocator[str] = Allocator()
    refused: list[str] = []

    async def wait() -> None:
        with pytest.raises(NoFreeWorkers) as info:
            await allocator.take()
        refused.append(str(info.value))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait)
        nursery.start_soon(wait)
        await trio.testing.wait_all_tasks_blocked()
        allocator.refuse_waiting("no worker can start")
    assert refused == ["no worker can start"] * 2
    assert allocator.waiting == 0

    allocator.put("worker")
    assert await allocator.take() == "worker", "later callers are served"


@pytest.mark.parametrize("wake", ["refuse_waiting", "close"])
async def test_allocator_waiter_cancelled_as_it_is_woken_leaves_cleanly(
    wake: str,
) -> None:
    allocator: Allocator[str] = Allocator()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(allocator.take)
        await trio.testing.wait_all_tasks_blocked()
        # Cancelled and woken in the same tick: the waiter is no longer
        # queued when it handles its cancellation.
        nursery.cancel_scope.cancel()
        if wake == "close":
            allocator.close()
        else:
            allocator.refuse_waiting("no worker can start")
    assert allocator.waiting == 0
    if wake == "close":
        with pytest.raises(PoolClosed):
            await allocator.take()


async def test_allocator_first_goes_to_the_head_of_the_queue() -> None:
    allocator: Allocator[str] = Allocator(max_waiting=1)
    served: dict[str, str] = {}

    async def wait(name: str, first: bool) -> None:
        served[name] = await allocator.take(first=first)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(wait, "queued", False)
        await trio.testing.wait_all_tasks_blocked()
        # Back for a second worker after the first one it got was dead: it
        # waits ahead of the others, even with the queue full.
        nursery.start_soon(wait, "returning", True)
        await trio.testing.wait_all_tasks_blocked()
        allocator.put("a")
        allocator.put("b")
    assert served == {"returning": "a", "queued": "b"}
