"""The pool with real PHP workers: what each kind of failure does to them.

tests/pool/test_pool.py pins the same rules with fake workers under a fake
clock; these check that real PHP processes, pipes and signals behave as the
fakes assume. Each test has its own real-clock ``fail_after`` guard.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

import pytest
import trio
import trio.testing

from tests.php_workers import (
    PHP_DIR,
    child_processes,
    has_pcntl,
    is_dead,
    is_gone,
    php,
    request,
)
from trio_runner.config.model import PoolConfig
from trio_runner.errors import SoftError, WorkerCrashed
from trio_runner.pool import Pool, open_pool
from trio_runner.process import Retirement, WorkerState

pytestmark = pytest.mark.php


async def test_pool_php_serves_100_requests_on_the_same_2_workers(php_pool) -> None:
    answered: list[int] = []
    with trio.fail_after(20):
        pool = await php_pool(PHP_DIR / "echo.php", num_workers=2)
        pids = {worker.pid for worker in pool.workers}

        async def one() -> None:
            answered.append(int((await pool.exec(request(b"pid"))).body))

        async with trio.open_nursery() as nursery:
            for _ in range(100):
                nursery.start_soon(one)

    assert len(pids) == 2
    assert len(answered) == 100
    assert set(answered) == pids
    assert {worker.pid for worker in pool.workers} == pids, "none was replaced"
    assert pool.statistics().execs == 100


async def test_pool_php_worker_exiting_mid_request_is_replaced(php_pool) -> None:
    with trio.fail_after(10):
        pool = await php_pool(PHP_DIR / "exit_mid_request.php")
        first = pool.workers[0].pid
        with pytest.raises(WorkerCrashed, match="closed its relay") as info:
            await pool.exec(request(b"die"))
        assert info.value.pid == first

        assert int((await pool.exec(request(b"pid"))).body) != first
        await trio.testing.wait_all_tasks_blocked()
        assert is_gone(first), "the dead worker was reaped"
        assert first not in {worker.pid for worker in pool.workers}


async def test_pool_php_garbage_on_stdout_mid_request_is_logged(
    php_pool, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(10):
        pool = await php_pool(PHP_DIR / "writes_to_stdout.php")
        first = pool.workers[0].pid
        with pytest.raises(WorkerCrashed, match="wrote to stdout") as info:
            await pool.exec(request(b"garbage"))
        assert info.value.pid == first
        assert b"debug output mid-request" in str(info.value).encode()

        assert int((await pool.exec(request(b"pid"))).body) != first

    [record] = [
        r for r in caplog.records if "debug output mid-request" in r.getMessage()
    ]
    assert record.levelno == logging.WARNING
    assert record.pid == first  # type: ignore[attr-defined]
    assert str(first) in record.getMessage()


async def test_pool_php_request_cancelled_as_stray_output_is_read_loses_no_worker(
    php_pool,
) -> None:
    with trio.fail_after(10):
        pool = await php_pool(PHP_DIR / "writes_to_stdout.php")
        [worker] = pool.workers
        await pool.exec(request(b"after"))
        while "wrote while idle" not in worker.output.text():  # noqa: ASYNC110
            await trio.sleep(0.01)  # (stderr tells that stdout was written)
        # The next request finds the stray output and is cancelled while
        # reading it (its client left): the worker must be replaced, not
        # dropped from the free list with its slot still counting it.
        with trio.CancelScope() as scope:
            scope.cancel()
            await pool.exec(request(b"pid"))
        assert int((await pool.exec(request(b"pid"))).body) != worker.pid


async def test_pool_php_soft_error_keeps_the_worker(php_pool) -> None:
    with trio.fail_after(10):
        pool = await php_pool(PHP_DIR / "soft_error.php")
        pid = pool.workers[0].pid
        with pytest.raises(SoftError, match="the order was not found") as info:
            await pool.exec(request(b"fail"))
        assert info.value.pid == pid

        assert int((await pool.exec(request(b"pid"))).body) == pid
        assert [worker.pid for worker in pool.workers] == [pid]


async def test_pool_php_worker_asking_to_stop_gets_request_rerun(
    php_pool, tmp_path: Path
) -> None:
    with trio.fail_after(10):
        pool = await php_pool(
            PHP_DIR / "ask_stop.php", env={"ASK_STOP_FLAG": str(tmp_path / "asked")}
        )
        [asker] = pool.workers
        reply = await pool.exec(request(b"pid"))
        assert int(reply.body) != asker.pid, "answered by the replacement"
        assert (tmp_path / "asked").exists(), "the first worker did ask"

        await asker.wait_stopped()
        assert asker.process.returncode == 0, "stopped with the stop frame"


async def test_pool_php_aclose_stops_workers_with_the_stop_frame(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with trio.fail_after(10):
        async with open_pool(php("echo.php"), config=PoolConfig(num_workers=2)) as pool:
            workers = pool.workers
            await pool.exec(request(b"pid"))
            start = trio.current_time()
            await pool.aclose()
            assert trio.current_time() - start < 5

    assert [worker.process.returncode for worker in workers] == [0, 0]
    assert all(worker.state is WorkerState.STOPPED for worker in workers)
    assert "ignored the stop frame" not in caplog.text
    assert child_processes() == []


async def test_pool_php_worker_ignoring_stop_is_killed_after_destroy_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_runner.worker")
    config = PoolConfig(num_workers=1, destroy_timeout=1)
    with trio.fail_after(10):
        async with open_pool(php("ignore_stop.php"), config=config) as pool:
            [worker] = pool.workers
            await pool.exec(request(b"pid"))
            start = trio.current_time()
            await pool.aclose()
            elapsed = trio.current_time() - start

    assert 1 <= elapsed < 3
    assert worker.process.returncode == -signal.SIGKILL
    assert "got the stop frame, staying up" in caplog.text
    assert f"worker {worker.pid} ignored the stop frame" in caplog.text
    assert is_gone(worker.pid)
    assert child_processes() == []


async def test_pool_php_cancellation_kills_and_reaps_every_process() -> None:
    workers = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:

            async def serve(*, task_status: trio.TaskStatus[Pool]) -> None:
                config = PoolConfig(num_workers=2)
                async with open_pool(php("sleepy.php"), config=config) as pool:
                    workers.extend(pool.workers)
                    task_status.started(pool)
                    await trio.sleep_forever()

            pool = await nursery.start(serve)
            nursery.start_soon(pool.exec, request(b"30"))
            await trio.testing.wait_all_tasks_blocked()
            states = {worker.state for worker in workers}
            assert states == {WorkerState.READY, WorkerState.WORKING}
            nursery.cancel_scope.cancel()

    assert [worker.process.returncode for worker in workers] == [-signal.SIGKILL] * 2
    assert child_processes() == []


async def test_pool_cancelled_while_sending_a_large_request_keeps_the_worker() -> None:
    # A 4 MiB body takes many pipe writes; the caller gives up in the middle.
    # The frame must still reach PHP whole, the answer be drained, and the
    # same worker serve the next request at once (not after stream_timeout,
    # and not a replacement).
    with trio.fail_after(10):
        async with open_pool(php("echo.php"), config=PoolConfig(num_workers=1)) as pool:
            [worker] = pool.workers
            for _ in range(5):
                with trio.move_on_after(0.001):
                    await pool.exec(request(b"x" * (4 << 20)))
                reply = await pool.exec(request(b"pid"))
                assert reply.body == b"%d" % worker.pid
            assert pool.workers == [worker]


async def test_pool_crash_error_carries_what_php_said_on_stderr() -> None:
    with trio.fail_after(10):
        async with open_pool(
            php("exit_mid_request.php"), config=PoolConfig(num_workers=1)
        ) as pool:
            with pytest.raises(WorkerCrashed) as info:
                await pool.exec(request(b"die"))
    assert "exit_mid_request" in info.value.output


needs_pcntl = pytest.mark.skipif(
    not has_pcntl(), reason="php has no pcntl extension (pcntl_fork)"
)


async def wait_dead(pid: int) -> None:
    """Return once ``pid`` has exited; the caller bounds the wait."""
    while not is_dead(pid):  # noqa: ASYNC110 (no event for another process)
        await trio.sleep(0.02)


@needs_pcntl
async def test_pool_php_child_of_a_worker_retired_by_max_jobs_is_killed(
    php_pool,
) -> None:
    with trio.fail_after(10):
        pool = await php_pool(PHP_DIR / "fork_child.php", max_jobs=1)
        [first] = pool.workers
        child = int((await pool.exec(request(b"fork"))).body)
        assert child != first.pid and not is_dead(child)

        await first.wait_stopped()
        assert first.process.returncode == 0, "it took the stop frame"
        with trio.fail_after(1):
            await wait_dead(child)


@needs_pcntl
async def test_pool_php_child_of_a_worker_that_exits_is_killed(php_pool) -> None:
    with trio.fail_after(10):
        pool = await php_pool(PHP_DIR / "fork_child.php")
        [first] = pool.workers
        child = int((await pool.exec(request(b"exit"))).body)

        await first.wait_stopped()
        assert first.retirement is Retirement.EXITED
        with trio.fail_after(1):
            await wait_dead(child)


@needs_pcntl
@pytest.mark.parametrize("graceful", [True, False])
async def test_pool_php_children_of_workers_end_with_the_pool(graceful: bool) -> None:
    children = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            config = PoolConfig(num_workers=2)
            async with open_pool(php("fork_child.php"), config=config) as pool:
                for _ in range(4):
                    children.append(int((await pool.exec(request(b"fork"))).body))
                assert not any(is_dead(child) for child in children)
                if graceful:
                    await pool.aclose()
                else:
                    nursery.cancel_scope.cancel()
        with trio.fail_after(1):
            for child in children:
                await wait_dead(child)
    assert child_processes() == []
