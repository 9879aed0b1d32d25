"""Growing and shrinking a running pool (informer.AddWorker / RemoveWorker),
and the per-worker records the informer shows."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.fakes import FakeSpawner
from tests.pool.test_pool import config, request, running, sleepy
from trio_runner.errors import PoolClosed, PoolSizeError, WorkerStartError
from trio_runner.pool import Pool
from trio_runner.process import WorkerState
from trio_runner.process.worker import Retirement


async def test_pool_add_worker_grows_the_pool_and_keeps_the_slot() -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=1) as pool:
        added = await pool.add_worker()
        assert added.state is WorkerState.READY
        assert len(pool.workers) == 2
        # The new slot replaces its worker like any other.
        pool.retire(added, Retirement.MAX_JOBS, now=True)
        await trio.testing.wait_all_tasks_blocked()
        assert len(pool.workers) == 2
        assert added not in pool.workers
        assert len(spawner.started) == 3


async def test_pool_remove_worker_prefers_an_idle_one_and_shrinks_for_good(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=3) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.exec, request(b"5"))
            await trio.testing.wait_all_tasks_blocked()
            busy = next(w for w in pool.workers if w.state is WorkerState.WORKING)
            removed = await pool.remove_worker()
            assert removed is not busy
            assert removed.state is WorkerState.STOPPED
            assert removed.retirement is Retirement.REMOVED
        await trio.testing.wait_all_tasks_blocked()
        assert len(pool.workers) == 2
        assert len(spawner.started) == 3, "no replacement was started"
        for _ in range(4):
            assert (await pool.exec(request(b"0"))).body == b"0"


async def test_pool_remove_worker_lets_a_busy_worker_finish_its_request(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=2) as pool:
        replies: list[bytes] = []

        async def slow() -> None:
            replies.append((await pool.exec(request(b"3"))).body)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            nursery.start_soon(slow)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            removed = await pool.remove_worker()
            assert trio.current_time() - start == pytest.approx(3)
        assert replies == [b"3", b"3"], "nothing in flight was dropped"
        assert removed.execs == 1
        assert len(pool.workers) == 1


async def test_pool_refuses_to_remove_its_last_worker() -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=2) as pool:
        await pool.remove_worker()
        with pytest.raises(PoolSizeError, match="refusing to remove the last one"):
            await pool.remove_worker()
        assert len(pool.workers) == 1
        assert (await pool.exec(request())).body == b"hi"


async def test_pool_concurrent_removals_still_keep_one_worker() -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=3) as pool:
        failures: list[Exception] = []

        async def remove() -> None:
            try:
                await pool.remove_worker()
            except PoolSizeError as exc:
                failures.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(remove)
        assert len(pool.workers) == 1
        assert len(failures) == 3


async def test_pool_add_worker_that_cannot_start_leaves_the_pool_as_it_was() -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=1) as pool:

        async def broken_boot(process) -> None:
            process.exit(255)

        spawner.boot = broken_boot
        with pytest.raises(WorkerStartError):
            await pool.add_worker()
        spawner.boot = None
        assert len(pool.workers) == 1
        await pool.add_worker()
        assert len(pool.workers) == 2


async def test_pool_resize_refused_in_debug_mode_and_when_not_running() -> None:
    idle = Pool("http", FakeSpawner(), config())
    with pytest.raises(PoolClosed, match="pool http is not running"):
        await idle.add_worker()
    async with running(FakeSpawner(), debug=True) as pool:
        with pytest.raises(PoolSizeError, match="debug mode"):
            await pool.add_worker()
        with pytest.raises(PoolSizeError, match="debug mode"):
            await pool.remove_worker()


async def test_pool_worker_info_reports_each_worker(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy, command="php app.php")
    pool = Pool(
        "http",
        spawner,
        config(num_workers=2),
        memory=lambda worker: 1000 + worker.pid,
        cpu=lambda worker: 12.5,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        nursery.start_soon(pool.exec, request(b"5"))
        await trio.testing.wait_all_tasks_blocked()
        infos = {info.pid: info for info in pool.worker_info()}
        assert len(infos) == 2
        busy = next(w for w in pool.workers if w.state is WorkerState.WORKING)
        idle = next(w for w in pool.workers if w.state is WorkerState.READY)
        assert infos[busy.pid].status == 2
        assert infos[busy.pid].status_name == "working"
        assert infos[busy.pid].execs == 1
        assert infos[idle.pid].status == 1
        assert infos[idle.pid].status_name == "ready"
        for worker in pool.workers:
            info = infos[worker.pid]
            assert info.memory == 1000 + worker.pid
            assert info.cpu_percent == 12.5
            assert info.command == "php app.php"
            assert info.created == int(worker.created * 1e9)
        # A worker that reached a limit shows it until it leaves.
        pool.retire(idle, Retirement.TTL)
        assert {i.pid: i for i in pool.worker_info()}[idle.pid].status_name == (
            "ttlReached"
        )
        await pool.aclose()


async def test_pool_worker_info_memory_and_cpu_of_real_processes_default_to_zero() -> (
    None
):
    # Fake pids are no processes of ours: the probes find nothing, not a crash.
    async with running(FakeSpawner(), num_workers=1) as pool:
        [info] = pool.worker_info()
        assert info.memory >= 0 and info.cpu_percent >= 0.0


async def test_pool_remove_worker_picks_a_worker_not_already_leaving() -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=2) as pool:
        first = pool.workers[0]
        pool.retire(first, Retirement.TTL)  # its replacement is on the way
        removed = await pool.remove_worker()
        assert removed is not first
        assert first.retirement is Retirement.TTL
        await trio.testing.wait_all_tasks_blocked()
        assert len(pool.workers) == 1
        assert first not in pool.workers, "replaced, as a TTL worker is"


async def test_pool_wait_ready_returns_once_replacements_serve(autojump_clock) -> None:
    async def slow_boot(process) -> None:
        await trio.sleep(2)

    spawner = FakeSpawner(boot=slow_boot)
    async with running(spawner, num_workers=2) as pool:
        old = set(pool.workers)
        start = trio.current_time()
        await pool.reset()
        await pool.wait_ready()
        assert trio.current_time() - start >= 2
        serving = [w for w in pool.workers if w.state is WorkerState.READY]
        assert len(serving) == 2
        assert old.isdisjoint(serving)
