"""Resetting a running server: SIGUSR1, and ``[reload]`` on a file change."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.servers import wait_for_line, worker_pids, write_config
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
        # The replacements start one by one: until the second is up, the
        # first may answer everything (the lean server answers 10 requests
        # in a few milliseconds).
        after: set[str] = set()
        deadline = time.monotonic() + TIMEOUT
        while len(after) < 2 and time.monotonic() < deadline:
            after |= pids_answering(server.url, 10)
        assert after.isdisjoint(before)
        assert len(after) == 2
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
