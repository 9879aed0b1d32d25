"""The control commands against running servers: workers, reset, stop.

The servers are ``serve`` child processes with an ``[rpc]`` unix socket;
the commands run as child processes too (``python -m trio_runner ...``),
or in-process through ``main`` where only their messages are checked.
"""

from __future__ import annotations

import io
import os
import pty
import re
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from tests.servers import PHP, wait_for_line, worker_pids, write_config
from trio_runner import control
from trio_runner.cli import main
from trio_runner.control import format_age, format_memory
from trio_runner.rpc import RpcClient
from trio_runner.testing.process import ServerProcess, ServerStartError

TIMEOUT = 15.0


def command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trio_runner", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )


def rpc_config(tmp_path: Path, socket: Path, script: str, workers: int = 2) -> Path:
    config = write_config(tmp_path, script, num_workers=workers)
    with config.open("a") as file:
        file.write(f'\n[rpc]\nlisten = "unix://{socket}"\n')
    return config


def table_pids(output: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"│\s+(\d+) │ \w+\s+│", output)]


@pytest.mark.php
def test_workers_prints_a_table_of_the_running_workers(
    tmp_path: Path, rpc_socket: Path
) -> None:
    config = rpc_config(tmp_path, rpc_socket, "http_exit_on_path.php")
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        assert server.url is not None
        httpx.get(server.url + "/", timeout=TIMEOUT)
        result = command("workers", "-c", str(config))
        named = command("workers", "-c", str(config), "http", "jobs")
        pids = worker_pids(server.output)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Workers of pool http (2)" in out
    for column in ("PID", "Status", "Execs", "Memory", "CPU", "Age"):
        assert column in out
    assert sorted(table_pids(out)) == sorted(pids)
    assert out.count(" ready ") == 2
    assert re.search(r"│\s+1 │\s+\d+\.\d MB │\s+\d+\.\d\d% │", out), out
    assert named.returncode == 1
    # Said on stderr, as reset says it; stdout holds the tables alone.
    assert "no pool named 'jobs' (pools: http)" in named.stderr
    assert "jobs" not in named.stdout
    assert sorted(table_pids(named.stdout)) == sorted(pids)


@pytest.mark.php
def test_reset_returns_once_new_workers_serve(tmp_path: Path, rpc_socket: Path) -> None:
    config = rpc_config(tmp_path, rpc_socket, "http_exit_on_path.php")
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        assert server.url is not None
        before = set(worker_pids(server.output))
        result = command("reset", "-c", str(config))
        after = set(table_pids(command("workers", "-c", str(config)).stdout))
        unknown = command("reset", "-c", str(config), "kv")
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"pool http: reset done in \d+\.\d s\n", result.stdout)
    assert len(after) == 2 and after.isdisjoint(before)
    assert unknown.returncode == 1
    assert unknown.stderr == (
        "trio_runner: no pool named 'kv' to reset (pools: http)\n"
    )


@pytest.mark.php
def test_reset_under_load_loses_no_request(tmp_path: Path, rpc_socket: Path) -> None:
    config = rpc_config(tmp_path, rpc_socket, "http_exit_on_path.php")
    failures: list[str] = []
    answered: list[str] = []
    resets = 0
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        assert server.url is not None
        url = server.url
        stop = time.monotonic() + 3.0

        def load() -> None:
            with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
                while time.monotonic() < stop:
                    try:
                        response = client.get("/")
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                        continue
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text}")
                    else:
                        answered.append(response.text)

        threads = [threading.Thread(target=load) for _ in range(3)]
        for thread in threads:
            thread.start()
        with RpcClient(f"unix://{rpc_socket}", timeout=TIMEOUT) as rpc:
            while time.monotonic() < stop:
                assert rpc.call("resetter.Reset", "http") is True
                resets += 1
                time.sleep(0.5)
        for thread in threads:
            thread.join(TIMEOUT)
        assert server.stop(timeout=TIMEOUT) == 0
    assert failures == []
    assert resets >= 4
    assert len(answered) > 50
    # Each reset brings two new workers; the last pair may see no request.
    assert len(set(answered)) >= 2 * (resets - 1), "resets brought new workers"


@pytest.mark.php
def test_stop_signals_the_server_from_its_pid_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    pid_file = tmp_path / "rr.pid"
    server = ServerProcess(
        config, args=["-p", str(pid_file)], start_timeout=TIMEOUT
    ).start()
    try:
        assert pid_file.read_text() == f"{server.pid}\n"
        result = command("stop", "-p", str(pid_file))
        assert server.wait(TIMEOUT) == 0
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"trio_runner (pid {server.pid}) stopped\n"
    assert "SIGTERM: stopping gracefully" in server.output
    assert not pid_file.exists(), "the server removed its pid file"


