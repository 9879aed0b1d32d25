"""``open_pool``: a pool of PHP workers inside the caller's own code.

For a Python program (or a test) that wants PHP workers without the whole
server: ``async with open_pool("php worker.php") as pool: await pool.exec(...)``.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import trio

from trio_runner.config.model import PoolConfig
from trio_runner.pool.pool import Pool
from trio_runner.process import ProcessSpawner, open_relay, worker_environment

__all__ = ["open_pool"]


@asynccontextmanager
async def open_pool(
    command: str | Sequence[str],
    *,
    config: PoolConfig | None = None,
    name: str = "http",
    mode: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    relay: str = "pipes",
    rpc: str | None = None,
) -> AsyncIterator[Pool]:
    """Start a pool of workers running ``command``; stop it on exit.

    Args:
        command: the worker command, a string (split like a shell would)
            or a list.
        config: pool settings; the defaults are RoadRunner's.
        name: the pool's name in logs.
        mode: ``RR_MODE`` for the workers; defaults to ``name``.
        env: extra environment variables (keys are upper-cased).
        cwd: the workers' working directory.
        relay: ``pipes``, ``tcp://host:port`` or ``unix://path``.
        rpc: the ``RR_RPC`` address to give workers, if any.

    Returns once every worker has handshaken. Leaving the block normally
    stops the pool gracefully (in-flight requests finish, workers get the
    stop frame); leaving it with an exception or by cancellation kills the
    workers. Either way every process is reaped.

    Raises:
        WorkerStartError: a worker could not start; its output is quoted.
    """
    argv = tuple(shlex.split(command)) if isinstance(command, str) else tuple(command)
    where = Path(cwd) if cwd is not None else None
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        try:
            link = await open_relay(relay, relay_nursery=nursery, base_dir=where)
            spawner = ProcessSpawner(
                argv=argv,
                env=worker_environment(
                    relay=link.spec, mode=mode or name, env=env or {}, rpc=rpc
                ),
                relay=link,
                cwd=where,
            )
            pool = Pool(name, spawner, config or PoolConfig())
            await nursery.start(pool.run)
            yield pool
            await pool.aclose()
        except BaseException as exc:
            # Re-raised below, outside the nursery, so the caller gets the
            # WorkerStartError or its own exception back rather than an
            # ExceptionGroup around it (tests/process/test_spawn.py).
            error = exc
        nursery.cancel_scope.cancel()
    if error is not None:
        raise error
