"""Handing free workers to waiting requests, first come first served.

Invariant: a worker is either in ``_free`` or handed to exactly one caller,
never both; and while anyone waits, ``_free`` is empty (a worker put back is
given to the oldest waiter directly, so nobody can overtake the queue).

Waiting is bounded by the caller (``allocate_timeout``); ``max_queue_size``
bounds how many may wait, and one more is refused at once.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import trio

from trio_runner.errors import NoFreeWorkers, PoolClosed, QueueFull

__all__ = ["Allocator"]

T = TypeVar("T")


class _Waiter(Generic[T]):
    __slots__ = ("event", "item", "refusal")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.item: T | None = None
        self.refusal: str | None = None


class Allocator(Generic[T]):
    """A FIFO hand-off of items (workers) to waiting tasks."""

    def __init__(self, *, max_waiting: int = 0) -> None:
        self._free: deque[T] = deque()
        self._waiting: deque[_Waiter[T]] = deque()
        self._max_waiting = max_waiting
        self._closed = False

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
        while self._waiting:
            waiter = self._waiting.popleft()
            waiter.item = item
            waiter.event.set()
            return
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

    async def take(self, *, first: bool = False) -> T:
        """Wait for an item; the caller bounds the wait.

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
        waiter: _Waiter[T] = _Waiter()
        if first:
            self._waiting.appendleft(waiter)
        else:
            self._waiting.append(waiter)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.item is not None:
                # Handed an item in the same tick we were cancelled: pass it on.
                self.put(waiter.item)
            elif waiter in self._waiting:
                # (Not there if close or refuse_waiting woke it in that tick.)
                self._waiting.remove(waiter)
            raise
        if waiter.refusal is not None:
            raise NoFreeWorkers(waiter.refusal)
        if waiter.item is None:
            raise PoolClosed("the pool closed while this request waited")
        return waiter.item

    def refuse_waiting(self, reason: str) -> None:
        """Fail every current waiter with ``NoFreeWorkers(reason)``.

        For when no item is coming: waiting on would only time out.
        Later callers of ``take`` wait as usual.
        """
        while self._waiting:
            waiter = self._waiting.popleft()
            waiter.refusal = reason
            waiter.event.set()

    def close(self) -> list[T]:
        """Refuse new waits, fail current waiters; return the free items."""
        self._closed = True
        while self._waiting:
            self._waiting.popleft().event.set()
        free = list(self._free)
        self._free.clear()
        return free
