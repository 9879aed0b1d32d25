"""A pool of PHP workers: the one place that decides who runs a request.

The pool keeps ``num_workers`` *slots*. Each slot is a task that starts a
worker, offers it to the allocator, waits until the worker is marked to
leave, and starts its replacement right away. What the old worker does
meanwhile depends on why it leaves:

- a soft limit (ttl, idle_ttl, max_worker_memory) only marks it: it keeps
  serving until its replacement is ready, then leaves once idle. Capacity
  never dips, and if replacements cannot start (a broken deploy), the old
  workers carry on until they can;
- max_jobs, a reset, shutdown and debug mode *let it go*: it takes no new
  request and stops as soon as its current one ends;
- a crash, exec_ttl or an exit: it is already gone.

No running request is ever cut short by anything but exec_ttl.

The number of slots changes only through ``add_worker`` (one more slot,
started at once) and ``remove_worker`` (one worker is let go as for a
reset, and its slot ends with it instead of replacing it). The last
worker is never removed.

A front asks for one exchange with ``exec`` or ``stream``. What a failure
means (PROTOCOL.md 3.8):

=====================  =============================  ======================
what happened          the worker                     the request
=====================  =============================  ======================
error frame            back to the pool               ``SoftError``
EOF, I/O, bad frame    killed and replaced            ``WorkerCrashed``
exec_ttl expired       killed and replaced            ``WorkerTimeout``
worker asked to stop   stopped and replaced           re-run on another one
write to a dead one    (already gone)                 re-run on another one
caller cancelled       drained in the background,     (the caller is gone)
                       then back to the pool
=====================  =============================  ======================

This module is past 600 lines because the pool is one state machine:
slots, the queue, retirement, resets and the exchange (``_Exchange``,
``ResponseChunks``) all read and change the same workers and events, and
split apart each part would reach into the others' state.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import random
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager

import attrs
import trio

from trio_runner.config.model import PoolConfig
from trio_runner.errors import (
    NoFreeWorkers,
    PoolClosed,
    PoolSizeError,
    SoftError,
    WorkerCrashed,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.pool.allocator import Allocator
from trio_runner.pool.stats import PoolStatistics, WorkerInfo
from trio_runner.pool.supervisor import (
    CpuProbe,
    MemoryProbe,
    process_cpu_percent,
    process_rss,
    supervise,
)
from trio_runner.process import reaper
from trio_runner.process.spawn import Spawner
from trio_runner.process.terminate import describe_exit
from trio_runner.process.worker import Retirement, Worker, WorkerState
from trio_runner.protocol import ErrorReply, Payload, Response, StopRequest

__all__ = ["Pool", "ResponseChunks"]

logger = logging.getLogger(__name__)

_SERVING = frozenset({WorkerState.READY, WorkerState.WORKING})

# As many workers as RoadRunner allows in one pool (num_workers).
_MAX_WORKERS = 500

# RoadRunner's state numbers (pool/stats.py) for a worker still serving
# after a limit marked it; otherwise ready 1, working 2, stopping 4,
# stopped 5.
_MARKED_STATUS = {
    Retirement.ASKED: 3,  # invalid
    Retirement.MAX_JOBS: 7,
    Retirement.CRASHED: 8,  # errored
    Retirement.IDLE_TTL: 9,
    Retirement.TTL: 10,
    Retirement.MEMORY: 11,
    Retirement.EXEC_TTL: 12,
    Retirement.EXITED: 5,
}

# Backoff between failed spawns once the pool is running.
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 10.0


class Pool:
    """Workers for one front (``mode``), started and supervised together.

    Use ``run`` as a service (``await nursery.start(pool.run)`` returns once
    every worker has handshaken) and ``aclose`` to stop it gracefully; or
    ``trio_runner.open_pool`` for both in one ``async with``.

    Args:
        name: the pool's name in logs and the informer (``http``, ...).
        spawner: starts one worker process and handshakes with it.
        config: the ``[<front>.pool]`` section.
        memory: reads a worker's RSS, for ``supervisor.max_worker_memory``
            and ``worker_info``.
        cpu: reads a worker's lifetime CPU percentage, for ``worker_info``.
    """

    def __init__(
        self,
        name: str,
        spawner: Spawner,
        config: PoolConfig,
        *,
        memory: MemoryProbe = process_rss,
        cpu: CpuProbe = process_cpu_percent,
    ) -> None:
        self.name = name
        self.config = config
        self._spawner = spawner
        self._memory = memory
        self._cpu = cpu
        self._slots = 0  # slots that keep a worker; add/remove_worker change it
        self._allocator: Allocator[Worker] = Allocator(
            max_waiting=config.max_queue_size
        )
        self._workers: set[Worker] = set()
        self._nursery: trio.Nursery | None = None
        self._closing = False  # no more requests nor workers (_stop_taking)
        self._aclosing = False
        self._cut = False  # cut_in_flight was called
        self._closed = trio.Event()
        self._busy = 0  # exchanges in flight
        # Set once _busy drops to 0; made only by aclose, which waits for
        # that, so that going busy costs no event per request.
        self._idle: trio.Event | None = None
        self._execs = 0
        self._start_failure: WorkerStartError | None = None
        self._failing_slots = 0  # of them, those whose last start failed
        # For statistics(): refusals, and replacements by reason.
        self._no_free_workers = 0
        self._restarts: collections.Counter[str] = collections.Counter()
        self._offered = trio.Event()  # set (and replaced) when a worker joins
        self._start_failed = trio.Event()  # set (and replaced) when one fails
        self._generation = 0  # resets so far: a worker started before one goes
        # Process groups of workers waiting on a reset they asked for (from
        # PHP, inside a request), and an event set (and replaced) as it changes.
        self._resetters: set[int] = set()
        self._resetters_changed = trio.Event()

    # -- public ------------------------------------------------------------

    @property
    def workers(self) -> list[Worker]:
        """Live workers, oldest first (including ones on their way out)."""
        return sorted(self._workers, key=lambda worker: worker.created)

    def worker_info(self) -> list[WorkerInfo]:
        """Every live worker as the informer shows it, oldest first."""
        command = self._spawner.command
        return [
            WorkerInfo(
                pid=worker.pid,
                status=_status(worker),
                execs=worker.execs,
                created=int(worker.created * 1e9),
                memory=self._memory(worker) or 0,
                cpu_percent=self._cpu(worker) or 0.0,
                command=command,
            )
            for worker in self.workers
        ]

    def statistics(self) -> PoolStatistics:
        states = [worker.state for worker in self._workers]
        return PoolStatistics(
            name=self.name,
            workers=len(states),
            ready=states.count(WorkerState.READY),
            working=states.count(WorkerState.WORKING),
            waiting=self._allocator.waiting,
            execs=self._execs,
            no_free_workers=self._no_free_workers,
            restarts=self._restarts,
            start_failure=(
                None if self._start_failure is None else str(self._start_failure)
            ),
        )

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the workers, report ready, and supervise until closed.

        Raises:
            WorkerStartError: a worker could not start; the message quotes
                its output. Every other worker has been stopped.

        On cancellation every worker is killed and reaped before this returns.
        While it runs, the server's reaper (``process/reaper.py``) is kept
        running for the workers' sake; the last pool to stop closes it.
        """
        failure: WorkerStartError | None = None
        # Outside the nursery, so that the reaper is closed only once every
        # worker of this pool has been reaped.
        async with reaper.open_reaper(), trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._allocator.keep_deadlines)
            failure = await self._start_slots(self._slot_count())
            if failure is None:
                pids = ", ".join(str(worker.pid) for worker in self.workers)
                logger.info(
                    "pool %s ready: %d workers (pids %s)",
                    self.name,
                    len(self._workers),
                    pids or "-, debug mode spawns one per request",
                    extra={"pool": self.name},
                )
                task_status.started()
                if self._supervised():
                    nursery.start_soon(
                        functools.partial(supervise, self, memory=self._memory)
                    )
                try:
                    await self._closed.wait()
                finally:
                    # Cancelled (a forced stop): requests waiting for a
                    # worker are answered now (PoolClosed), not left to
                    # wait for one that never comes.
                    self._stop_taking()
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure

    async def aclose(self) -> None:
        """Stop gracefully: wait for in-flight requests, then stop workers.

        Requests still waiting for a worker fail with ``PoolClosed``. Waiting
        for in-flight requests is bounded by ``destroy_timeout``; after it,
        workers are stopped anyway. Each worker gets the stop frame and
        ``destroy_timeout`` seconds before SIGKILL.
        """
        if self._aclosing:
            await self._closed.wait()
            return
        self._aclosing = True
        self._stop_taking()
        with trio.move_on_after(self.config.destroy_timeout):
            if self._busy:
                self._idle = trio.Event()
                await self._idle.wait()
            else:
                await trio.lowlevel.checkpoint()  # as waiting on a set event
        for worker in list(self._workers):
            self._dismiss(worker, Retirement.SHUTDOWN)
        with trio.move_on_after(self.config.destroy_timeout + 1):
            for worker in list(self._workers):
                await worker.wait_stopped()
        self._closed.set()

    async def exec(self, payload: Payload) -> Payload:
        """Run one request and return the whole response.

        A streamed response is collected: the context of its first chunk and
        all bodies joined.

        Raises:
            SoftError, WorkerCrashed, WorkerTimeout, NoFreeWorkers,
            QueueFull, PoolClosed, WorkerStartError (debug mode).
        """
        async with self.stream(payload) as chunks:
            first: Payload | None = None
            bodies = []
            async for chunk in chunks:
                first = first or chunk
                bodies.append(chunk.body)
        assert first is not None
        if len(bodies) == 1:
            return first
        return attrs.evolve(first, body=b"".join(bodies))

    def stream(
        self, payload: Payload, *, idempotent: bool = False
    ) -> AbstractAsyncContextManager[ResponseChunks]:
        """Run one request; iterate over its response chunks.

        A plain response is one chunk; a streamed one is several, each with
        the full context (PROTOCOL.md 4.7). The worker goes back to the pool
        as soon as the last frame is read. Leaving the block early cancels
        the stream: the worker is told to stop and drained in the
        background, then reused.

        ``idempotent`` says the request may run twice (an HTTP GET): if the
        worker's relay closes before it answered anything (it died or was
        killed), the request is re-run once on another worker instead of
        failing, as nginx retries idempotent requests on the next upstream.
        Once only: a request that kills every worker it meets costs two
        workers, not the pool. A worker that broke the protocol (stray
        stdout) did run the request: that is never re-run.

        Raises:
            the same errors as ``exec``; mid-stream, SoftError,
            WorkerCrashed or WorkerTimeout from the iteration.
        """
        return _Exchange(self, payload, idempotent)

    async def reset(self, *, caller: int | None = None) -> None:
        """Replace every worker, the new ones first; no request waits or fails.

        As for a soft limit, each worker serves on until its replacement is
        ready, then leaves once its request (if any) is over; a worker that
        was still starting when the reset came is replaced as soon as it is
        up. Returns once every old worker has stopped, or after
        ``reset_timeout``; except the worker running ``caller`` (a pid: the
        worker's, or one in its process group), when PHP resets its own pool
        from inside a request: its request cannot end before this returns,
        so it is not waited for; it takes no new request, and leaves once
        that one is over.

        Raises:
            WorkerStartError: no replacement can start (a broken deploy, a
                worker script that no longer boots). The old workers serve
                on; the pool keeps trying, with backoff, and completes the
                reset by itself once a replacement starts.
        """
        self._generation += 1
        old = list(self._workers)
        logger.info(
            "pool %s: resetting %d worker(s)",
            self.name,
            len(old),
            extra={"pool": self.name},
        )
        group = _process_group(caller)
        if group is not None:
            self._calling_reset(group, True)
        try:
            for worker in old:
                # The caller's worker is busy with the request that asked:
                # it takes no new one, and leaves when that one is over.
                self.retire(worker, Retirement.RESET, now=worker.pid == group)
            failure: WorkerStartError | None = None
            with trio.move_on_after(self.config.reset_timeout):
                async with trio.open_nursery() as waiting:

                    async def all_stopped() -> None:
                        for worker in old:
                            await self._stopped_or_resetting(worker)
                        waiting.cancel_scope.cancel()

                    waiting.start_soon(all_stopped)
                    while not self._cannot_replace():
                        await self._start_failed.wait()
                    failure = self._start_failure
                    waiting.cancel_scope.cancel()
        finally:
            if group is not None:
                self._calling_reset(group, False)
        if failure is not None:
            raise failure

    def _calling_reset(self, group: int, calling: bool) -> None:
        """The worker ``group`` waits on a reset it asked for, or no more."""
        if calling:
            self._resetters.add(group)
        else:
            self._resetters.discard(group)
        self._resetters_changed.set()
        self._resetters_changed = trio.Event()

    async def _stopped_or_resetting(self, worker: Worker) -> None:
        """Return once ``worker`` has stopped, or waits on a reset itself.

        Two workers that reset the pool at once each wait for the other's
        request to end, which waits on its reset: neither is waited for.
        """
        stopped = False
        while not stopped and worker.pid not in self._resetters:
            changed = self._resetters_changed
            async with trio.open_nursery() as either:

                async def wait_stopped() -> None:
                    nonlocal stopped
                    await worker.wait_stopped()
                    stopped = True
                    either.cancel_scope.cancel()

                either.start_soon(wait_stopped)
                await changed.wait()
                either.cancel_scope.cancel()

    async def wait_ready(self) -> None:
        """Return once every slot has a worker that takes requests.

        After ``reset`` that means the new workers serve. While workers
        cannot start this waits: the caller bounds it.
        """
        while self._usable() < self._slots:
            await self._offered.wait()

    @property
    def start_failure(self) -> WorkerStartError | None:
        """Why the last worker start failed, while starts keep failing."""
        return self._start_failure

    async def add_worker(self) -> Worker:
        """Grow the pool by one worker; return it once it has handshaken.

        The new slot keeps a worker like the others: it is replaced when it
        leaves, until the pool closes or ``remove_worker`` takes it.

        Raises:
            PoolClosed: the pool is not running.
            PoolSizeError: debug mode (no resident workers) or already
                500 workers.
            WorkerStartError: the worker could not start; the pool is as
                it was.
        """
        self._check_resizable()
        if self._slots >= _MAX_WORKERS:
            raise PoolSizeError(
                f"pool {self.name} has {self._slots} workers, the most a pool may have"
            )
        assert self._nursery is not None
        worker: Worker = await self._nursery.start(self._keep_slot)
        logger.info(
            "pool %s: added worker %d (%d workers now)",
            self.name,
            worker.pid,
            self._slots,
            extra={"pool": self.name, "pid": worker.pid},
        )
        return worker

    async def remove_worker(self) -> Worker:
        """Shrink the pool by one worker; return it once it has stopped.

        An idle worker is preferred. A busy one finishes its request first
        and takes no new one; nothing in flight is dropped. Cancelling the
        wait does not undo the removal.

        Raises:
            PoolClosed: the pool is not running.
            PoolSizeError: it is the last worker, debug mode, or every
                worker is already on its way out.
        """
        self._check_resizable()
        if self._slots <= 1:
            raise PoolSizeError(
                f"pool {self.name} has {self._slots} worker left; refusing to "
                "remove the last one (stop the server instead)"
            )
        candidates = [
            worker
            for worker in self.workers
            if not worker.marked and not worker.let_go and worker.state in _SERVING
        ]
        if not candidates:
            raise PoolSizeError(
                f"no worker of pool {self.name} can be removed now: every one "
                "is already being replaced; try again"
            )
        idle = [w for w in candidates if w.state is WorkerState.READY]
        worker = (idle or candidates)[-1]  # the newest: older ones are warm
        self._slots -= 1
        logger.info(
            "pool %s: removing worker %d%s (%d workers left)",
            self.name,
            worker.pid,
            "" if worker.state is WorkerState.READY else " after its request",
            self._slots,
            extra={"pool": self.name, "pid": worker.pid, "reason": "removed"},
        )
        worker.removed = True  # its slot ends with it, whatever ends it
        self.retire(worker, Retirement.REMOVED, now=True)
        await worker.wait_stopped()
        return worker

    def _check_resizable(self) -> None:
        if self._nursery is None or self._closing:
            raise PoolClosed(f"pool {self.name} is not running")
        if self.config.debug:
            raise PoolSizeError(
                f"pool {self.name} is in debug mode: it starts a worker per "
                "request and keeps none to add or remove"
            )

    def retire(self, worker: Worker, reason: Retirement, *, now: bool = False) -> None:
        """Have ``worker`` replaced; a request it is running always finishes.

        By default it keeps serving until its replacement is ready; with
        ``now`` it takes no new request.
        """
        worker.mark(reason)
        if now:
            self._let_go(worker)

    def cut_in_flight(self) -> int:
        """End every request now, for a stop that cannot wait any longer.

        The workers running one are killed: those requests end with
        ``WorkerCutAtStop``, and the ones still waiting for a worker with
        ``PoolClosed``; the HTTP bridge answers both 503 "shutting down" (a
        client gets an answer, not a cut connection). No worker is started
        after this, and none takes a request. Returns how many requests
        were ended. ``aclose`` is still what stops the pool.
        """
        self._cut = True
        waiting = self._allocator.waiting + self._allocator.handing
        self._stop_taking()
        working = [w for w in self._workers if w.state is WorkerState.WORKING]
        for worker in working:
            worker.kill(Retirement.SHUTDOWN)
        return len(working) + waiting

    def _stop_taking(self) -> None:
        """No more requests, no more workers: refuse who waits, dismiss the free."""
        self._closing = True
        for worker in self._allocator.close():
            self._dismiss(worker, Retirement.SHUTDOWN)

    # -- slots and workers ---------------------------------------------------

    def _supervised(self) -> bool:
        limits = self.config.supervisor
        return bool(limits.ttl or limits.idle_ttl or limits.max_worker_memory)

    def _slot_count(self) -> int:
        return 0 if self.config.debug else self.config.num_workers

    async def _start_slots(self, count: int) -> WorkerStartError | None:
        """Start ``count`` slots in parallel; return the first failure."""
        assert self._nursery is not None
        nursery = self._nursery
        failures: list[WorkerStartError] = []

        async def start_one() -> None:
            try:
                await nursery.start(self._keep_slot)
            except WorkerStartError as exc:
                failures.append(exc)

        async with trio.open_nursery() as starters:
            for _ in range(count):
                starters.start_soon(start_one)
        return failures[0] if failures else None

    async def _keep_slot(
        self, *, task_status: trio.TaskStatus[Worker] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep one worker alive in this slot until the pool closes.

        Reports its first worker as started. Ends early when its worker was
        removed (``remove_worker``).
        """
        previous: Worker | None = None
        backoff = _Backoff()
        started = False
        while not self._closing:
            worker = await self._start_with_backoff(backoff, raise_first=not started)
            if not started:
                started = True
                self._slots += 1
                task_status.started(worker)
            self._offer(worker)
            if previous is not None:
                self._let_go(previous)  # its replacement serves now
            await worker.wait_leaving()
            self._log_leaving(worker)
            if worker.removed:
                return  # remove_worker counted the slot out already
            if not _died_unused(worker):
                backoff.reset()
            elif backoff.failures == 0:
                backoff.failures = 1  # the first one is replaced at once
            else:
                # Handshaken, then dead before it was given a request, again:
                # as good as a failed start. Without a pause a script that
                # exits once booted would be respawned in a tight loop.
                what = "a worker died before it was given a request"
                await self._pause(backoff, what, f"pid {worker.pid}")
            previous = worker

    async def _start_with_backoff(
        self, backoff: _Backoff, *, raise_first: bool
    ) -> Worker:
        """Start a worker, retrying with backoff while starting fails."""
        failing = False
        failures = 0
        try:
            while True:
                try:
                    worker = await self._start_worker()
                except WorkerStartError as exc:
                    if raise_first:
                        raise
                    self._start_failure = exc
                    failures += 1
                    if not failing:
                        failing = True
                        self._failing_slots += 1
                    self._start_failed.set()
                    self._start_failed = trio.Event()
                    if self._cannot_serve():
                        # Requests that began waiting before this failure
                        # would otherwise wait allocate_timeout for a 503.
                        self._allocator.refuse_waiting(self._cannot_start())
                    await self._pause(backoff, "could not start a worker", exc.summary)
                    continue
                if self._failing_slots == int(failing):  # no other slot fails
                    self._start_failure = None
                if failures:
                    # Said, as the failures were: a reset that failed, or
                    # a pool that could not replace its workers, completes.
                    logger.info(
                        "pool %s: worker %d started, after %d failed start(s)",
                        self.name,
                        worker.pid,
                        failures,
                        extra={"pool": self.name, "pid": worker.pid},
                    )
                return worker
        finally:
            if failing:
                self._failing_slots -= 1

    async def _pause(self, backoff: _Backoff, what: str, detail: object) -> None:
        delay = backoff.next_delay()
        logger.error(
            "pool %s: %s (retrying in %.1f s): %s",
            self.name,
            what,
            delay,
            detail,
            extra={"pool": self.name},
        )
        await trio.sleep(delay)

    async def _start_worker(self) -> Worker:
        assert self._nursery is not None
        generation = self._generation
        began = trio.current_time()
        spawned = await self._spawner.spawn(
            task_nursery=self._nursery, timeout=self.config.allocate_timeout
        )
        worker = Worker(spawned)
        logger.debug(
            "pool %s: worker %d started in %.0f ms",
            self.name,
            worker.pid,
            (trio.current_time() - began) * 1000,
            extra={"pool": self.name, "pid": worker.pid},
        )
        if generation != self._generation:
            # It booted the code from before a reset that came meanwhile.
            worker.mark(Retirement.RESET)
        if self.config.max_jobs:
            worker.exec_limit = exec_limit(self.config.max_jobs)
        self._workers.add(worker)
        self._nursery.start_soon(self._run_worker, worker)
        return worker

    async def _run_worker(self, worker: Worker) -> None:
        try:
            await worker.run(grace=self.config.destroy_timeout)
        finally:
            self._workers.discard(worker)
            self._allocator.remove(worker)
            reason = worker.retirement or Retirement.SHUTDOWN
            logger.debug(
                "pool %s: worker %d stopped (%s) after %d request(s), %s",
                self.name,
                worker.pid,
                reason.value,
                worker.execs,
                describe_exit(worker.process.returncode),
                extra={"pool": self.name, "pid": worker.pid, "reason": reason.value},
            )
            if not self._closing:
                # Counted once it is gone: a worker marked for its ttl may
                # still crash, and then that is why it left.
                self._restarts[reason.value] += 1

    def _offer(self, worker: Worker) -> None:
        if self._closing or worker.let_go or worker.state is not WorkerState.READY:
            self._dismiss(worker, Retirement.SHUTDOWN)
        else:
            self._allocator.put(worker)
        self._offered.set()
        self._offered = trio.Event()

    def _dismiss(self, worker: Worker, reason: Retirement) -> None:
        worker.mark(reason)
        worker.dismiss()

    def _let_go(self, worker: Worker) -> None:
        """No new request for ``worker``: it stops now if idle, else after."""
        worker.let_go = True
        if self._allocator.remove(worker):
            worker.dismiss()

    def _log_leaving(self, worker: Worker) -> None:
        reason = worker.retirement
        if reason is Retirement.EXITED:
            logger.warning(
                "pool %s: worker %d exited unexpectedly (%s); starting a replacement",
                self.name,
                worker.pid,
                describe_exit(worker.process.returncode),
                extra={"pool": self.name, "pid": worker.pid, "reason": reason.value},
            )
        elif reason is Retirement.MAX_JOBS:
            # Other reasons are logged where they are decided.
            logger.info(
                "pool %s: replacing worker %d (%s)",
                self.name,
                worker.pid,
                reason.value,
                extra={"pool": self.name, "pid": worker.pid, "reason": reason.value},
            )

    # -- exchanges -----------------------------------------------------------

    async def _acquire(self, *, first: bool = False) -> Worker:
        if self._closing:
            raise PoolClosed(f"pool {self.name} is stopping")
        if self.config.debug:
            worker = await self._start_worker()
            worker.mark(Retirement.DEBUG)
            worker.let_go = True
        else:
            try:
                worker = await self._take_live(first=first)
            except NoFreeWorkers:  # QueueFull too
                self._no_free_workers += 1
                raise
            if self._cut:
                # Handed its worker just before cut_in_flight, too late to
                # be refused with the waiting and too early to be killed
                # with the working: ended here, as they were.
                self._dismiss(worker, Retirement.SHUTDOWN)
                raise PoolClosed(f"pool {self.name} is stopping")
        worker.acquire()
        limit = worker.exec_limit
        if limit and worker.execs + 1 >= limit:
            # Its last request: have the replacement start now, so that it
            # is ready (or nearly) when this worker leaves after it.
            worker.mark(Retirement.MAX_JOBS)
        self._busy += 1
        return worker

    async def _take_live(self, *, first: bool) -> Worker:
        """The next free worker that is still alive, within allocate_timeout.

        ``first``: this request already had its turn (its worker asked to
        stop, or died) and goes to the head of the queue.
        """
        timeout = self.config.allocate_timeout
        # The clock is read when this request first has to wait, not when
        # a worker is free at once (most requests). What comes before that
        # wait returns at once (at most an idle worker's stray output is
        # read, which poll said is there), so the deadline is the same.
        deadline: float | None = None
        while True:
            taken = self._allocator.take_nowait()
            if taken is None and self._cannot_serve():
                # Every slot is failing to start a worker: waiting for one
                # would only make the client wait allocate_timeout for a 503.
                raise NoFreeWorkers(self._cannot_start())
            if taken is None:
                if deadline is None:
                    deadline = trio.current_time() + timeout
                taken = await self._allocator.take(first=first, deadline=deadline)
                if taken is None:
                    raise NoFreeWorkers(
                        f"no worker of pool {self.name} became free within "
                        f"{timeout:g} s (allocate_timeout)"
                    )
            # A worker whose process exited while it was free is still on
            # the list until run() has reaped it; one that wrote to stdout
            # while idle is killed now. Neither costs this request anything.
            if taken.state is WorkerState.READY:
                if taken.let_go:
                    # Let go (its replacement is ready) while it was being
                    # handed to this request, so no longer on the free list
                    # for _let_go to find: it stops here, or it would idle
                    # for good and a reset would wait on it.
                    taken.dismiss()
                elif taken.quiet() or await taken.check_idle():
                    return taken
            first = True

    def _release(self, worker: Worker) -> None:
        """The exchange is over; the worker's relay is clean (or it is dead)."""
        self._busy -= 1
        if self._busy == 0 and self._idle is not None:
            self._idle.set()
        worker.release()
        if worker.state is not WorkerState.READY:
            return  # killed mid-exchange; run() reaps it
        limit = worker.exec_limit
        if limit and worker.execs >= limit:
            worker.mark(Retirement.MAX_JOBS)
            worker.let_go = True
        if worker.let_go or self._closing:
            self._dismiss(worker, worker.retirement or Retirement.SHUTDOWN)
        else:
            self._allocator.put(worker)

    def _cannot_replace(self) -> bool:
        """Every slot failed its last start."""
        return 0 < self._slots <= self._failing_slots

    def _cannot_serve(self) -> bool:
        """Every slot failed its last start and no worker is left to serve."""
        return self._cannot_replace() and not self._usable()

    def _cannot_start(self) -> str:
        failure = str(self._start_failure).partition("\n")[0]
        return f"no worker of pool {self.name} can start: {failure}"

    def _usable(self) -> int:
        """Workers that can take a request now or once their current one ends."""
        return sum(
            1
            for worker in self._workers
            if not worker.let_go and worker.state in _SERVING
        )

    async def _begin(
        self, payload: Payload, *, idempotent: bool = False
    ) -> tuple[Worker, Response]:
        """Send ``payload`` to a worker; return it with the first response.

        Re-runs the request on another worker when one asks to stop or turns
        out dead before it could read the request, and, for an idempotent
        request, when one dies before answering.
        """
        retries = max(self.config.num_workers, 1) * 2 + 1
        rerun_after_crash = idempotent
        for attempt in range(retries):
            worker = await self._acquire(first=attempt > 0)
            try:
                try:
                    await worker.request(payload)
                except WorkerCrashed:
                    self._release(worker)
                    continue  # it never saw the request: safe to re-run
                # Sent: counted whatever the worker makes of it (an answer,
                # an error, a crash, exec_ttl), as each worker's execs are.
                self._execs += 1
                event = await self._next_event(worker)
            except WorkerCrashed as exc:
                self._release(worker)
                if rerun_after_crash and exc.vanished:
                    rerun_after_crash = False
                    logger.info(
                        "pool %s: re-running an idempotent request on another "
                        "worker: %s",
                        self.name,
                        exc,
                        extra={"pool": self.name, "pid": worker.pid},
                    )
                    continue
                raise
            except WorkerTimeout:
                self._release(worker)
                raise
            except BaseException:
                self._abandon(worker)
                raise
            if isinstance(event, Response):
                return worker, event
            self._release_after(worker, event)
        raise WorkerCrashed(
            f"pool {self.name}: {retries} workers in a row refused the request "
            "(they asked to be stopped or were dead)"
        )

    def _release_after(self, worker: Worker, event: object) -> None:
        if isinstance(event, ErrorReply):
            self._release(worker)
            raise SoftError(event.message, pid=worker.pid)
        if isinstance(event, StopRequest):
            logger.info(
                "pool %s: worker %d asked to be stopped; re-running its request",
                self.name,
                worker.pid,
                extra={"pool": self.name, "pid": worker.pid},
            )
            self.retire(worker, Retirement.ASKED, now=True)
            self._release(worker)
            return
        self._release(worker)
        raise WorkerCrashed(f"worker {worker.pid} sent {event!r} unexpectedly")

    def _next_event(self, worker: Worker) -> Awaitable[object]:
        """Read the worker's next event within ``exec_ttl``.

        Without exec_ttl, the worker's own wait, returned to be awaited:
        no scope to pay for, and no coroutine frame of its own.
        """
        ttl = self.config.supervisor.exec_ttl
        if not ttl:
            return worker.next_event()
        return self._next_event_within(worker, ttl)

    async def _next_event_within(self, worker: Worker, ttl: float) -> object:
        with trio.move_on_after(ttl) as scope:
            return await worker.next_event()
        assert scope.cancelled_caught
        logger.warning(
            "pool %s: worker %d exceeded exec_ttl (%g s) and was killed",
            self.name,
            worker.pid,
            ttl,
            extra={"pool": self.name, "pid": worker.pid, "reason": "exec_ttl"},
        )
        worker.kill(Retirement.EXEC_TTL)
        raise WorkerTimeout(
            f"worker {worker.pid} did not answer within exec_ttl ({ttl:g} s)",
            pid=worker.pid,
        )

    def _abandon(self, worker: Worker) -> None:
        """The caller left mid-exchange: drain the worker in the background."""
        assert self._nursery is not None
        self._nursery.start_soon(self._drain, worker)

    async def _drain(self, worker: Worker) -> None:
        with trio.move_on_after(self.config.stream_timeout) as scope:
            try:
                await worker.cancel_stream()
            except WorkerCrashed:
                pass
        if scope.cancelled_caught:
            logger.warning(
                "pool %s: worker %d did not end its cancelled response within "
                "stream_timeout; killing it",
                self.name,
                worker.pid,
                extra={"pool": self.name, "pid": worker.pid},
            )
            worker.kill(Retirement.CRASHED)
        self._release(worker)


def exec_limit(max_jobs: int, spread: int | None = None) -> int:
    """The requests one worker serves: ``max_jobs`` plus 0 to 14 %.

    RoadRunner's spread, rounded to the nearest request rather than down,
    so that small limits spread too (5 becomes 5 or 6; 1 stays 1):
    workers started together then retire at different times instead of
    all at once.
    """
    if spread is None:
        spread = random.randint(0, 14)
    return max_jobs + int(max_jobs * spread / 100 + 0.5)


def _died_unused(worker: Worker) -> bool:
    """It left on its own before it was given a single request."""
    gone = worker.retirement in (Retirement.EXITED, Retirement.CRASHED)
    return gone and worker.execs == 0


@attrs.define
class _Backoff:
    """Delays between failed starts: 0.1 s, doubling, at most 10 s."""

    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        return min(_BACKOFF_MAX, _BACKOFF_FIRST * 2.0 ** (self.failures - 1))

    def reset(self) -> None:
        self.failures = 0


def _process_group(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return os.getpgid(pid)
    except OSError:  # gone already
        return None


class _Exchange:
    """``Pool.stream``'s context manager (a class: one per HTTP request)."""

    __slots__ = ("_chunks", "_idempotent", "_payload", "_pool")

    def __init__(self, pool: Pool, payload: Payload, idempotent: bool) -> None:
        self._pool = pool
        self._payload = payload
        self._idempotent = idempotent
        self._chunks: ResponseChunks | None = None

    async def __aenter__(self) -> ResponseChunks:
        pool = self._pool
        worker, first = await pool._begin(self._payload, idempotent=self._idempotent)
        self._chunks = ResponseChunks(pool, worker, first)
        return self._chunks

    async def __aexit__(self, *exc_info: object) -> None:
        chunks = self._chunks
        if chunks is not None and not chunks.finished:
            self._pool._abandon(chunks._worker)


class ResponseChunks:
    """The chunks of one response; the first one is already read.

    Owns the worker until the last frame: then, or when reading fails, it
    releases the worker exactly once and sets ``finished``, so ``finished``
    is true as the last chunk is returned.
    """

    def __init__(self, pool: Pool, worker: Worker, first: Response) -> None:
        self._pool = pool
        self._worker = worker
        self._next: Response | None = first
        self.finished = False
        if not first.more:
            self._finish()

    def _finish(self) -> None:
        self.finished = True
        self._pool._release(self._worker)

    def __aiter__(self) -> ResponseChunks:
        return self

    async def __anext__(self) -> Payload:
        event = self._next
        if event is None:
            if self.finished:
                raise StopAsyncIteration
            event = await self._read()
        self._next = None
        if event.ping:
            await self._worker.pong()
        if not event.more and not self.finished:
            self._finish()
        return event.payload

    async def _read(self) -> Response:
        pool = self._pool
        worker = self._worker
        try:
            event = await pool._next_event(worker)
        except (WorkerCrashed, WorkerTimeout):
            self._finish()
            raise
        if isinstance(event, Response):
            return event
        self.finished = True
        pool._release_after(worker, event)
        raise WorkerCrashed(f"worker {worker.pid} sent {event!r} mid-stream")


def _status(worker: Worker) -> int:
    """RoadRunner's state number for ``worker`` (see ``_MARKED_STATUS``)."""
    state = worker.state
    if state is WorkerState.STOPPED:
        return 5
    if state is WorkerState.STOPPING:
        return 4
    marked = _MARKED_STATUS.get(worker.retirement) if worker.retirement else None
    if marked is not None:
        return marked
    return 1 if state is WorkerState.READY else 2
