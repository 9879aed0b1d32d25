"""One live PHP worker: its process, its relay, and its lifecycle.

::

    READY ──acquire──> WORKING ──release──> READY
      │                   │
      │ dismiss           │ crash / kill (the exchange failed)
      v                   v
    STOPPING ──exit──> STOPPED <── the process exits on its own (any state)

A worker is *marked* for retirement (``mark``) when a limit is reached, the
pool is reset, or it failed. Marking only records the reason and wakes the
pool, which starts a replacement at once. ``let_go`` says the worker takes
no new request (the pool sets it when the replacement is ready, or at once
for a reset); it then leaves when idle (``dismiss``), so a running request
is never cut short by a soft limit. ``kill`` is the hard path: SIGKILL now.

``run`` supervises the process: it returns once the process has exited and
been reaped, whatever the path. All worker I/O errors are translated into
``WorkerCrashed`` here, the one boundary between trio's errors and ours.
"""

from __future__ import annotations

import enum
import logging
import time

import attrs
import trio

from trio_runner.errors import (
    FrameCorrupted,
    InternalError,
    RelayClosed,
    RemoteProtocolError,
    WorkerCrashed,
    WorkerCutAtStop,
)
from trio_runner.process.output import OutputTail
from trio_runner.process.spawn import Spawned, WorkerProcess
from trio_runner.process.terminate import kill, kill_and_reap
from trio_runner.protocol import (
    Event,
    Payload,
    State,
    StreamCancelled,
    WorkerConnection,
)
from trio_runner.protocol.frame import STRAY_PREVIEW
from trio_runner.stream import DirectStream

__all__ = ["Retirement", "Worker", "WorkerState"]

logger = logging.getLogger(__name__)

_READ_SIZE = 64 << 10
# How long a reaped worker's stderr may take to reach end of file.
_DRAIN_OUTPUT = 0.5


class WorkerState(enum.Enum):
    READY = "ready"
    WORKING = "working"
    STOPPING = "stopping"
    STOPPED = "stopped"

    # Members are singletons that compare by identity, so the identity hash
    # is a correct one; Enum's own (of the name) is Python code, and the
    # table below is looked up on every acquire and release.
    __hash__ = object.__hash__


# The legal moves; anything else is a bug in the pool.
_TRANSITIONS: dict[WorkerState, frozenset[WorkerState]] = {
    WorkerState.READY: frozenset(
        {WorkerState.WORKING, WorkerState.STOPPING, WorkerState.STOPPED}
    ),
    WorkerState.WORKING: frozenset(
        {WorkerState.READY, WorkerState.STOPPING, WorkerState.STOPPED}
    ),
    WorkerState.STOPPING: frozenset({WorkerState.STOPPED}),
    WorkerState.STOPPED: frozenset(),
}


class Retirement(enum.Enum):
    """Why a worker leaves. The value is what logs and metrics show."""

    MAX_JOBS = "max_jobs"
    TTL = "ttl"
    IDLE_TTL = "idle_ttl"
    MEMORY = "max_worker_memory"
    EXEC_TTL = "exec_ttl"
    CRASHED = "crashed"
    EXITED = "exited"
    ASKED = "worker_asked_to_stop"
    RESET = "reset"
    DEBUG = "debug"
    SHUTDOWN = "shutdown"
    REMOVED = "removed"


_FAILURES = frozenset({Retirement.EXEC_TTL, Retirement.CRASHED, Retirement.EXITED})


