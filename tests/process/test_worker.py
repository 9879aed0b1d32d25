"""One real PHP worker's lifecycle, driven without a pool."""

from __future__ import annotations

import functools
import uuid
from pathlib import Path

import psutil
import pytest
import trio
import trio.testing

from tests.php_workers import child_processes, php, request
from trio_runner.config.model import PoolConfig
from trio_runner.pool import open_pool
from trio_runner.process import ProcessSpawner, Worker, open_relay, worker_environment
from trio_runner.protocol import Response

pytestmark = pytest.mark.php


@pytest.mark.parametrize("kind", ["pipes", "unix"])
async def test_worker_answer_written_just_before_exit_is_still_read(
    kind: str, tmp_path: Path
) -> None:
    spec = "pipes" if kind == "pipes" else f"unix://{tmp_path}/r.sock"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            relay = await open_relay(spec, relay_nursery=nursery)
            spawner = ProcessSpawner(
                argv=php("answer_then_exit.php"),
                env=worker_environment(relay=relay.spec, mode="http"),
                relay=relay,
            )
            worker = Worker(await spawner.spawn(task_nursery=nursery, timeout=10))
            nursery.start_soon(functools.partial(worker.run, grace=5))
            worker.acquire()
            await worker.request(request(b"pid"))

            # The process answers and exits before we read the answer, and
            # run() reaps it first: it must leave the relay open for us.
            assert await worker.process.wait() == 0
            await trio.testing.wait_all_tasks_blocked()
            event = await worker.next_event()
            assert isinstance(event, Response)
            assert event.payload.body == b"%d" % worker.pid

            worker.release()
            await worker.wait_stopped()
            nursery.cancel_scope.cancel()
    assert child_processes() == []


async def test_worker_kill_takes_the_workers_children_along() -> None:
    # A worker that started a child of its own: killing the worker (here by
    # cancelling its pool) must not leave that child running, orphaned.
    tag = uuid.uuid4().hex
    command = ["sh", "-c", f"sleep 60 & exec {' '.join(php('echo.php'))}"]
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(_run_pool, command, {"TEST_TAG": tag})
            assert len(_tagged(tag)) == 2, "the worker and its sleep"
            nursery.cancel_scope.cancel()
    assert _tagged(tag) == []


async def _run_pool(
    command: list[str], env: dict[str, str], *, task_status: trio.TaskStatus[None]
) -> None:
    async with open_pool(command, config=PoolConfig(num_workers=1), env=env):
        task_status.started()
        await trio.sleep_forever()


def _tagged(tag: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if (
                process.environ().get("TEST_TAG") == tag
                and process.status() != "zombie"
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found
