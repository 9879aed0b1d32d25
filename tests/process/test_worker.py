"""One real PHP worker's lifecycle, driven without a pool."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.php_workers import child_processes, php, request
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
            worker = Worker(await spawner.spawn(task_nursery=nursery))
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