@attrs.define(eq=False)
class Worker:
    """A handshaken worker. Create with ``Worker(spawned)``; ``run`` it."""

    _spawned: Spawned
    state: WorkerState = WorkerState.READY
    execs: int = 0
    exec_limit: int = 0
    let_go: bool = False
    removed: bool = False  # the pool shrinks by this worker's slot
    write_timeout: float = 60.0
    retirement: Retirement | None = None
    created: float = attrs.field(factory=time.time)
    started_at: float = attrs.field(factory=trio.current_time)
    last_exec: float = attrs.field(factory=trio.current_time)
    _leaving: trio.Event = attrs.field(factory=trio.Event)
    _dismissed: trio.Event = attrs.field(factory=trio.Event)
    _stopped: trio.Event = attrs.field(factory=trio.Event)
    # Whether an exchange holds the relay. ``run`` must not close it before
    # the exchange lets go, and waits on ``_released``: an event made only
    # then, not one per request.
    _exchanging: bool = False
    _released: trio.Event | None = None
    # Set once trio_runner itself kills the process (exec_ttl, a failed
    # exchange, shutdown): a relay that closes after that is no surprise.
    _killed: bool = False

    @property
    def pid(self) -> int:
        return self._spawned.process.pid

    @property
    def process(self) -> WorkerProcess:
        return self._spawned.process

    @property
    def output(self) -> OutputTail:
        return self._spawned.output

    @property
    def _connection(self) -> WorkerConnection:
        return self._spawned.link.connection

    def __repr__(self) -> str:
        return f"<Worker pid={self.pid} {self.state.value} execs={self.execs}>"

    # -- lifecycle -------------------------------------------------------

    def _move(self, target: WorkerState) -> None:
        if target not in _TRANSITIONS[self.state]:
            raise InternalError(
                f"worker {self.pid}: illegal state change "
                f"{self.state.value} -> {target.value}"
            )
        self.state = target

    def acquire(self) -> None:
        """The pool hands this worker to one exchange."""
        self._move(WorkerState.WORKING)
        self.last_exec = trio.current_time()
        self._exchanging = True

    def release(self) -> None:
        """The exchange is over and the relay is clean again."""
        if self.state is WorkerState.WORKING:
            self._move(WorkerState.READY)
        self._exchanging = False
        if self._released is not None:
            self._released.set()

    def mark(self, reason: Retirement) -> None:
        """Record why this worker must go.

        The first reason wins, except that a failure (it crashed, exited or
        ran past exec_ttl) replaces a plan (ttl, max_jobs, a reset): that
        is why it really left.
        """
        current = self.retirement
        if current is None or (reason in _FAILURES and current not in _FAILURES):
            self.retirement = reason
        self._leaving.set()

    @property
    def marked(self) -> bool:
        return self.retirement is not None

    def dismiss(self) -> None:
        """Stop this worker gracefully once ``run`` gets to it."""
        self.let_go = True
        self._leaving.set()
        self._dismissed.set()

    def kill(self, reason: Retirement) -> None:
        """SIGKILL the process now; ``run`` reaps it."""
        self.mark(reason)
        self.let_go = True
        self._killed = True
        kill(self.process)
        self._dismissed.set()

    async def wait_leaving(self) -> None:
        """Return once this worker is marked, dismissed, killed or gone."""
        await self._leaving.wait()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    async def run(self, *, grace: float) -> None:
        """Supervise the process until it is gone; always reaps it.

        A dismissed worker gets the stop frame and ``grace`` seconds to exit
        before SIGKILL. A process that exits on its own marks the worker
        ``EXITED``. Cancellation kills the process (shielded, bounded).
        The relay is closed once the process is gone and no exchange reads
        it any more (at once on cancellation).
        """
        try:
            async with trio.open_nursery() as nursery:

                async def watch_exit() -> None:
                    await self.process.wait()
                    self.let_go = True
                    if not self._dismissed.is_set():
                        self.mark(Retirement.EXITED)
                    nursery.cancel_scope.cancel()

                nursery.start_soon(watch_exit)
                await self._dismissed.wait()
                await self._stop_gracefully(grace)
                nursery.cancel_scope.cancel()
        finally:
            if not self.marked:
                self.mark(Retirement.SHUTDOWN)  # cancelled: the server stops
            if self.process.returncode is None:
                self._killed = True
            await kill_and_reap(self.process)
            # Its last words are logged before the worker counts as stopped.
            with trio.CancelScope(shield=True), trio.move_on_after(_DRAIN_OUTPUT):
                await self._spawned.drained.wait()
            if self.state is not WorkerState.STOPPED:
                self._move(WorkerState.STOPPED)
            self._leaving.set()
            try:
                if self._exchanging:
                    # A process that answered and then exited has its last
                    # frame in the relay still; the exchange must read it.
                    self._released = trio.Event()
                    await self._released.wait()
            finally:
                # Now, not at garbage collection: an unclosed socket relay
                # warns (tests/process/test_relay.py).
                await trio.aclose_forcefully(self._spawned.link.stream)
                self._stopped.set()

    async def _stop_gracefully(self, grace: float) -> None:
        if self.state is not WorkerState.STOPPED:
            self._move(WorkerState.STOPPING)
        if self._connection.state is not State.IDLE:
            return  # mid-exchange or broken: nothing graceful left to say
        with trio.move_on_after(grace) as scope:
            try:
                await self._spawned.link.stream.send_all(self._connection.stop())
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            await self.process.wait()
        if scope.cancelled_caught:
            logger.warning(
                "worker %d ignored the stop frame for %.1f s; killing it",
                self.pid,
                grace,
                extra={"pid": self.pid},
            )

    # -- exchanges -------------------------------------------------------

    def quiet(self) -> bool:
        """Whether this idle worker's relay has nothing to read: the
        common case of ``check_idle``, which decides the others."""
        link = self._spawned.link
        return not link.connection.trailing_size and not link.readable_now()

    async def check_idle(self) -> bool:
        """Whether this idle worker's relay is still quiet; kill it if not.

        Called as a request is about to be given to it. Bytes a worker wrote
        after its last answer (an ``echo`` after ``respond``) would
        otherwise be read as the answer to that innocent request; and a
        relay at end of file means the process is gone. Either way the
        worker is killed and replaced, and no request fails. Costs one
        ``poll`` when all is well.
        """
        if self.quiet():
            return True
        link = self._spawned.link
        # Stray bytes that came with the last answer are read already.
        data = link.connection.trailing_data
        if not data:
            try:
                data = bytes(await link.stream.receive_some(_READ_SIZE))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            except BaseException:
                # Cancelled (the request's client left): the pool hands it
                # to nobody now, so it must go, or it would idle unused.
                self.kill(Retirement.CRASHED)
                raise
        if data:
            logger.warning(
                "worker %d wrote to stdout outside the protocol while idle: "
                "%r; replacing it",
                self.pid,
                data[:STRAY_PREVIEW],
                extra={"pid": self.pid, "reason": "crashed"},
            )
        elif self.retirement not in _FAILURES:
            logger.warning(
                "worker %d closed its relay while idle; replacing it",
                self.pid,
                extra={"pid": self.pid, "reason": "crashed"},
            )
        self.kill(Retirement.CRASHED)
        return False

    async def request(self, payload: Payload) -> None:
        """Send one request frame.

        Once this is called the worker counts as having the request, even
        if the caller is cancelled: the frame is always written whole.
        """
        frame = self._connection.request(payload)
        self.execs += 1
        await self._send(frame)

    async def pong(self) -> None:
        await self._send(self._connection.pong())

    async def next_event(self) -> Event:
        """Read until the connection produces an event.

        Raises:
            WorkerCrashed: EOF, an I/O error or a protocol violation. The
                process has been killed; the pool replaces it.
        """
        connection = self._connection
        stream = self._spawned.link.stream
        while True:
            # Right after a request is sent nothing is buffered: straight
            # to the read, which is where the answer comes from.
            if not connection.needs_data:
                try:
                    event = connection.next_event()
                except RemoteProtocolError as exc:
                    raise await self._died(exc) from exc
                if event is not None:
                    return event
            try:
                data = await stream.receive_some(_READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise await self._died(exc) from exc
            connection.receive_data(bytes(data))

    async def cancel_stream(self) -> None:
        """Tell the worker to abandon its response; drain until it is idle.

        The caller bounds this with ``stream_timeout``.
        """
        if self._connection.state is State.IDLE:
            return
        await self._send(self._connection.cancel())
        while not isinstance(await self.next_event(), StreamCancelled):
            pass

    async def _send(self, data: bytes | memoryview) -> None:
        """Write one whole frame, whatever happens to the caller meanwhile.

        A frame cut short by a cancellation would leave the relay mid-frame
        and the worker waiting for bytes that never come, so the write is
        shielded; it is bounded by ``write_timeout``, after which the worker
        is treated as stuck and killed.
        """
        stream = self._spawned.link.stream
        if isinstance(stream, DirectStream):
            # Most frames fit in the pipe at once: no scopes, no scheduling.
            try:
                sent = stream.send_nowait(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise self._crash(exc) from exc
            if sent == len(data):
                await trio.lowlevel.checkpoint_if_cancelled()
                return
            data = memoryview(data)[sent:]
        with trio.CancelScope(shield=True):
            try:
                with trio.fail_after(self.write_timeout):
                    await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise self._crash(exc) from exc
            except trio.TooSlowError as exc:
                raise self._crash(exc) from exc
        # The cancellation the shield held back is delivered here, once the
        # frame is whole (and the connection's state matches the worker's).
        await trio.lowlevel.checkpoint_if_cancelled()

    async def _died(self, exc: Exception) -> WorkerCrashed:
        """``_crash``, once a worker that is exiting has said its last words.

        A PHP fatal error reaches stderr around the time the relay closes;
        waiting a moment for it lets the error carry it (debug responses
        show it). Shielded and bounded: the caller may be cancelled.
        """
        if not isinstance(exc, FrameCorrupted):
            with trio.CancelScope(shield=True), trio.move_on_after(_DRAIN_OUTPUT):
                await self.process.wait()
                await self._spawned.drained.wait()
        return self._crash(exc)

    def _crash(self, exc: Exception) -> WorkerCrashed:
        """Kill the worker after a failed exchange; return the error to raise."""
        closed = trio.BrokenResourceError | trio.ClosedResourceError
        # Gone on its own, not killed by us (shutdown, exec_ttl, ...); a
        # worker only marked for retirement (ttl, reset) was still serving.
        vanished = isinstance(exc, closed | RelayClosed) and not self._killed
        if isinstance(exc, FrameCorrupted):
            detail = f"wrote to stdout outside the protocol: {exc.data!r}"
        elif isinstance(exc, closed):
            detail = "closed its relay"
        elif isinstance(exc, trio.TooSlowError):
            detail = f"did not read a frame within {self.write_timeout:g} s"
        else:
            detail = str(exc).removeprefix("the worker ")  # "worker N closed ..."
        # Not when exec_ttl killed it, nor when it exited (the pool logs
        # that with the exit code).
        if not self._killed and self.retirement not in _FAILURES:
            logger.warning(
                "worker %d failed mid-request and is replaced: %s",
                self.pid,
                detail,
                extra={"pid": self.pid, "reason": "crashed"},
            )
        cut = self._killed and self.retirement is Retirement.SHUTDOWN
        self.kill(Retirement.CRASHED)
        error = WorkerCutAtStop if cut else WorkerCrashed
        return error(
            f"worker {self.pid} {detail}",
            pid=self.pid,
            output=self.output.text(),
            vanished=vanished,
        )
