"""The pool against fake workers on trio's autojump clock: allocation and
its timeout, the queue, failure kinds, limits, retirement and replacement.

Past 600 lines: one file for ``trio_runner/pool/pool.py``; its rules share
one set of fakes, and a timer rule is a test of a few lines each.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from tests.fakes import FakePHP, FakeSpawner
from trio_runner.config.model import PoolConfig, SupervisorConfig
from trio_runner.errors import (
    NoFreeWorkers,
    PoolClosed,
    QueueFull,
    SoftError,
    WorkerCrashed,
    WorkerCutAtStop,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.pool import Pool
from trio_runner.pool.pool import exec_limit
from trio_runner.process import WorkerState
from trio_runner.process.worker import Retirement
from trio_runner.protocol import Payload, encode_frame


def config(**options: object) -> PoolConfig:
    supervisor = options.pop("supervisor", SupervisorConfig())
    options.setdefault("num_workers", 2)
    return PoolConfig(supervisor=supervisor, **options)  # type: ignore[arg-type]


@asynccontextmanager
async def running(spawner: FakeSpawner, **options: object) -> AsyncIterator[Pool]:
    pool = Pool("http", spawner, config(**options))
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        await pool.aclose()


def request(body: bytes = b"hi") -> Payload:
    return Payload(b"{}", body)


async def sleepy(php: FakePHP, payload: Payload) -> None:
    await trio.sleep(float(payload.body))
    await php.respond(b"{}", payload.body)


async def test_pool_starts_workers_and_serves_many_requests_on_them() -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=3) as pool:
        assert len(pool.workers) == 3
        assert all(w.state is WorkerState.READY for w in pool.workers)
        for i in range(100):
            reply = await pool.exec(request(b"%d" % i))
            assert reply.body == b"%d" % i
        assert len(spawner.started) == 3
        assert sum(w.execs for w in pool.workers) == 100
        assert pool.statistics().execs == 100
    assert spawner.alive == []


async def test_pool_soft_error_keeps_the_worker() -> None:
    async def fail(php: FakePHP, payload: Payload) -> None:
        if payload.body == b"fail":
            await php.error("boom")
        else:
            await php.respond(b"{}", b"ok")

    spawner = FakeSpawner(fail)
    async with running(spawner, num_workers=1) as pool:
        with pytest.raises(SoftError, match="boom") as info:
            await pool.exec(request(b"fail"))
        assert info.value.pid == spawner.started[0].pid
        assert (await pool.exec(request())).body == b"ok"
        assert len(spawner.started) == 1


async def test_pool_crash_mid_request_fails_it_and_replaces_the_worker() -> None:
    async def die(php: FakePHP, payload: Payload) -> None:
        if payload.body == b"die":
            php.crash()
        else:
            await php.respond(b"{}", str(php.process.pid).encode())

    spawner = FakeSpawner(die)
    async with running(spawner, num_workers=1) as pool:
        first = spawner.started[0]
        with pytest.raises(WorkerCrashed, match="closed its relay"):
            await pool.exec(request(b"die"))
        reply = await pool.exec(request())
        assert int(reply.body) != first.pid
        assert len(spawner.alive) == 1
        # Both were sent to a worker (rr_http_execs_total), the crashed one
        # too.
        assert pool.statistics().execs == 2


async def test_pool_garbage_on_stdout_crashes_only_that_request(caplog) -> None:
    async def noisy(php: FakePHP, payload: Payload) -> None:
        if payload.body == b"echo":
            await php.write_raw(b"debug output\n")
        else:
            await php.respond(b"{}", b"ok")

    spawner = FakeSpawner(noisy)
    async with running(spawner, num_workers=1) as pool:
        with pytest.raises(WorkerCrashed, match="wrote to stdout"):
            await pool.exec(request(b"echo"))
        assert spawner.started[0].killed
        assert (await pool.exec(request())).body == b"ok"
    assert "debug output" in caplog.text


async def test_pool_reruns_request_when_worker_asks_to_stop() -> None:
    async def tired(php: FakePHP, payload: Payload) -> None:
        if len(php.requests) == 1 and php.process.pid == spawner.started[0].pid:
            await php.stop_me()
        else:
            await php.respond(b"{}", str(php.process.pid).encode())

    spawner = FakeSpawner(tired)
    async with running(spawner, num_workers=1) as pool:
        asker = spawner.started[0]
        reply = await pool.exec(request())
        assert int(reply.body) != asker.pid
        await trio.testing.wait_all_tasks_blocked()
        assert asker.returncode == 0  # stopped gracefully with the stop frame
        assert not asker.killed


async def test_pool_waits_for_a_free_worker_in_arrival_order(autojump_clock) -> None:
    order: list[bytes] = []

    async def record(php: FakePHP, payload: Payload) -> None:
        order.append(payload.body)
        await trio.sleep(1)
        await php.respond(b"{}", payload.body)

    async with running(FakeSpawner(record), num_workers=1) as pool:
        async with trio.open_nursery() as nursery:
            for i in range(5):
                nursery.start_soon(pool.exec, request(b"%d" % i))
                await trio.testing.wait_all_tasks_blocked()
    assert order == [b"0", b"1", b"2", b"3", b"4"]


async def test_pool_allocate_timeout_gives_no_free_workers(autojump_clock) -> None:
    async with running(FakeSpawner(sleepy), num_workers=1, allocate_timeout=1) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.exec, request(b"3"))
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(NoFreeWorkers, match=r"within 1 s"):
                await pool.exec(request(b"0"))
            assert trio.current_time() - start == pytest.approx(1)


async def test_pool_full_queue_refuses_at_once(autojump_clock) -> None:
    async with running(FakeSpawner(sleepy), num_workers=1, max_queue_size=1) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.exec, request(b"3"))
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(pool.exec, request(b"0"))
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(QueueFull):
                await pool.exec(request(b"0"))
            assert trio.current_time() == start


async def test_pool_exec_ttl_kills_and_replaces(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    options = {"supervisor": SupervisorConfig(exec_ttl=2)}
    async with running(spawner, num_workers=1, **options) as pool:
        start = trio.current_time()
        with pytest.raises(WorkerTimeout, match="exec_ttl"):
            await pool.exec(request(b"60"))
        assert trio.current_time() - start == pytest.approx(2)
        assert spawner.started[0].killed
        assert (await pool.exec(request(b"1"))).body == b"1"
        assert len(spawner.started) == 2


async def test_pool_streams_chunks_and_answers_ping() -> None:
    async def chunks(php: FakePHP, payload: Payload) -> None:
        for i in range(3):
            await php.respond(b"{}", b"c%d" % i, more=True, ping=i == 1)
            if i == 1:
                _, _, _, stream = await php.read_frame()
                assert stream == 0x08, "expected a PONG"
        await php.respond(b"{}", b"end")

    async with running(FakeSpawner(chunks), num_workers=1) as pool:
        async with pool.stream(request()) as response:
            bodies = [chunk.body async for chunk in response]
        assert bodies == [b"c0", b"c1", b"c2", b"end"]
        assert pool.workers[0].state is WorkerState.READY


async def test_pool_error_frame_mid_stream_fails_it_and_keeps_the_worker() -> None:
    async def fails(php: FakePHP, payload: Payload) -> None:
        if payload.body == b"plain":
            await php.respond(b"{}", str(php.process.pid).encode())
            return
        await php.respond(b"{}", b"part", more=True)
        await php.error("generator failed")  # PHP's body threw mid-stream

    spawner = FakeSpawner(fails)
    async with running(spawner, num_workers=1) as pool:
        bodies: list[bytes] = []

        async def read() -> None:
            async with pool.stream(request()) as response:
                async for chunk in response:
                    bodies.append(chunk.body)
            raise AssertionError("the stream ended without the error")

        with pytest.raises(SoftError, match="generator failed") as info:
            await read()
        assert bodies == [b"part"]
        [worker] = spawner.started
        assert info.value.pid == worker.pid
        # A soft error (PROTOCOL.md 3.8): the same worker serves on.
        assert (await pool.exec(request(b"plain"))).body == b"%d" % worker.pid
        assert len(spawner.started) == 1


async def test_pool_leaving_a_stream_early_stops_and_reuses_worker() -> None:
    stopped = trio.Event()

    async def endless(php: FakePHP, payload: Payload) -> None:
        if payload.body == b"plain":
            await php.respond(b"{}", b"plain")
            return
        await php.respond(b"{}", b"first", more=True)
        _, _, _, stream = await php.read_frame()
        assert stream == 0x02, "expected a STOP"
        stopped.set()
        await php.respond(b"", b"")  # PHP's empty final frame

    spawner = FakeSpawner(endless)
    async with running(spawner, num_workers=1) as pool:
        async with pool.stream(request()) as response:
            async for chunk in response:
                assert chunk.body == b"first"
                break
        await stopped.wait()
        assert (await pool.exec(request(b"plain"))).body == b"plain"
        assert len(spawner.started) == 1


async def test_pool_cancelled_caller_leaves_worker_drained_and_reused(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=1) as pool:
        with trio.move_on_after(1):
            await pool.exec(request(b"5"))
        # The worker finishes its 5 s response in the background, then serves.
        assert (await pool.exec(request(b"0"))).body == b"0"
        assert len(spawner.started) == 1
        assert trio.current_time() >= 5


async def test_pool_max_jobs_retires_workers_with_a_spread() -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=1, max_jobs=10) as pool:
        for _ in range(60):
            await pool.exec(request())
        await trio.testing.wait_all_tasks_blocked()
        retired = [p for p in spawner.started if p.returncode is not None]
        assert len(retired) >= 4  # each lasted 10 to 11 requests
        assert all(p.returncode == 0 for p in retired), "stopped, not killed"
        for php in spawner.php[: len(retired)]:
            assert 10 <= len(php.requests) <= 11


@pytest.mark.parametrize(
    ("max_jobs", "spread", "limit"),
    [
        (5, 0, 5),
        (5, 9, 5),
        (5, 10, 6),
        (5, 14, 6),
        (100, 0, 100),
        (100, 14, 114),
        (3, 14, 3),
        (1, 14, 1),
    ],
)
def test_exec_limit_adds_up_to_14_percent_rounded(
    max_jobs: int, spread: int, limit: int
) -> None:
    assert exec_limit(max_jobs, spread) == limit


def test_exec_limit_spreads_even_small_limits() -> None:
    assert {exec_limit(5) for _ in range(200)} == {5, 6}
    assert len({exec_limit(100) for _ in range(500)}) >= 10


async def test_pool_replaces_a_worker_that_exits_while_idle(caplog) -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=2) as pool:
        spawner.started[0].exit(3)
        await trio.testing.wait_all_tasks_blocked()
        assert len(spawner.alive) == 2
        assert len(pool.workers) == 2
        for _ in range(4):
            await pool.exec(request())
    assert "exited unexpectedly (exit code 3)" in caplog.text


async def test_pool_start_failure_raises_with_reason() -> None:
    async def broken_boot(process) -> None:
        process.exit(255)

    spawner = FakeSpawner(boot=broken_boot)
    pool = Pool("http", spawner, config(num_workers=2))
    with pytest.raises(WorkerStartError, match="failed to start"):
        await pool.run()
    assert spawner.alive == []


async def test_pool_heals_when_spawning_recovers(autojump_clock, caplog) -> None:
    caplog.set_level(logging.INFO, "trio_runner.pool")
    broken = False

    async def boot(process) -> None:
        if broken:
            process.exit(1)

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=1) as pool:
        broken = True
        spawner.started[0].exit(1)
        await trio.sleep(5)
        failed = len(spawner.started)
        assert failed > 3, "keeps retrying"
        broken = False
        await trio.sleep(11)
        assert len(spawner.alive) == 1
        healed = spawner.alive[0].pid
        assert (await pool.exec(request())).body == b"hi"
    # The operator saw the failures logged; the recovery is said too.
    assert f"pool http: worker {healed} started, after " in caplog.text


async def test_pool_reset_lets_inflight_finish_and_uses_new_workers(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=2) as pool:
        old = {w.pid for w in pool.workers}
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.exec, request(b"3"))
            await trio.testing.wait_all_tasks_blocked()
            await pool.reset()
            assert trio.current_time() >= 3, "reset waited for the slow request"
        assert {w.pid for w in pool.workers}.isdisjoint(old)
        assert len(pool.workers) == 2
        assert all(p.returncode == 0 for p in spawner.started[:2])


async def test_pool_aclose_waits_for_inflight_then_stops(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    pool = Pool("http", spawner, config(num_workers=1))
    result: list[Payload] = []
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)

        async def slow() -> None:
            result.append(await pool.exec(request(b"3")))

        nursery.start_soon(slow)
        await trio.testing.wait_all_tasks_blocked()
        await pool.aclose()
        assert result and result[0].body == b"3"
        with pytest.raises(PoolClosed):
            await pool.exec(request())
    assert spawner.started[0].returncode == 0


async def test_pool_aclose_stops_waiting_for_requests_after_destroy_timeout(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    pool = Pool("http", spawner, config(num_workers=1, destroy_timeout=5))
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)

        async def endless() -> None:
            with pytest.raises(WorkerCrashed):
                await pool.exec(request(b"1000"))

        nursery.start_soon(endless)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await pool.aclose()
        # 5 s for the request, then the worker is stopped (it cannot read
        # the stop frame mid-request, so it is killed).
        assert 5 <= trio.current_time() - start <= 11
    assert spawner.alive == []


async def test_pool_kills_a_worker_that_ignores_the_stop_frame(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(ignore_stop=True)
    pool = Pool("http", spawner, config(num_workers=1, destroy_timeout=3))
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        start = trio.current_time()
        await pool.aclose()
        assert trio.current_time() - start == pytest.approx(3)
    [process] = spawner.started
    assert process.killed


async def test_pool_reset_returns_after_reset_timeout(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=1, reset_timeout=4) as pool:
        async with trio.open_nursery() as nursery:

            async def slow() -> None:
                await pool.exec(request(b"10"))

            nursery.start_soon(slow)
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            await pool.reset()
            assert trio.current_time() - start == pytest.approx(4)
            # New requests go to the new worker meanwhile; the slow one ends
            # on the old worker.
            assert (await pool.exec(request(b"0"))).body == b"0"
        assert len(spawner.started) == 2


async def test_pool_debug_mode_spawns_a_worker_per_request() -> None:
    spawner = FakeSpawner()
    async with running(spawner, debug=True) as pool:
        assert pool.workers == []
        for _ in range(3):
            await pool.exec(request())
        await trio.testing.wait_all_tasks_blocked()
    assert len(spawner.started) == 3
    assert spawner.alive == []


async def test_pool_cancellation_kills_every_worker() -> None:
    spawner = FakeSpawner()
    pool = Pool("http", spawner, config(num_workers=3))
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        nursery.cancel_scope.cancel()
    assert spawner.alive == []
    assert len(spawner.started) == 3


async def test_pool_fails_fast_when_no_worker_can_start(autojump_clock) -> None:
    broken = False

    async def boot(process) -> None:
        if broken:
            process.exit(255)

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=1, allocate_timeout=60) as pool:
        broken = True
        spawner.started[0].exit(1)
        await trio.sleep(1)
        start = trio.current_time()
        with pytest.raises(NoFreeWorkers, match="can start: fake worker failed"):
            await pool.exec(request())
        assert trio.current_time() == start, "no 60 s wait for a 503"
        broken = False
        await trio.sleep(11)
        assert (await pool.exec(request())).body == b"hi"


async def test_pool_fails_waiting_requests_once_no_worker_can_start(
    autojump_clock,
) -> None:
    broken = False

    async def boot(process) -> None:
        if broken:
            await trio.sleep(1)  # the request below starts waiting meanwhile
            process.exit(255)

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=1, allocate_timeout=60) as pool:
        broken = True
        spawner.started[0].exit(1)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        with pytest.raises(NoFreeWorkers, match="can start: fake worker failed"):
            await pool.exec(request())
        assert trio.current_time() - start == 1, "failed with the start, not at 60 s"
        broken = False
        await trio.sleep(11)
        assert (await pool.exec(request())).body == b"hi"


async def test_pool_reset_keeps_old_workers_serving_until_the_new_are_ready(
    autojump_clock,
) -> None:
    slow = False

    async def boot(process) -> None:
        if slow:
            await trio.sleep(1)

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=2) as pool:
        old = {w.pid for w in pool.workers}
        slow = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.reset)
            await trio.testing.wait_all_tasks_blocked()
            # The replacements boot; requests meanwhile do not wait.
            start = trio.current_time()
            for _ in range(4):
                await pool.exec(request(b"0"))
            assert trio.current_time() == start
        assert trio.current_time() - start == 1, "reset returned once replaced"
        assert {w.pid for w in pool.workers}.isdisjoint(old)
        assert all(p.returncode == 0 for p in spawner.started[:2]), "stopped"
        served_before = sum(len(php.requests) for php in spawner.php[2:])
        await pool.exec(request())
        assert sum(len(php.requests) for php in spawner.php[2:]) == served_before + 1


async def test_pool_reset_replaces_a_worker_that_was_still_starting(
    autojump_clock,
) -> None:
    booting = False

    async def boot(process) -> None:
        if booting:
            await trio.sleep(2)  # it reads the old code now, then boots

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=1) as pool:
        booting = True
        spawner.started[0].exit(1)  # its replacement starts booting
        await trio.sleep(1)
        await pool.reset()  # nothing to replace yet but the one booting
        await trio.sleep(5)  # it is up at 2 s, its replacement at 4 s
        stale = spawner.started[1]
        assert stale.returncode == 0, "replaced once it was up"
        [worker] = pool.workers
        assert worker.pid == spawner.started[2].pid


async def test_pool_reset_into_a_broken_deploy_fails_fast_and_keeps_serving(
    autojump_clock,
) -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=2, reset_timeout=60) as pool:
        old = {w.pid for w in pool.workers}

        async def broken_boot(process) -> None:
            process.exit(255)

        spawner.boot = broken_boot
        start = trio.current_time()
        with pytest.raises(WorkerStartError, match="fake worker failed"):
            await pool.reset()
        assert trio.current_time() - start < 1, "not after reset_timeout"
        for _ in range(4):
            await pool.exec(request())  # the old workers serve on
        assert {w.pid for w in pool.workers} == old
        spawner.boot = None  # fixed: the reset completes by itself
        await trio.sleep(11)
        assert {w.pid for w in pool.workers}.isdisjoint(old)
        assert len(pool.workers) == 2


async def test_pool_reruns_an_idempotent_request_whose_worker_died() -> None:
    crashed: list[int] = []

    async def die_once(php: FakePHP, payload: Payload) -> None:
        if not crashed:
            crashed.append(php.process.pid)
            php.crash()
        else:
            await php.respond(b"{}", b"answered")

    async with running(FakeSpawner(die_once), num_workers=2) as pool:
        async with pool.stream(request(), idempotent=True) as chunks:
            bodies = [chunk.body async for chunk in chunks]
        assert bodies == [b"answered"]
        assert len(crashed) == 1


async def test_pool_reruns_an_idempotent_request_only_once() -> None:
    async def die(php: FakePHP, payload: Payload) -> None:
        php.crash()

    spawner = FakeSpawner(die)
    async with running(spawner, num_workers=3) as pool:
        with pytest.raises(WorkerCrashed):
            async with pool.stream(request(), idempotent=True) as chunks:
                [chunk async for chunk in chunks]
        assert sum(1 for php in spawner.php if php.requests) == 2


async def test_pool_never_reruns_a_request_whose_worker_wrote_garbage() -> None:
    async def garble(php: FakePHP, payload: Payload) -> None:
        await php.write_raw(b"a var_dump() left in the app" * 4)

    spawner = FakeSpawner(garble)
    async with running(spawner, num_workers=2) as pool:
        with pytest.raises(WorkerCrashed, match="outside the protocol"):
            async with pool.stream(request(), idempotent=True) as chunks:
                [chunk async for chunk in chunks]
        assert sum(1 for php in spawner.php if php.requests) == 1


async def test_pool_never_hands_out_a_worker_that_died_while_free() -> None:
    # Its replacement boots slowly and its stderr never ends, so it stays on
    # the free list, its exit noticed, while requests arrive.
    async def boot(process: object) -> None:
        if len(spawner.started) > 2:
            await trio.sleep(0.3)

    spawner = FakeSpawner(boot=boot, drained=trio.Event())
    async with running(spawner, num_workers=2) as pool:
        dead = pool.workers[0]
        dead.process.exit(1)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(4):
            assert (await pool.exec(request(b"x"))).body == b"x"
        assert dead.execs == 0


async def test_pool_does_not_rerun_a_request_that_may_not_run_twice() -> None:
    async def die(php: FakePHP, payload: Payload) -> None:
        php.crash()

    async with running(FakeSpawner(die), num_workers=2) as pool:
        with pytest.raises(WorkerCrashed):
            await pool.exec(request())


async def test_pool_backs_off_from_workers_that_die_right_after_booting(
    autojump_clock,
) -> None:
    async def exit_once_booted(process) -> None:
        async def exit_soon() -> None:
            await trio.sleep(0.01)
            process.exit(1)

        if len(spawner.started) > 1:
            nursery.start_soon(exit_soon)

    async with trio.open_nursery() as nursery:
        spawner = FakeSpawner(boot=exit_once_booted)
        async with running(spawner, num_workers=1):
            spawner.started[0].exit(1)
            await trio.sleep(30)
            # Without backoff: one every 10 ms, ~3,000. With it: the pause
            # doubles from 0.1 s to 10 s.
            assert 6 <= len(spawner.started) <= 12
        nursery.cancel_scope.cancel()


async def test_pool_start_backoff_doubles_up_to_10_s(autojump_clock) -> None:
    broken = False
    attempts: list[float] = []

    async def boot(process) -> None:
        if broken:
            attempts.append(trio.current_time())
            process.exit(255)

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=1) as pool:
        await pool.exec(request())
        broken = True
        spawner.started[0].exit(1)
        await trio.sleep(60)
        broken = False
        pauses = [round(b - a, 3) for a, b in itertools.pairwise(attempts)]
        assert pauses[:9] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0]


async def test_pool_waits_for_the_slot_that_boots_when_another_fails(
    autojump_clock,
) -> None:
    # A reset: both old workers go; one replacement fails to start once,
    # the other takes 1 s to boot. Requests wait for it: no 503.
    failed_once = False
    resetting = False

    async def boot(process) -> None:
        nonlocal failed_once
        if not resetting:
            return
        if not failed_once:
            failed_once = True
            process.exit(255)
        else:
            await trio.sleep(1)

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=2, allocate_timeout=60) as pool:
        resetting = True
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.reset)
            await trio.testing.wait_all_tasks_blocked()
            replies = [await pool.exec(request(b"%d" % i)) for i in range(3)]
        assert [reply.body for reply in replies] == [b"0", b"1", b"2"]


async def test_pool_reruns_the_request_of_a_marked_worker_that_died() -> None:
    # Marked for retirement (a reset, ttl) but still serving: if it dies
    # under an idempotent request, that request is re-run like any other.
    died: list[int] = []

    async def die_once(php: FakePHP, payload: Payload) -> None:
        if not died:
            died.append(php.process.pid)
            php.crash()
        else:
            await php.respond(b"{}", b"answered")

    async with running(FakeSpawner(die_once), num_workers=2) as pool:
        for worker in pool.workers:
            pool.retire(worker, Retirement.TTL)
        async with pool.stream(request(), idempotent=True) as chunks:
            assert [chunk.body async for chunk in chunks] == [b"answered"]


async def test_pool_starts_the_max_jobs_replacement_with_the_last_job(
    autojump_clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("trio_runner.pool.pool.random.randint", lambda a, b: 0)
    booting: list[int] = []

    async def boot(process) -> None:
        booting.append(process.pid)
        await trio.sleep(1)

    spawner = FakeSpawner(sleepy, boot=boot)
    async with running(spawner, num_workers=1, max_jobs=2) as pool:
        first = spawner.started[0]
        await pool.exec(Payload(b"{}", b"0"))
        assert len(booting) == 1
        # The second request is the first worker's last: its replacement
        # boots meanwhile and takes the third one at once.
        await pool.exec(Payload(b"{}", b"1"))
        assert len(booting) == 2
        start = trio.current_time()
        assert (await pool.exec(Payload(b"{}", b"0"))).body == b"0"
        assert trio.current_time() == start
        await trio.testing.wait_all_tasks_blocked()
        assert first.returncode == 0


async def test_pool_replaces_a_worker_with_stray_bytes_after_its_answer(
    caplog,
) -> None:
    async def answer_then_garble(php: FakePHP, payload: Payload) -> None:
        answer = encode_frame(0, b"{}" + payload.body, (2,))
        await php.write_raw(answer + b"an echo after respond()")

    spawner = FakeSpawner(answer_then_garble)
    async with running(spawner, num_workers=1) as pool:
        assert (await pool.exec(request(b"1"))).body == b"1"
        # The stray bytes arrived with the answer; the next request is not
        # blamed for them: it goes to the replacement.
        assert (await pool.exec(request(b"2"))).body == b"2"
        first, second = spawner.php[:2]
        assert len(first.requests) == 1
        assert len(second.requests) == 1
    assert "while idle: b'an echo after respond()'" in caplog.text


async def test_pool_statistics_count_refusals(autojump_clock) -> None:
    async with running(
        FakeSpawner(sleepy), num_workers=1, allocate_timeout=1, max_queue_size=1
    ) as pool:
        assert pool.statistics().no_free_workers == 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.exec, request(b"5"))
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(NoFreeWorkers):  # waited allocate_timeout
                await pool.exec(request(b"0"))
            nursery.start_soon(pool.exec, request(b"0"))  # waits: the queue is full
            await trio.testing.wait_all_tasks_blocked()
            assert pool.statistics().waiting == 1
            with pytest.raises(QueueFull):
                await pool.exec(request(b"0"))
            stats = pool.statistics()
            assert (stats.working, stats.ready, stats.no_free_workers) == (1, 0, 2)
            nursery.cancel_scope.cancel()


async def test_pool_statistics_count_restarts_by_reason(autojump_clock) -> None:
    async def behave(php: FakePHP, payload: Payload) -> None:
        if payload.body == b"garbage":
            await php.write_raw(b"stray output\n")
        else:
            await sleepy(php, payload)

    spawner = FakeSpawner(behave)
    options = {"supervisor": SupervisorConfig(exec_ttl=2)}
    async with running(spawner, num_workers=1, max_jobs=1, **options) as pool:
        with pytest.raises(WorkerCrashed):
            await pool.exec(request(b"garbage"))
        with pytest.raises(WorkerTimeout):
            await pool.exec(request(b"60"))
        await pool.exec(request(b"0"))  # then retired: max_jobs = 1
        await trio.testing.wait_all_tasks_blocked()
        spawner.started[-1].exit(3)
        await trio.testing.wait_all_tasks_blocked()
        await pool.reset()
        stats = pool.statistics()
        assert stats.restarts == {
            "crashed": 1,
            "exec_ttl": 1,
            "max_jobs": 1,
            "exited": 1,
            "reset": 1,
        }
        assert stats.start_failure is None
    assert pool.statistics().restarts == stats.restarts, "shutdown is no restart"


async def test_pool_statistics_say_why_workers_cannot_start(autojump_clock) -> None:
    broken = False

    async def boot(process) -> None:
        if broken:
            process.exit(255)

    spawner = FakeSpawner(boot=boot)
    async with running(spawner, num_workers=1) as pool:
        broken = True
        spawner.started[0].exit(1)
        await trio.sleep(1)
        stats = pool.statistics()
        assert stats.workers == 0
        assert stats.start_failure is not None
        assert "fake worker failed" in stats.start_failure
        broken = False
        await trio.sleep(11)
        assert pool.statistics().start_failure is None


async def test_pool_stops_a_worker_let_go_while_handed_to_a_waiting_request() -> None:
    # A reset lets the old worker go the moment its replacement is ready. If
    # that moment falls between the worker being handed to a queued request
    # and that request running, the worker is on no free list: it must
    # still stop (it used to idle for good, and the reset waited on it).
    async def two_chunks(php: FakePHP, payload: Payload) -> None:
        await php.respond(b"{}", b"part", more=True)
        await php.respond(b"{}", payload.body)

    answers: list[bytes] = []
    async with running(FakeSpawner(two_chunks), num_workers=1) as pool:
        worker = pool.workers[0]

        async def queued() -> None:
            answers.append((await pool.exec(request(b"0"))).body)

        async with trio.open_nursery() as nursery:
            async with pool.stream(request(b"0")) as chunks:
                nursery.start_soon(queued)
                await trio.testing.wait_all_tasks_blocked()
                assert not chunks.finished
                await anext(chunks)  # the first chunk, read already
                await anext(chunks)  # the last: the worker is handed to queued()
                assert chunks.finished
                pool.retire(worker, Retirement.RESET, now=True)
            with trio.fail_after(5):
                await worker.wait_stopped()
        assert answers == [b"part0"]  # served by the replacement
        assert worker not in pool.workers


async def test_pool_logs_each_worker_start_and_stop_at_debug(caplog) -> None:
    # What `logs.channels.pool.level = "debug"` is for: every worker's life.
    caplog.set_level(logging.DEBUG, "trio_runner.pool")
    spawner = FakeSpawner()
    async with running(spawner, num_workers=1, max_jobs=1) as pool:
        first = spawner.started[0].pid
        await pool.exec(request())
    assert f"pool http: worker {first} started in " in caplog.text
    assert f"pool http: worker {first} stopped (max_jobs) after 1 request(s)" in (
        caplog.text
    )


async def test_pool_cut_in_flight_ends_running_and_waiting_requests_for_good(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=1) as pool:
        ended: list[type[BaseException]] = []

        async def one() -> None:
            try:
                await pool.exec(request(b"10"))
            except (WorkerCutAtStop, PoolClosed) as exc:
                ended.append(type(exc))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.cut_in_flight() == 3
        names = sorted(error.__name__ for error in ended)
        assert names == ["PoolClosed", "PoolClosed", "WorkerCutAtStop"]
        await trio.sleep(5)
        # The killed worker is not replaced, and the pool takes nothing more.
        assert len(spawner.started) == 1
        with pytest.raises(PoolClosed):
            await pool.exec(request(b"0"))


async def test_pool_cut_in_flight_ends_a_request_handed_a_worker_in_that_tick(
    autojump_clock,
) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=1) as pool:
        outcomes: dict[str, object] = {}

        async def first() -> None:
            outcomes["first"] = (await pool.exec(request(b"1"))).body
            # Its worker went straight to the waiting request, whose task
            # has not run yet: the stop must end that request as well.
            outcomes["ended"] = pool.cut_in_flight()

        async def waiting() -> None:
            try:
                outcomes["waiting"] = (await pool.exec(request(b"10"))).body
            except PoolClosed as exc:
                outcomes["waiting"] = type(exc)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(waiting)
        assert outcomes == {"first": b"1", "ended": 1, "waiting": PoolClosed}
        assert len(spawner.php[0].requests) == 1, "PHP never saw the second"