@pytest.mark.php
def test_serve_refuses_the_pid_file_of_a_running_server(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    pid_file = tmp_path / "rr.pid"
    first = ServerProcess(config, args=["-p", str(pid_file)], start_timeout=TIMEOUT)
    with first:
        second = ServerProcess(
            config, args=["-p", str(pid_file)], start_timeout=TIMEOUT
        )
        try:
            with pytest.raises(ServerStartError, match="exited with code 1"):
                second.start()
        finally:
            second.stop()  # had it started after all
        assert (
            f"trio_runner: the pid file {pid_file} names a running trio_runner "
            f"(pid {first.pid}); stop that one first"
        ) in second.output
        assert pid_file.read_text() == f"{first.pid}\n", "left to the first"

        result = command("stop", "-p", str(pid_file))
        assert result.returncode == 0, result.stderr
        assert first.wait(TIMEOUT) == 0
    assert not pid_file.exists()


@pytest.mark.php
def test_serve_replaces_a_stale_pid_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    pid_file = tmp_path / "rr.pid"
    with subprocess.Popen(["sleep", "30"]) as other:
        try:
            for stale, reason in [
                ("999999999", "process 999999999 is not running"),
                (str(other.pid), f"process {other.pid} is not trio_runner"),
                ("garbage", "it holds no server pid"),
                ("1", "it holds no server pid"),  # init: never ours
            ]:
                pid_file.write_text(f"{stale}\n")
                args = ["-p", str(pid_file)]
                with ServerProcess(config, args=args, start_timeout=TIMEOUT) as server:
                    assert pid_file.read_text() == f"{server.pid}\n"
                    assert (
                        f"replacing the stale pid file {pid_file}: {reason}"
                    ) in server.output
                    assert server.stop(TIMEOUT) == 0
                assert not pid_file.exists(), "its own: removed at exit"
            assert other.poll() is None, "the other program was left alone"
        finally:
            other.kill()


@pytest.mark.php
def test_serve_leaves_a_pid_file_that_is_no_longer_its_own(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    pid_file = tmp_path / "rr.pid"
    with ServerProcess(config, args=["-p", str(pid_file)], start_timeout=TIMEOUT):
        pid_file.write_text("12345\n")  # someone else's now
    assert pid_file.read_text() == "12345\n"


@pytest.mark.php
def test_stop_force_ends_a_graceful_stop_at_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_sleep_on_path.php")
    pid_file = tmp_path / "rr.pid"
    server = ServerProcess(
        config, args=["-p", str(pid_file)], start_timeout=TIMEOUT
    ).start()
    try:
        assert server.url is not None
        # A request in flight would keep a graceful stop waiting a second.
        threading.Thread(
            target=httpx.get,
            args=(server.url + "/sleep",),
            kwargs={"timeout": TIMEOUT},
            daemon=True,
        ).start()
        wait_for_line(server, "sleeping on /sleep", timeout=TIMEOUT)
        result = command("stop", "-f", "-p", str(pid_file))
        assert server.wait(TIMEOUT) == 130
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    # In the order it happened, and said to be over.
    log = server.output
    graceful = log.index("stopping: letting requests in flight finish")
    assert graceful < log.index("again: stopping now")
    assert log.count("letting requests in flight finish") == 1
    assert "stopped at once; requests in flight were cut" in log


def test_stop_without_a_pid_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.pid"
    assert main(["stop", "-p", str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"trio_runner: no pid file at {missing}: is the server running with "
        "serve -p? (pass its path with --pid-file)\n"
    )
    stale = tmp_path / "stale.pid"
    stale.write_text("999999999\n")
    assert main(["stop", "-p", str(stale)]) == 1
    assert "is running; the pid file is stale" in capsys.readouterr().err
    # A pid reused by another program is never signalled.
    with subprocess.Popen(["sleep", "30"]) as other:
        try:
            stale.write_text(f"{other.pid}\n")
            assert main(["stop", "-p", str(stale)]) == 1
            err = capsys.readouterr().err
            assert f"process {other.pid} (from {stale}) is not trio_runner" in err
            assert other.poll() is None
        finally:
            other.kill()


def test_cli_help_lists_the_control_commands_and_options(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("workers", "reset", "stop"):
        assert name in out
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert "--dotenv" in out and "--pid-file" in out


@pytest.mark.parametrize("command_name", ["workers", "reset"])
def test_control_commands_say_when_no_server_answers(
    tmp_path: Path, rpc_socket: Path, command_name: str, capsys
) -> None:
    config = rpc_config(tmp_path, rpc_socket, "echo.php")
    assert main([command_name, "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"trio_runner: no trio_runner answers RPC at unix://{rpc_socket}: no such "
        f"file or directory; is the server running with [rpc] listen = "
        f'"unix://{rpc_socket}"?\n'
    )


def test_control_commands_need_an_rpc_section(tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path, "echo.php")
    assert main(["workers", "-c", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{config} has no [rpc] section" in err


def test_dotenv_fills_the_environment_before_the_config(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RPC_PORT", raising=False)
    monkeypatch.setenv("ALREADY", "kept")
    config = write_config(tmp_path, "echo.php")
    with config.open("a") as file:
        file.write('\n[rpc]\nlisten = "tcp://127.0.0.1:${RPC_PORT}"\n')
    dotenv = tmp_path / ".env"
    dotenv.write_text("RPC_PORT=18899\nALREADY=replaced\n")
    assert main(["workers", "-c", str(config), "--dotenv", str(dotenv)]) == 1
    assert "no trio_runner answers RPC at tcp://127.0.0.1:18899" in (
        capsys.readouterr().err
    )
    assert os.environ["ALREADY"] == "kept", "variables already set win"
    assert main(["serve", "-c", str(config), "--dotenv", str(tmp_path / "no")]) == 1
    assert capsys.readouterr().err == (
        f"trio_runner: --dotenv {tmp_path / 'no'}: no such file\n"
    )


@pytest.mark.php
def test_workers_interactive_redraws_until_ctrl_c(
    tmp_path: Path, rpc_socket: Path
) -> None:
    config = rpc_config(tmp_path, rpc_socket, "http_exit_on_path.php", workers=1)
    with ServerProcess(config, start_timeout=TIMEOUT):
        main_end, child_end = pty.openpty()
        child = subprocess.Popen(
            [sys.executable, "-m", "trio_runner", "workers", "-i", "-c", str(config)],
            stdin=child_end,
            stdout=child_end,
            stderr=child_end,
            env={**os.environ, "TERM": "xterm", "COLUMNS": "100", "LINES": "30"},
        )
        os.close(child_end)
        screen = b""
        deadline = time.monotonic() + TIMEOUT
        try:
            # Two draws of the table: the first and one refresh.
            while screen.count(b"Workers of pool http") < 2:
                assert time.monotonic() < deadline, screen.decode(errors="replace")
                ready, _, _ = select.select([main_end], [], [], 0.1)
                if ready:
                    screen += os.read(main_end, 65536)
            child.send_signal(signal.SIGINT)
            # A deadline of its own: on a loaded machine the start-up and the
            # two draws may have used most of the first one.
            deadline = time.monotonic() + TIMEOUT
            # Go on reading, as a terminal does: a child whose last redraw
            # finds the pty full would wait on the test for good.
            while child.poll() is None:
                tail = screen[-500:].decode(errors="replace")
                assert time.monotonic() < deadline, f"ignored Ctrl-C: {tail}"
                ready, _, _ = select.select([main_end], [], [], 0.1)
                if ready:
                    try:
                        screen += os.read(main_end, 65536)
                    except OSError:  # EIO: the child closed its end
                        break
            code = child.wait(TIMEOUT)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            os.close(main_end)
    assert code == 0
    assert b"ready" in screen


def test_format_memory_and_age() -> None:
    assert format_memory(23 * 1024 * 1024 + 512 * 1024) == "23.5 MB"
    assert format_age(12.7) == "12s"
    assert format_age(245) == "4m05s"
    assert format_age(3723) == "1h02m03s"
    assert format_age(-3) == "0s"


def test_workers_interactive_without_a_terminal_prints_a_table_each_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Piped (`workers -i | tee`), a live redraw would print nothing until
    # Ctrl-C: each refresh is printed after the last instead.
    worker = {
        "pid": 4242,
        "statusStr": "ready",
        "numExecs": 3,
        "memoryUsage": 1024,
        "CPUPercent": 0.0,
        "created": time.time() * 1e9,
    }

    class Client:
        def call(self, method: str, argument: object) -> object:
            assert (method, argument) == ("informer.Workers", "http")
            return {"workers": [worker]}

    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(control.time, "sleep", sleep)
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=100)
    client: Any = Client()
    assert control._workers(client, ["http"], True, console) == 0
    assert out.getvalue().count("Workers of pool http (1)") == 3
    assert out.getvalue().count("4242") == 3


@pytest.mark.php
def test_reset_into_a_broken_script_quotes_php(
    tmp_path: Path, rpc_socket: Path
) -> None:
    # The operator who runs `reset` may not be reading the server's log:
    # what PHP said goes to them too, and the old workers serve on.
    script = tmp_path / "worker.php"
    script.write_text((PHP / "http_exit_on_path.php").read_text())
    config = tmp_path / "roadrunner.toml"
    config.write_text(
        f'version = "3"\n[server]\ncommand = "php {script}"\n'
        '[http]\naddress = "127.0.0.1:0"\n[http.pool]\nnum_workers = 1\n'
        f'[rpc]\nlisten = "unix://{rpc_socket}"\n'
    )
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        assert server.url is not None
        before = httpx.get(server.url + "/", timeout=TIMEOUT).text
        script.write_text("<?php syntax error\n")
        result = command("reset", "-c", str(config))
        after = httpx.get(server.url + "/", timeout=TIMEOUT).text
        script.write_text((PHP / "http_exit_on_path.php").read_text())
    assert result.returncode == 1
    assert "the reset failed, the old workers serve on" in result.stderr
    assert "syntax error" in result.stderr
    assert after == before
