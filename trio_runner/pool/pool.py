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
"""

from __future__ import annotations

import functools
import logging
import random
from contextlib import AbstractAsyncContextManager

import attrs
import trio

from trio_runner.config.model import PoolConfig
from trio_runner.errors import (
    NoFreeWorkers,
    PoolClosed,
    SoftError,
    WorkerCrashed,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.pool.allocator import Allocator
from trio_runner.pool.stats import PoolStatistics
from trio_runner.pool.supervisor import MemoryProbe, process_rss, supervise
from trio_runner.process.spawn import Spawner
from trio_runner.process.worker import Retirement, Worker, WorkerState
from trio_runner.protocol import ErrorReply, Payload, Response, StopRequest

__all__ = ["Pool", "ResponseChunks"]

logger = logging.getLogger(__name__)

_SERVING = frozenset({WorkerState.READY, WorkerState.WORKING})

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
        memory: reads a worker's RSS, for ``supervisor.max_worker_memory``.
    """

    def __init__(
        self,
        name: str,
        spawner: Spawner,
        config: PoolConfig,
        *,
        memory: MemoryProbe = process_rss,
    ) -> None:
        self.name = name
        self.config = config
        self._spawner = spawner
        self._memory = memory
        self._allocator: Allocator[Worker] = Allocator(
            max_waiting=config.max_queue_size
        )
        self._workers: set[Worker] = set()
        self._nursery: trio.Nursery | None = None
        self._closing = False
        self._closed = trio.Event()
        self._busy = 0
        self._idle = trio.Event()
        self._idle.set()
        self._execs = 0
        self._start_failure: WorkerStartError | None = None

    # -- public ------------------------------------------------------------

    @property
    def workers(self) -> list[Worker]:
        """Live workers, oldest first (including ones on their way out)."""
        return sorted(self._workers, key=lambda worker: worker.created)

    def statistics(self) -> PoolStatistics:
        states = [worker.state for worker in self._workers]
        return PoolStatistics(
            name=self.name,
            workers=len(states),
            ready=states.count(WorkerState.READY),
            working=states.count(WorkerState.WORKING),
            waiting=self._allocator.waiting,
            execs=self._execs,
        )

    async def run(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Start the workers, report ready, and supervise until closed.

        Raises:
            WorkerStartError: a worker could not start; the message quotes
                its output. Every other worker has been stopped.

        On cancellation every worker is killed and reaped before this returns.
        """
        failure: WorkerStartError | None = None
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
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
                await self._closed.wait()
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
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        for worker in self._allocator.close():
            self._dismiss(worker, Retirement.SHUTDOWN)
        with trio.move_on_after(self.config.destroy_timeout):
            await self._idle.wait()
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

    async def reset(self) -> None:
        """Replace every worker; in-flight requests finish on the old ones.

        Requests that arrive meanwhile wait for the new workers. Returns
        once the old workers have stopped, or after ``reset_timeout``.
        """
        old = list(self._workers)
        logger.info(
            "pool %s: resetting %d worker(s)",
            self.name,
            len(old),
            extra={"pool": self.name},
        )
        for worker in old:
            self.retire(worker, Retirement.RESET, now=True)
        with trio.move_on_after(self.config.reset_timeout):
            for worker in old:
                await worker.wait_stopped()

    def retire(self, worker: Worker, reason: Retirement, *, now: bool = False) -> None:
        """Have ``worker`` replaced; a request it is running always finishes.

        By default it keeps serving until its replacement is ready; with
        ``now`` it takes no new request.
        """
        worker.mark(reason)
        if now:
            self._let_go(worker)

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
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep one worker alive in this slot until the pool closes."""
        previous: Worker | None = None
        started = False
        while not self._closing:
            worker = await self._start_with_backoff(raise_first=not started)
            if not started:
                started = True
                task_status.started()
            self._offer(worker)
            if previous is not None:
                self._let_go(previous)  # its replacement serves now
            await worker.wait_leaving()
            self._log_leaving(worker)
            previous = worker

    async def _start_with_backoff(self, *, raise_first: bool) -> Worker:
        """Start a worker, retrying with backoff while starting fails."""
        failures = 0
        while True:
            try:
                worker = await self._start_worker()
            except WorkerStartError as exc:
                if raise_first:
                    raise
                self._start_failure = exc
                if not self._usable():
                    # Requests that began waiting before this failure would
                    # otherwise wait allocate_timeout for a 503 too.
                    self._allocator.refuse_waiting(self._cannot_start())
                failures += 1
                delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (failures - 1))
                logger.error(
                    "pool %s: could not start a worker (retrying in %.1f s): %s",
                    self.name,
                    delay,
                    exc,
                    extra={"pool": self.name},
                )
                await trio.sleep(delay)
                continue
            self._start_failure = None
            return worker

    async def _start_worker(self) -> Worker:
        assert self._nursery is not None
        spawned = await self._spawner.spawn(
            task_nursery=self._nursery, timeout=self.config.allocate_timeout
        )
        worker = Worker(spawned)
        if self.config.max_jobs:
            spread = random.randint(0, 14)
            worker.exec_limit = (
                self.config.max_jobs + self.config.max_jobs * spread // 100
            )
        self._workers.add(worker)
        self._nursery.start_soon(self._run_worker, worker)
        return worker

    async def _run_worker(self, worker: Worker) -> None:
        try:
            await worker.run(grace=self.config.destroy_timeout)
        finally:
            self._workers.discard(worker)
            self._allocator.remove(worker)

    def _offer(self, worker: Worker) -> None:
        if self._closing or worker.let_go or worker.state is not WorkerState.READY:
            self._dismiss(worker, Retirement.SHUTDOWN)
        else:
            self._allocator.put(worker)

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
                "pool %s: worker %d exited unexpectedly (exit code %s); "
                "starting a replacement",
                self.name,
                worker.pid,
                worker.process.returncode,
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

    async def _acquire(self) -> Worker:
        if self._closing:
            raise PoolClosed(f"pool {self.name} is stopping")
        if self.config.debug:
            worker = await self._start_worker()
            worker.mark(Retirement.DEBUG)
            worker.let_go = True
        else:
            worker = await self._take_live()
        worker.acquire()
        self._busy += 1
        self._idle = trio.Event() if self._busy == 1 else self._idle
        return worker

    async def _take_live(self) -> Worker:
        """The next free worker that is still alive, within allocate_timeout."""
        timeout = self.config.allocate_timeout
        deadline = trio.current_time() + timeout
        while True:
            taken = self._allocator.take_nowait()
            if taken is None and self._start_failure and not self._usable():
                # Every slot is failing to start a worker: waiting for one
                # would only make the client wait allocate_timeout for a 503.
                raise NoFreeWorkers(self._cannot_start())
            if taken is None:
                with trio.move_on_at(deadline):
                    taken = await self._allocator.take()
                if taken is None:
                    raise NoFreeWorkers(
                        f"no worker of pool {self.name} became free within "
                        f"{timeout:g} s (allocate_timeout)"
                    )
            if taken.state is WorkerState.READY and not taken.let_go:
                return taken
            # It died while free (its process exited; run() is reaping it
            # and takes it off the free list only once reaped).

    def _release(self, worker: Worker) -> None:
        """The exchange is over; the worker's relay is clean (or it is dead)."""
        self._busy -= 1
        if self._busy == 0:
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
        for _attempt in range(retries):
            worker = await self._acquire()
            try:
                try:
                    await worker.request(payload)
                except WorkerCrashed:
                    self._release(worker)
                    continue  # it never saw the request: safe to re-run
                event = await self._next_event(worker)
            except WorkerCrashed as exc:
                self._release(worker)
                if rerun_after_crash and exc.vanished:
                    rerun_after_crash = False
                    logger.info(
                        "pool %s: re-running an idempotent request after %s",
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
            self._execs += 1
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

    async def _next_event(self, worker: Worker) -> object:
        """Read the worker's next event within ``exec_ttl``."""
        ttl = self.config.supervisor.exec_ttl
        if not ttl:
            return await worker.next_event()  # no limit: no scope to pay for
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
