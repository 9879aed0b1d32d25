"""Resetting a running server: SIGUSR1, and ``[reload]`` on a file change."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import PHP, running, wait_for_line, worker_pids, write_config
from trio_runner.testing.process import ServerProcess

pytestmark = pytest.mark.php

TIMEOUT = 10.0


def pids_answering(url: str, count: int) -> set[str]:
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        return {client.get("/").text for _ in range(count)}


def test_sigusr1_resets_every_worker(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php", num_workers=2)
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        assert server.url is not None
        before = {f"pid {pid}" for pid in worker_pids(server.output)}
        assert pids_answering(server.url, 10) == before
        server.send_signal(signal.SIGUSR1)
        wait_for_line(server, "SIGUSR1: resetting the workers", timeout=TIMEOUT)
        wait_for_line(server, "pool http: resetting 2 worker(s)", timeout=TIMEOUT)
        # The old workers serve until their replacements are ready, then
        # stop; from then on every answer comes from a new one.
        old = worker_pids(server.output)
        deadline = time.monotonic() + TIMEOUT
        while running(old):
            assert time.monotonic() < deadline, server.output
            time.sleep(0.02)
        after = pids_answering(server.url, 10)
        assert after.isdisjoint(before)
        assert after
        assert server.stop(timeout=TIMEOUT) == 0


def test_reload_resets_the_pool_when_a_watched_file_changes(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php", num_workers=1)
    watched = tmp_path / "app"
    watched.mkdir()
    with config.open("a") as file:
        file.write(
            '\n[reload]\ninterval = "100ms"\n[reload.services.http]\ndirs = ["app"]\n'
        )
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        assert server.url is not None
        before = pids_answering(server.url, 3)
        deadline = time.monotonic() + TIMEOUT
        n = 0
        while "resetting pool http" not in server.output:
            assert time.monotonic() < deadline, server.output
            n += 1
            (watched / "Controller.php").write_text(f"<?php // {n}\n")
            time.sleep(0.3)
        assert "Controller.php changed; resetting pool http" in server.output
        wait_for_line(server, "pool http: resetting 1 worker(s)", timeout=TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while pids_answering(server.url, 1) == before:
            assert time.monotonic() < deadline
        assert server.stop(timeout=TIMEOUT) == 0


def test_reload_into_a_broken_script_keeps_the_old_workers_serving(
    tmp_path: Path,
) -> None:
    # The commonest reload of all: a save with a typo. The reset fails, the
    # server stays up on the old workers, and the save that fixes the typo
    # brings new ones.
    app = tmp_path / "app"
    app.mkdir()
    script = app / "worker.php"
    good = (PHP / "http_exit_on_path.php").read_text()
    script.write_text(good)
    config = tmp_path / "roadrunner.toml"
    config.write_text(
        'version = "3"\n[server]\ncommand = "php app/worker.php"\n'
        '[http]\naddress = "127.0.0.1:0"\n[http.pool]\nnum_workers = 1\n'
        '[reload]\ninterval = "100ms"\n[reload.services.http]\ndirs = ["app"]\n'
    )
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        assert server.url is not None
        before = pids_answering(server.url, 3)
        script.write_text("<?php syntax error\n")
        wait_for_line(server, "the new workers cannot start", timeout=TIMEOUT)
        assert pids_answering(server.url, 3) == before  # the old worker serves on
        assert server.process is not None and server.process.poll() is None
        script.write_text(good)
        deadline = time.monotonic() + TIMEOUT
        while pids_answering(server.url, 1) == before:
            assert time.monotonic() < deadline, server.output
            time.sleep(0.05)
        assert server.stop(timeout=TIMEOUT) == 0
    assert "syntax error" in server.output  # PHP's own words are logged
