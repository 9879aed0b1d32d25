"""The reaper: what it kills when its server dies, and that it never lingers.

The server here is a small Python process that owns a ``Reaper``; the
"workers" are ``sleep`` processes in process groups of their own, children
of the test, so the test reaps them and can tell killed from exited. Only
processes a test started are signalled, by pid. Every wait has a bound.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import trio

from tests.php_workers import child_processes, php
from tests.servers import running
from trio_runner.config.model import PoolConfig
from trio_runner.pool import open_pool
from trio_runner.process.reaper import MARK, Reaper

ROOT = Path(__file__).parents[2]

# Watches the groups in argv[1] (comma-separated), watches and then
# forgets those in argv[2], prints the reaper's pid and waits to be killed.
_SERVER = textwrap.dedent(
    """
    import sys, trio
    from trio_runner.process.reaper import Reaper

    async def main():
        reaper = Reaper()
        watched, forgotten = ([int(g) for g in a.split(",") if g] for a in sys.argv[1:])
        for pgid in watched + forgotten:
            reaper.watch(pgid)
        for pgid in forgotten:
            await reaper.forget(pgid)
        print(reaper.pid, flush=True)
        await trio.sleep_forever()

    trio.run(main)
    """
)


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Four ``sleep 60`` processes, each leading its own process group."""
    started = [subprocess.Popen(["sleep", "60"], process_group=0) for _ in range(4)]
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def wait_gone(pids: list[int], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while running(pids):
        assert time.monotonic() < deadline, f"still running: {running(pids)}"
        time.sleep(0.02)


def ignored_signals(pid: int) -> set[int]:
    """The signals ``pid`` ignores, from /proc (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    [mask] = [
        line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")
    ]
    bits = int(mask, 16)
    return {signum for signum in range(1, 65) if bits >> (signum - 1) & 1}


def test_reaper_kills_watched_groups_when_its_server_is_killed(
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    watched, forgotten, unknown = sleepers[:2], sleepers[2:3], sleepers[3:]
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SERVER,
            ",".join(str(p.pid) for p in watched),
            ",".join(str(p.pid) for p in forgotten),
        ],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert server.stdout is not None
        with server.stdout:
            reaper = int(server.stdout.readline())
        info = psutil.Process(reaper)
        assert MARK in info.cmdline()
        assert os.getpgid(reaper) == reaper, "a process group of its own"
        assert info.memory_info().rss < 30 << 20, "no trio in it"

        # A Ctrl-C or a stop signal meant for the server does not end it,
        # once it has started up.
        wanted = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
        deadline = time.monotonic() + 5
        while not wanted <= ignored_signals(reaper):
            assert time.monotonic() < deadline, ignored_signals(reaper)
            time.sleep(0.01)
        os.kill(reaper, signal.SIGINT)
        os.kill(reaper, signal.SIGTERM)
        time.sleep(0.1)
        assert running([reaper]) == [reaper]
        assert [p.poll() for p in sleepers] == [None] * 4

        server.kill()  # the kernel closes its end of the pipe
        server.wait(5)
        for process in watched:
            assert process.wait(2) == -signal.SIGKILL
        wait_gone([reaper], timeout=2)
        # Told gone (their pids could be someone else's now), or never told.
        assert [p.poll() for p in forgotten + unknown] == [None, None]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


async def test_reaper_stops_and_is_reaped_once_nothing_is_watched(
    sleepers: list[subprocess.Popen[bytes]],
) -> None:
    reaper = Reaper()
    with trio.fail_after(10):
        assert reaper.pid is None, "started with the first worker only"
        async with reaper.hold():
            reaper.watch(sleepers[0].pid)
            pid = reaper.pid
            assert pid is not None
            await reaper.forget(sleepers[0].pid)
            assert reaper.pid == pid, "held: it stays for the next worker"
        assert reaper.pid is None

        # Without a holder (a spawner used on its own) it goes with the last
        # group forgotten.
        reaper.watch(sleepers[1].pid)
        reaper.watch(sleepers[2].pid)
        await reaper.forget(sleepers[1].pid)
        assert reaper.pid is not None
        await reaper.forget(sleepers[2].pid)
        assert reaper.pid is None
    assert [p.poll() for p in sleepers] == [None] * 4
    assert {child.pid for child in child_processes()} == {p.pid for p in sleepers}


async def test_reaper_that_died_is_warned_about_once(
    sleepers: list[subprocess.Popen[bytes]], caplog: pytest.LogCaptureFixture
) -> None:
    reaper = Reaper()
    with trio.fail_after(10):
        async with reaper.hold():
            reaper.watch(sleepers[0].pid)
            pid = reaper.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)  # the reaper this test started
            while running([pid]):  # noqa: ASYNC110 (no event for a pid)
                await trio.sleep(0.01)
            for process in sleepers[1:]:
                reaper.watch(process.pid)
            for process in sleepers:
                await reaper.forget(process.pid)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert f"the reaper (pid {pid}) exited" in warnings[0].getMessage()
        assert reaper.pid is None
    assert {child.pid for child in child_processes()} == {p.pid for p in sleepers}


@pytest.mark.php
async def test_reaper_runs_while_a_pool_runs_and_is_reaped_with_it() -> None:
    with trio.fail_after(10):
        async with open_pool(php("echo.php"), config=PoolConfig(num_workers=2)) as pool:
            workers = {worker.pid for worker in pool.workers}
            children = {child.pid: child for child in child_processes()}
            [reaper] = set(children) - workers
            assert MARK in children[reaper].cmdline()
            assert os.getpgid(reaper) == reaper
    assert child_processes() == [], "the reaper is gone and reaped"
