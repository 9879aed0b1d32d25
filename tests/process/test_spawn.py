"""Spawning real PHP workers: the handshake, the environment, start failures.

Every start failure must be a ``WorkerStartError`` that quotes what the
worker itself said, with no process left behind (pool tests with fakes
cover the pool's side of this; here the output and the processes are
real).
"""

from __future__ import annotations

import json
import os
import pwd

import psutil
import pytest
import trio

from tests.php_workers import PHP_DIR, child_processes, is_gone, php, request
from trio_runner._version import RR_VERSION
from trio_runner.config.model import PoolConfig
from trio_runner.errors import WorkerStartError
from trio_runner.pool import open_pool
from trio_runner.process import PHP_LIBRARY, ProcessSpawner, Worker, worker_environment
from trio_runner.process.terminate import describe_exit
from trio_runner.protocol import Response, State

pytestmark = pytest.mark.php


async def test_spawn_handshakes_over_pipes() -> None:
    spawner = ProcessSpawner(
        argv=php("echo.php"), env=worker_environment(relay="pipes", mode="http")
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            spawned = await spawner.spawn(task_nursery=nursery, timeout=10)
            assert spawned.link.pid == spawned.process.pid
            assert spawned.link.connection.state is State.IDLE

            worker = Worker(spawned)
            await worker.request(request(b"pid"))
            event = await worker.next_event()
            assert isinstance(event, Response)
            assert event.payload.body == b"%d" % spawned.process.pid

            worker.dismiss()
            await worker.run(grace=5)
    assert spawned.process.returncode == 0, "exited on the stop frame"
    assert child_processes() == []


@pytest.mark.parametrize("rpc", [None, "tcp://127.0.0.1:6001"])
async def test_spawn_environment_has_roadrunner_variables(
    monkeypatch: pytest.MonkeyPatch, rpc: str | None
) -> None:
    monkeypatch.delenv("RR_RPC", raising=False)
    monkeypatch.setenv("INHERITED_FROM_SERVER", "yes")
    monkeypatch.setenv("APP_ENV", "inherited")
    with trio.fail_after(10):
        async with open_pool(
            php("report_env.php"),
            config=PoolConfig(num_workers=1),
            name="jobs",
            env={"app_env": "from-config", "Mixed_Case": "1"},
            rpc=rpc,
        ) as pool:
            env = json.loads((await pool.exec(request(b"env"))).body)

    assert env["RR_RELAY"] == "pipes"
    assert env["RR_MODE"] == "jobs"
    assert env["RR_VERSION"] == RR_VERSION
    assert env["TRIO_RUNNER_PHP"] == str(PHP_LIBRARY)
    assert env["INHERITED_FROM_SERVER"] == "yes"
    assert env["APP_ENV"] == "from-config", "server env wins over inherited"
    assert env["MIXED_CASE"] == "1"
    assert "app_env" not in env and "Mixed_Case" not in env
    if rpc is None:
        assert "RR_RPC" not in env
    else:
        assert env["RR_RPC"] == rpc


async def start_failure(command: list[str]) -> WorkerStartError:
    """Start two workers running ``command``; return the error it gave."""
    with trio.fail_after(10):
        with pytest.raises(WorkerStartError) as info:
            async with open_pool(command, config=PoolConfig(num_workers=2)):
                pytest.fail(f"{command} started")
    assert child_processes() == [], "a worker outlived its failed start"
    if info.value.pid is not None:
        assert is_gone(info.value.pid)
    return info.value


async def test_spawn_missing_script_quotes_php() -> None:
    error = await start_failure(php("no_such_script.php"))
    message = str(error)
    assert "Could not open input file" in message
    assert "no_such_script.php" in message
    assert "check server.command" in message
    assert error.pid is not None


async def test_spawn_missing_command_names_it() -> None:
    error = await start_failure(["no-such-php-binary", "worker.php"])
    assert "cannot start worker command" in str(error)
    assert "no-such-php-binary" in str(error)
    assert "No such file or directory" in str(error)


# php.ini decides where PHP reports a fatal error: the log (stderr here) or
# the display (stdout, the protocol channel in pipe mode). Both must reach
# the message.
@pytest.mark.parametrize(
    "ini",
    [
        ["-d", "log_errors=1", "-d", "display_errors=0"],
        ["-d", "log_errors=0", "-d", "display_errors=stdout"],
    ],
    ids=["fatal-on-stderr", "fatal-on-stdout"],
)
async def test_spawn_crash_on_boot_quotes_the_fatal_error(ini: list[str]) -> None:
    error = await start_failure(["php", *ini, str(PHP_DIR / "crash_on_boot.php")])
    message = str(error)
    assert "failed to start" in message
    assert "Uncaught RuntimeException" in message
    assert "crash_on_boot: the database is unreachable" in message
    assert "crash_on_boot: the database is unreachable" in error.output
    # Log records quote what the stderr pump has not logged already.
    on_stdout = "display_errors=stdout" in ini
    assert ("the database is unreachable" in error.summary) == on_stdout


async def test_spawn_garbage_on_stdout_at_boot_is_quoted() -> None:
    error = await start_failure(php("writes_to_stdout.php", "boot"))
    message = str(error)
    assert "wrote to stdout instead of answering the handshake" in message
    assert "writes_to_stdout: debug output at boot" in message


async def test_spawn_timeout_quotes_what_the_worker_said() -> None:
    with trio.fail_after(10):
        with pytest.raises(WorkerStartError) as info:
            async with open_pool(
                php("slow_boot.php"),
                config=PoolConfig(num_workers=1, allocate_timeout=1),
            ):
                pytest.fail("a worker that never answers started")
    message = str(info.value)
    assert "did not answer the handshake within 1 s (allocate_timeout)" in message
    assert "slow_boot: waiting for the database" in message
    assert "exit code" not in message, "we killed it; it did not exit"
    assert child_processes() == []


async def test_spawn_runs_workers_as_server_user() -> None:
    if os.geteuid() != 0:
        pytest.skip("only root can start workers as another user")
    nobody = pwd.getpwnam("nobody")
    spawner = ProcessSpawner(
        argv=php("echo.php"),
        env=worker_environment(relay="pipes", mode="http"),
        user="nobody",
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            spawned = await spawner.spawn(task_nursery=nursery, timeout=10)
            process = psutil.Process(spawned.process.pid)
            assert process.uids().real == nobody.pw_uid
            assert process.gids().real == nobody.pw_gid
            worker = Worker(spawned)
            worker.dismiss()
            await worker.run(grace=5)


async def test_spawn_unknown_server_user_is_refused() -> None:
    spawner = ProcessSpawner(
        argv=php("echo.php"),
        env=worker_environment(relay="pipes", mode="http"),
        user="no-such-user-here",
    )
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(WorkerStartError, match="'no-such-user-here' does not"):
                await spawner.spawn(task_nursery=nursery, timeout=10)


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (3, "exit code 3"),
        (0, "exit code 0"),
        (-9, "killed by SIGKILL"),
        (-11, "killed by SIGSEGV"),
    ],
)
def test_describe_exit_names_the_signal(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text
