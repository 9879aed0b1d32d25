"""Starting one PHP worker process and handshaking with it.

``ProcessSpawner.spawn`` returns a ``Spawned``: the process, its handshaken
link, and the tail of what it wrote. Anything that goes wrong before the
handshake completes (the command is missing, PHP cannot open the script, the
script dies at boot, it writes garbage to stdout, it never answers) becomes a
``WorkerStartError`` that quotes the worker's own output, and the process is
killed and reaped before the error leaves.

Workers get their own process group (as RoadRunner's Setpgid), so a Ctrl-C
in the terminal reaches only the server, which then stops them in order.
When a worker is done, by whatever path, what is left of its group (the
children it forked) is killed before the worker is reaped (``group.py``).
Each group is registered with the reaper (``reaper.py``) as soon as it is
spawned, and forgotten once it has been killed: if the server dies without
stopping its workers, SIGKILL included, the reaper kills every group still
registered, so a worker busy with a request does not outlive the server.
(The kernel's parent-death signal cannot do that here: it fires when the
*thread* that forked exits, and trio forks in a thread of its cache,
which ends after 10 idle seconds.)
"""

from __future__ import annotations

import functools
import logging
import math
import os
import pwd
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import attrs
import trio

from trio_runner._version import RR_VERSION
from trio_runner.errors import (
    FrameCorrupted,
    RemoteProtocolError,
    ScriptNotFound,
    WorkerStartError,
)
from trio_runner.process import reaper
from trio_runner.process.group import GroupLeader
from trio_runner.process.output import OutputTail, pump_output
from trio_runner.process.relay import Link, PipeRelay, Relay
from trio_runner.process.terminate import describe_exit, kill_and_reap

__all__ = [
    "PHP_LIBRARY",
    "ProcessSpawner",
    "Spawned",
    "Spawner",
    "WorkerProcess",
    "worker_environment",
]

logger = logging.getLogger(__name__)

PHP_LIBRARY = Path(__file__).resolve().parent.parent / "php" / "autoload.php"

# How long a dead worker's pipes get to deliver its last words.
_DRAIN_OUTPUT = 0.5


class WorkerProcess(Protocol):
    """The parts of ``trio.Process`` the pool uses; fakes implement these."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    async def wait(self) -> int: ...

    def kill(self) -> None: ...


@attrs.define(eq=False)
class Spawned:
    """A started, handshaken worker process.

    ``drained`` is set once the process's stderr reached end of file, i.e.
    everything it wrote has been logged.
    """

    process: WorkerProcess
    link: Link
    output: OutputTail
    drained: trio.Event = attrs.field(factory=trio.Event)


class Spawner(Protocol):
    """Starts workers for a pool. ``task_nursery`` runs their output pumps.

    ``spawn`` must give up after ``timeout`` seconds with a
    ``WorkerStartError`` that says what the process wrote meanwhile.
    """

    @property
    def command(self) -> str:
        """The command line, for logs and the informer."""

    # The timeout is an argument, not the caller's cancel scope, because on
    # expiry the spawner must still kill the process and quote its output.
    async def spawn(
        self,
        *,
        task_nursery: trio.Nursery,
        timeout: float,  # noqa: ASYNC109
    ) -> Spawned: ...


def worker_environment(
    *,
    relay: str,
    mode: str,
    env: Mapping[str, str] = {},
    rpc: str | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker, in RoadRunner's order (PROTOCOL.md 2.3).

    ``TRIO_RUNNER_PHP`` is ours: the path of the bundled PHP library's
    autoloader, so a worker can ``require getenv('TRIO_RUNNER_PHP')``.
    """
    result = dict(os.environ if base is None else base)
    result["RR_RELAY"] = relay
    if rpc:
        result["RR_RPC"] = rpc
    result["TRIO_RUNNER_PHP"] = str(PHP_LIBRARY)
    result.update((key.upper(), value) for key, value in env.items())
    result["RR_VERSION"] = RR_VERSION
    result["RR_MODE"] = mode
    return result


