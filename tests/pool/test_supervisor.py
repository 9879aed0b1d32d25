from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio.testing

from tests.fakes import FakePHP, FakeSpawner
from trio_runner.config.model import PoolConfig, SupervisorConfig
from trio_runner.pool import Pool
from trio_runner.process import Worker
from trio_runner.protocol import Payload


@asynccontextmanager
async def supervised(
    spawner: FakeSpawner, memory=lambda worker: 0, **limits: float
) -> AsyncIterator[Pool]:
    config = PoolConfig(num_workers=1, supervisor=SupervisorConfig(**limits))
    pool = Pool("http", spawner, config, memory=memory)
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        await pool.aclose()


async def sleepy(php: FakePHP, payload: Payload) -> None:
    await trio.sleep(float(payload.body))
    await php.respond(b"{}", str(php.process.pid).encode())


async def test_supervisor_ttl_replaces_idle_worker(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    async with supervised(spawner, ttl=5, watch_tick=1) as pool:
        first = spawner.started[0]
        await trio.sleep(4.5)
        assert first.returncode is None
        await trio.sleep(1)
        assert first.returncode == 0, "stopped with the stop frame"
        assert len(pool.workers) == 1
        assert pool.workers[0].pid != first.pid


async def test_supervisor_ttl_waits_for_the_running_request(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    async with supervised(spawner, ttl=8, watch_tick=1) as pool:
        first = spawner.started[0]
        start = trio.current_time()
        reply = await pool.exec(Payload(b"{}", b"10"))
        assert int(reply.body) == first.pid, "not cut short"
        assert trio.current_time() - start == 10
        await trio.testing.wait_all_tasks_blocked()
        assert first.returncode == 0
        # The replacement was started while the old worker still worked.
        assert spawner.started[1].returncode is None
        assert int((await pool.exec(Payload(b"{}", b"0"))).body) != first.pid


async def test_supervisor_idle_ttl_counts_from_the_last_request(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    async with supervised(spawner, idle_ttl=10, watch_tick=1) as pool:
        first = spawner.started[0]
        for _ in range(3):
            await trio.sleep(6)
            await pool.exec(Payload(b"{}", b"0"))
        assert first.returncode is None, "never idle 10 s in a row"
        await trio.sleep(11)
        assert first.returncode == 0


async def test_supervisor_idle_ttl_leaves_workers_that_never_served(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    async with supervised(spawner, idle_ttl=1, watch_tick=1):
        await trio.sleep(30)
        assert len(spawner.started) == 1, "no churn of fresh workers"


async def test_supervisor_memory_limit_replaces_the_worker(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    usage: dict[int, int] = {}

    def memory(worker: Worker) -> int:
        return usage.get(worker.pid, 0)

    async with supervised(spawner, memory, max_worker_memory=64, watch_tick=1):
        first = spawner.started[0]
        usage[first.pid] = 63 * 1024 * 1024
        await trio.sleep(3)
        assert first.returncode is None
        usage[first.pid] = 64 * 1024 * 1024
        await trio.sleep(1.5)
        assert first.returncode == 0


async def test_supervisor_old_worker_serves_until_replacement_is_ready(
    autojump_clock,
) -> None:
    booting = False

    async def slow_boot(process) -> None:
        if booting:
            await trio.sleep(5)

    spawner = FakeSpawner(sleepy, boot=slow_boot)
    async with supervised(spawner, ttl=10, watch_tick=1) as pool:
        first = spawner.started[0]
        booting = True
        await trio.sleep(10.5)  # marked at t=10; its replacement boots 5 s
        for _ in range(3):
            reply = await pool.exec(Payload(b"{}", b"0"))
            assert int(reply.body) == first.pid, "capacity did not dip"
        await trio.sleep(5)
        await trio.testing.wait_all_tasks_blocked()
        assert first.returncode == 0
        assert int((await pool.exec(Payload(b"{}", b"0"))).body) != first.pid


async def test_supervisor_broken_deploy_leaves_old_workers_serving(
    autojump_clock, caplog
) -> None:
    broken = False

    async def boot(process) -> None:
        if broken:
            process.exit(255)

    spawner = FakeSpawner(sleepy, boot=boot)
    async with supervised(spawner, ttl=5, watch_tick=1) as pool:
        first = spawner.started[0]
        broken = True
        await trio.sleep(30)
        assert len(spawner.started) > 5, "kept retrying with backoff"
        reply = await pool.exec(Payload(b"{}", b"0"))
        assert int(reply.body) == first.pid
        broken = False
        await trio.sleep(11)  # the longest backoff
        await trio.testing.wait_all_tasks_blocked()
        assert first.returncode == 0
        assert int((await pool.exec(Payload(b"{}", b"0"))).body) != first.pid
    assert "could not start a worker (retrying in" in caplog.text
