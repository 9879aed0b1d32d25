"""The allocator's hand-off: first come first served, and every way out of a
wait leaves the queue consistent."""

from __future__ import annotations

import math

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


async def test_allocator_deadlines_end_each_wait_on_time(autojump_clock) -> None:
    allocator: Allocator[str] = Allocator()
    ended: dict[str, tuple[str | None, float]] = {}

    async def wait(name: str, deadline: float) -> None:
        taken = await allocator.take(deadline=deadline)
        ended[name] = (taken, trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(allocator.keep_deadlines)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(wait, "late", 10.0)
        await trio.testing.wait_all_tasks_blocked()
        # Queued behind "late" with earlier deadlines: the timer, set for
        # 10, is brought forward.
        nursery.start_soon(wait, "early", 5.0)
        nursery.start_soon(wait, "patient", math.inf)
        nursery.start_soon(wait, "soonest", 1.0)
        await trio.sleep(0.5)
        assert allocator.waiting == 4, "nobody is due before 1"
        await trio.sleep(20)
        assert ended == {
            "soonest": (None, 1.0),
            "early": (None, 5.0),
            "late": (None, 10.0),
        }
        assert allocator.waiting == 1
        allocator.put("worker")
        await trio.testing.wait_all_tasks_blocked()
        assert ended["patient"] == ("worker", 20.5)
        nursery.cancel_scope.cancel()


async def test_allocator_cancelled_waiter_leaves_the_queue() -> None:
    allocator: Allocator[str] = Allocator()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(allocator.take)
        await trio.testing.wait_all_tasks_blocked()
        assert allocator.waiting == 1
        nursery.cancel_scope.cancel()
    assert allocator.waiting == 0
    allocator.put("worker")
    assert allocator.free == 1, "nobody waits for it any more"


async def test_allocator_waiter_cancelled_as_it_gets_an_item_passes_it_on() -> None:
    allocator: Allocator[str] = Allocator()
    served: dict[str, str] = {}

    async def wait(
        name: str, *, task_status: trio.TaskStatus[trio.CancelScope]
    ) -> None:
        with trio.CancelScope() as scope:
            task_status.started(scope)
            served[name] = await allocator.take()

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            leaving = await nursery.start(wait, "leaving")
            await nursery.start(wait, "next")
            await trio.testing.wait_all_tasks_blocked()
            allocator.put("worker")  # to "leaving", whose client goes this tick
            leaving.cancel()
    assert served == {"next": "worker"}
    assert allocator.waiting == allocator.free == 0