@attrs.define(eq=False)
class ProcessSpawner:
    """Spawns ``argv`` as a worker with ``env`` in ``cwd`` over ``relay``.

    ``user``, when set, runs the worker as that user and its primary group
    (the server must be root). ``relay_timeout`` bounds how long a worker
    on a socket relay may take to connect.
    """

    argv: Sequence[str]
    env: Mapping[str, str]
    relay: Relay = attrs.field(factory=PipeRelay)
    cwd: Path | None = None
    user: str = ""
    relay_timeout: float = math.inf

    @property
    def command(self) -> str:
        return subprocess.list2cmdline(self.argv)

    async def spawn(
        self,
        *,
        task_nursery: trio.Nursery,
        timeout: float = math.inf,  # noqa: ASYNC109 (see Spawner.spawn)
    ) -> Spawned:
        """Start the process and handshake within ``timeout`` seconds.

        Raises:
            WorkerStartError: the process could not start or handshake in
                time. It has been killed and reaped, and the message quotes
                what it wrote.
        """
        stdio = self.relay.uses_stdio
        uid, gid, groups = _identity(self.user)
        try:
            opened = await trio.lowlevel.open_process(
                list(self.argv),
                stdin=subprocess.PIPE if stdio else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(self.env),
                cwd=self.cwd,
                process_group=0,
                user=uid,
                group=gid,
                extra_groups=groups,
            )
        except OSError as exc:
            raise self._cannot_start(exc.strerror) from exc
        # Its group is killed if the server dies; GroupLeader.wait forgets
        # it once it has killed the group itself.
        reaper.watch(opened.pid)
        process = GroupLeader(opened)
        tail = OutputTail()
        drained = trio.Event()
        assert opened.stderr is not None and opened.stdout is not None

        stderr = opened.stderr

        async def pump_stderr() -> None:
            try:
                await pump_output(stderr, process.pid, tail)
            finally:
                drained.set()

        task_nursery.start_soon(pump_stderr)
        if not stdio:
            task_nursery.start_soon(
                functools.partial(pump_output, source="stdout"),
                opened.stdout,
                process.pid,
                tail,
            )
        limit = min(timeout, math.inf if stdio else self.relay_timeout)
        try:
            with trio.fail_after(limit):
                link = await self._link(process)
        except BaseException as exc:
            exit_code = process.returncode  # None: we are about to kill it
            with trio.CancelScope(shield=True):
                await kill_and_reap(process)
                # Let the pump log what the dead process left in its pipe.
                with trio.move_on_after(_DRAIN_OUTPUT):
                    await drained.wait()
            if isinstance(exc, trio.TooSlowError):
                raise self._start_error(
                    process, self._too_slow(limit, timeout), tail, exit_code
                ) from None
            if isinstance(exc, Exception):
                raise self._start_error(process, exc, tail, exit_code) from exc
            raise
        return Spawned(process, link, tail, drained)

    def _cannot_start(self, reason: str | None) -> WorkerStartError:
        return WorkerStartError(
            f"cannot start worker command {self.command!r}: {reason}"
            f" (check server.command; working dir {self.cwd or os.getcwd()})"
        )

    def _too_slow(self, limit: float, timeout: float) -> Exception:
        setting = "server.relay_timeout" if limit < timeout else "allocate_timeout"
        message = f"it did not answer the handshake within {limit:g} s ({setting})"
        if not self.relay.uses_stdio:
            message += (
                "; with a socket relay the command must exec PHP itself (no "
                "shell wrapper), or its pid does not match the one that connects"
            )
        return RemoteProtocolError(message)

    async def _link(self, process: GroupLeader) -> Link:
        """Wait for the handshake, or for the process to die first."""
        link: Link | None = None
        failure: Exception | None = None

        async def pair() -> None:
            nonlocal link, failure
            try:
                link = await self.relay.link(process.process)
            except Exception as exc:
                failure = exc
            nursery.cancel_scope.cancel()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pair)
            await process.wait()
            # The process ended first. A pipe may still hold its last frame or
            # the garbage it wrote; give pair() a moment to read it.
            with trio.move_on_after(_DRAIN_OUTPUT):
                await trio.sleep(math.inf)
            nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if link is None:
            raise RemoteProtocolError("the worker exited before the handshake")
        return link

    def _start_error(
        self,
        process: GroupLeader,
        exc: Exception,
        tail: OutputTail,
        exit_code: int | None,
    ) -> WorkerStartError:
        output = ""
        if isinstance(exc, ScriptNotFound):
            output = exc.output.decode("utf-8", "replace").strip()
            reason = "PHP could not open the worker script (check server.command)"
        elif isinstance(exc, FrameCorrupted):
            output = exc.data.decode("utf-8", "replace").strip()
            reason = "the worker wrote to stdout instead of answering the handshake"
        elif isinstance(exc, trio.BrokenResourceError | trio.ClosedResourceError):
            reason = "the worker closed its relay"
        else:
            reason = str(exc) or type(exc).__name__
        if exit_code is not None:
            reason += f" ({describe_exit(exit_code)})"
        stdout = output  # in pipe mode, nothing else has shown it
        logged = tail.text()
        output = "\n".join(part for part in (stdout, logged) if part)
        summary = message = f"worker {self.command!r} failed to start: {reason}"
        if output:
            message += "\n--- worker output ---\n" + output
        if stdout:
            summary += "\n--- worker stdout ---\n" + stdout
        return WorkerStartError(
            message, pid=process.pid, output=output, summary=summary
        )


def _identity(user: str) -> tuple[int | None, int | None, list[int] | None]:
    """The uid, gid and supplementary groups that run a worker as ``user``."""
    if not user:
        return None, None, None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise WorkerStartError(
            f"server.user {user!r} does not exist on this machine"
        ) from None
    return entry.pw_uid, entry.pw_gid, []
