"""Load while the pool churns: no request is dropped (#4, must show).

Keep-alive clients send GETs for 10 s at two workers that retire every 5
or 6 requests (``max_jobs``), while the test resets the pool with SIGUSR1
every second and SIGKILLs one of the server's workers now and then. Every
request must answer 200: retirements hand over to replacements started
in time, resets let requests finish, and a GET whose worker is killed
under it is re-run on another.

Bounded: 10 s of load, and every client request has a timeout. Only the
server this test started, and its own child processes, get signals.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest

from tests.servers import is_reaper, write_config
from trio_runner.testing.process import ServerProcess

pytestmark = pytest.mark.php

LOAD_SECONDS = 10.0
CLIENTS = 4
TIMEOUT = 10.0


def _client(url: str, stop: threading.Event) -> collections.Counter[str]:
    outcomes: collections.Counter[str] = collections.Counter()
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        while not stop.is_set():
            try:
                response = client.get("/pid")
            except httpx.HTTPError as exc:
                outcomes[type(exc).__name__] += 1
                continue
            if response.status_code == 200:
                outcomes["200"] += 1
            else:
                outcomes[f"{response.status_code}: {response.text.strip()}"] += 1
    return outcomes


def _workers(server: ServerProcess) -> list[psutil.Process]:
    assert server.pid is not None
    try:
        children = psutil.Process(server.pid).children()
    except psutil.NoSuchProcess:
        return []
    alive = []
    for child in children:
        try:
            if child.status() != psutil.STATUS_ZOMBIE and not is_reaper(child):
                alive.append(child)
        except psutil.NoSuchProcess:
            pass  # a worker that left since children() listed it
    return alive


def test_load_survives_max_jobs_resets_and_kills(
    php_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    config = write_config(tmp_path, "http_sleep.php", num_workers=2)
    server = php_server_process(
        config, overrides=["http.pool.max_jobs=5"], start_timeout=TIMEOUT
    )
    assert server.url is not None and server.pid is not None
    chaos = random.Random(4)  # the same schedule every run
    stop = threading.Event()
    resets = kills = 0
    with ThreadPoolExecutor(CLIENTS) as executor:
        clients = [executor.submit(_client, server.url, stop) for _ in range(CLIENTS)]
        try:
            began = time.monotonic()
            next_kill = began + chaos.uniform(1.5, 3.0)
            while (now := time.monotonic()) - began < LOAD_SECONDS:
                time.sleep(1.0)
                # The server must live through it all: if it died, this
                # raises, and the clients are stopped all the same.
                assert server.process is not None and server.process.poll() is None, (
                    server.output
                )
                os.kill(server.pid, signal.SIGUSR1)
                resets += 1
                if now >= next_kill and (workers := _workers(server)):
                    with contextlib.suppress(psutil.NoSuchProcess):  # just left
                        chaos.choice(workers).kill()
                    kills += 1
                    next_kill = now + chaos.uniform(1.5, 3.0)
        finally:
            stop.set()
        outcomes: collections.Counter[str] = collections.Counter()
        for future in clients:
            outcomes += future.result(TIMEOUT)

    assert resets >= 9 and kills >= 3
    assert outcomes["200"] > 200, outcomes
    assert set(outcomes) == {"200"}, outcomes
