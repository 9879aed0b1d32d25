"""The pytest fixtures of trio_runner.testing, used as a project would use them.

The plugin is registered through its entry point, so the fixtures need no
import here. Each test starts real PHP; a start that fails must raise with
the worker's own error within seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import trio

from tests.servers import EXAMPLES, PHP, running, worker_pids, write_config
from trio_runner.errors import WorkerStartError
from trio_runner.testing.plugin import ServerFactory
from trio_runner.testing.process import ServerProcess, ServerStartError

pytestmark = pytest.mark.php
pytest_plugins = ["pytester"]

TIMEOUT = 10.0
BOOT_FAILURE = "the app cannot boot: database unreachable"


async def test_php_server_serves_a_script(php_server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        server = await php_server(script=PHP / "http_exit_on_path.php")
        [worker] = server.pools["http"].workers
        assert server.http_url is not None
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            response = await client.get("/")
        assert response.status_code == 200
        assert response.text == f"pid {worker.pid}"


async def test_php_server_serves_a_config_file(php_server: ServerFactory) -> None:
    with trio.fail_after(TIMEOUT):
        server = await php_server(EXAMPLES / "hello" / "roadrunner.toml", num_workers=1)
        [worker] = server.pools["http"].workers
        assert server.http_address is not None
        assert server.http_address.startswith("127.0.0.1:")
        assert server.http_address != "127.0.0.1:8080"  # the file's port
        assert server.http_url is not None
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            response = await client.get("/")
        assert response.status_code == 200
        assert response.text == f"Hello from PHP (pid {worker.pid})"


async def test_php_server_fails_fast_with_the_workers_error(
    php_server: ServerFactory,
) -> None:
    with trio.fail_after(5), pytest.raises(WorkerStartError, match=BOOT_FAILURE):
        await php_server(script=PHP / "http_throw_on_boot.php")


def test_php_server_process_serves_and_stops(
    php_server_process: Callable[..., ServerProcess],
) -> None:
    server = php_server_process(
        EXAMPLES / "hello" / "roadrunner.toml", start_timeout=TIMEOUT
    )
    workers = worker_pids(server.output)
    assert server.url is not None
    response = httpx.get(server.url, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.text.startswith("Hello from PHP (pid ")

    assert server.stop(timeout=TIMEOUT) == 0
    assert running(workers) == []


def test_php_server_process_fails_fast_with_the_workers_error(
    php_server_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    config = write_config(tmp_path, "http_throw_on_boot.php")
    start = time.monotonic()
    with pytest.raises(ServerStartError, match="exited with code 1") as error:
        php_server_process(config, start_timeout=TIMEOUT)
    assert time.monotonic() - start < 5
    assert BOOT_FAILURE in str(error.value)


def test_php_server_stops_its_workers_after_the_test(
    pytester: pytest.Pytester,
) -> None:
    # The second test runs after the first one's teardown, in the same
    # process: a worker still running there was left behind by the fixture
    # (once the inner pytest exits, its workers would see EOF and go).
    pids = pytester.path / "pids"
    pytester.makepyfile(
        f"""
        from pathlib import Path

        import psutil

        async def test_serve(php_server):
            server = await php_server(
                script={str(PHP / "http_exit_on_path.php")!r}, num_workers=2
            )
            pids = (str(w.pid) for w in server.pools["http"].workers)
            Path({str(pids)!r}).write_text(" ".join(pids))

        def test_no_worker_is_left():
            pids = [int(pid) for pid in Path({str(pids)!r}).read_text().split()]
            assert len(pids) == 2
            assert not any(psutil.pid_exists(pid) for pid in pids)
        """
    )
    result = pytester.runpytest("-o", "trio_mode=true", "-W", "error")
    result.assert_outcomes(passed=2)
