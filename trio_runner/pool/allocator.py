"""Handing free workers to waiting requests, first come first served.

Invariant: a worker is either in ``_free`` or handed to exactly one caller,
never both; and while anyone waits, ``_free`` is empty (a worker put back is
given to the oldest waiter directly, so nobody can overtake the queue).

``max_waiting`` bounds how many may wait, and one more is refused at once.
A wait ends by its deadline (``allocate_timeout``), kept by one timer task
(``keep_deadlines``) for every waiter: a cancel scope per wait would cost
each queued request more than the rest of its hand-off. Waiters park on
trio's low-level primitives for the same reason: a waiter that is
cancelled is taken off the queue, or passes on what it was just handed.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, NoReturn, TypeVar

import outcome
import trio

from trio_runner.errors import NoFreeWorkers, PoolClosed, QueueFull

__all__ = ["Allocator"]

T = TypeVar("T")


class _Waiter:
    __slots__ = ("deadline", "task")

    def __init__(self, deadline: float) -> None:
        self.task = trio.lowlevel.current_task()
        self.deadline = deadline


class Allocator(Generic[T]):
    """A FIFO hand-off of items (workers) to waiting tasks.

    Deadlines given to ``take`` hold only while ``keep_deadlines`` runs.
    """

    def __init__(self, *, max_waiting: int = 0) -> None:
        self._free: deque[T] = deque()
        self._waiting: deque[_Waiter] = deque()
        self._max_waiting = max_waiting
        self._closed = False
        # The timer's scope, while keep_deadlines runs: its deadline is at
        # or before every waiter's (earlier is harmless: the timer wakes,
        # finds nobody due, and sleeps until the next one).
        self._timer: trio.CancelScope | None = None
        # Items put to a waiter whose task has not taken them yet: in
        # neither list, though no longer waiting for one.
        self.handing = 0

    @property
    def free(self) -> int:
        return len(self._free)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def free_items(self) -> list[T]:
        return list(self._free)

    def put(self, item: T) -> None:
        """Make ``item`` available: to the oldest waiter, else to the free list."""
        if self._waiting:
            self.handing += 1
            trio.lowlevel.reschedule(self._waiting.popleft().task, outcome.Value(item))
        else:
            self._free.append(item)

    def take_nowait(self) -> T | None:
        if self._free and not self._waiting:
            return self._free.popleft()
        return None

    def remove(self, item: T) -> bool:
        """Take ``item`` out of the free list; False if it was not there."""
        try:
            self._free.remove(item)
        except ValueError:
            return False
        return True

    async def take(
        self, *, first: bool = False, deadline: float = math.inf
    ) -> T | None:
        """Wait for an item until ``deadline``; None if it passed first.

        ``first`` puts the caller at the head of the queue: for one that
        already waited its turn and got an item it could not use.

        Raises:
            QueueFull: ``max_waiting`` tasks are already waiting.
            PoolClosed: ``close`` was called.
            NoFreeWorkers: ``refuse_waiting`` was called while waiting.
        """
        if self._closed:
            raise PoolClosed("the pool is closed")
        if first and self._free:
            return self._free.popleft()
        item = self.take_nowait()
        if item is not None:
            return item
        if not first and self._max_waiting and len(self._waiting) >= self._max_waiting:
            raise QueueFull(
                f"{len(self._waiting)} requests are already waiting for a worker "
                "(http.pool.max_queue_size)"
            )
        waiter = _Waiter(deadline)
        if first:
            self._waiting.appendleft(waiter)
        else:
            self._waiting.append(waiter)
        timer = self._timer
        if timer is not None and deadline < timer.deadline:
            timer.deadline = deadline

        def abort(_: object) -> trio.lowlevel.Abort:
            # Still queued: whoever wakes a waiter takes it off first.
            self._waiting.remove(waiter)
            return trio.lowlevel.Abort.SUCCEEDED

        taken: T | None = await trio.lowlevel.wait_task_rescheduled(abort)
        if taken is not None:
            self.handing -= 1
            try:
                await trio.lowlevel.checkpoint_if_cancelled()
            except BaseException:
                # Cancelled in the tick the item came: the next waiter
                # gets it, not a request whose client already left.
                self.put(taken)
                raise
        return taken

    async def keep_deadlines(self) -> NoReturn:
        """End each wait whose deadline passed; run as long as the allocator."""
        while True:
            now = trio.current_time()
            due = [waiter for waiter in self._waiting if waiter.deadline <= now]
            for waiter in due:
                self._waiting.remove(waiter)
                trio.lowlevel.reschedule(waiter.task, outcome.Value(None))
            earliest = min((w.deadline for w in self._waiting), default=math.inf)
            with trio.CancelScope(deadline=earliest) as self._timer:
                await trio.sleep_forever()

    def refuse_waiting(self, reason: str) -> None:
        """Fail every current waiter with ``NoFreeWorkers(reason)``.

        For when no item is coming: waiting on would only time out.
        Later callers of ``take`` wait as usual.
        """
        while self._waiting:
            waiter = self._waiting.popleft()
            trio.lowlevel.reschedule(waiter.task, outcome.Error(NoFreeWorkers(reason)))

    def close(self) -> list[T]:
        """Refuse new waits, fail current waiters; return the free items."""
        self._closed = True
        while self._waiting:
            closed = PoolClosed("the pool closed while this request waited")
            trio.lowlevel.reschedule(
                self._waiting.popleft().task, outcome.Error(closed)
            )
        free = list(self._free)
        self._free.clear()
        return free
