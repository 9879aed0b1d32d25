"""The command line: its help and version, and ``serve`` as a child process.

``serve`` runs real PHP workers from tests/php/ with a config written to the
test's directory. Start-up failures must end the process at once with one
readable message; a stop, graceful or forced, must leave no PHP process.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.servers import (
    running,
    tagged_environment,
    tagged_processes,
    wait_for_line,
    worker_pids,
    write_config,
)
from trio_runner import RR_VERSION, __version__
from trio_runner.cli import main
from trio_runner.testing.process import ServerProcess

TIMEOUT = 10.0


def serve(
    *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m trio_runner serve <args>``, run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "trio_runner", "serve", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
        check=False,
    )


def test_cli_version_names_the_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    version = f"trio_runner {__version__} (RoadRunner protocol {RR_VERSION})\n"
    assert capsys.readouterr().out == version


def test_cli_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "serve" in out
    assert "php-lib" in out


def test_cli_serve_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in ("--config", "--workdir", "--override", "--silent"):
        assert option in out


def test_cli_without_a_command_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().out


def test_cli_php_lib_prints_the_autoloader(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["php-lib"]) == 0
    path = Path(capsys.readouterr().out.rstrip("\n"))
    assert path.is_absolute()
    assert path.name == "autoload.php"
    assert path.is_file()


def test_serve_missing_config_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = serve("-c", str(missing))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert f"config file not found: {missing}" in result.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("num_wokers = 2", "unknown key http.pool.num_wokers"),
        ('num_workers = "four"', "http.pool.num_workers must be an integer"),
    ],
    ids=["misspelled-key", "non-numeric-num-workers"],
)
def test_serve_bad_config_is_one_line(tmp_path: Path, line: str, message: str) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    config.write_text(config.read_text().replace("num_workers = 1", line))
    result = serve("-c", str(config))
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert message in result.stderr


@pytest.mark.php
@pytest.mark.parametrize(
    ("overrides", "output"),
    [
        (
            ["-o", "server.command=/no/such/php worker.php"],
            "cannot start worker command '/no/such/php worker.php': "
            "No such file or directory",
        ),
        (
            [],
            "Uncaught RuntimeException: the app cannot boot: database unreachable",
        ),
    ],
    ids=["bad-command", "throws-at-boot"],
)
def test_serve_fails_fast_when_a_worker_cannot_start(
    tmp_path: Path, overrides: list[str], output: str
) -> None:
    config = write_config(tmp_path, "http_throw_on_boot.php", num_workers=2)
    start = time.monotonic()
    result = serve("-c", str(config), *overrides)
    assert time.monotonic() - start < 5
    assert result.returncode == 1
    log = result.stderr
    assert log.count("start-up failed: ") == 1
    assert output in log.partition("start-up failed: ")[2]
    # No retry: no worker pid beyond the two first ones shows up.
    pids = {word for word in log.split() if word.startswith("pid=")}
    assert len(pids) <= 2


@pytest.mark.php
def test_serve_reports_an_address_in_use(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    env, tag = tagged_environment()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = serve("-c", str(config), "-o", f"http.address={address}", env=env)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert f"cannot listen on {address}: Address already in use" in errors[0]
    assert "Traceback" not in result.stderr
    assert tagged_processes(tag) == []


@pytest.mark.php
def test_serve_replaces_a_worker_that_exits_mid_request(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    with ServerProcess(config, start_timeout=TIMEOUT) as server:
        [first] = worker_pids(server.output)
        assert server.url is not None
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            assert client.get("/").text == f"pid {first}"

            died = client.get("/die")
            assert died.status_code == 500
            assert died.text == "The PHP worker failed while handling the request.\n"

            after = client.get("/")
            assert after.status_code == 200
            assert after.text.startswith("pid ")
            assert after.text != f"pid {first}"
        assert running([first]) == []
        assert server.stop(timeout=TIMEOUT) == 0


@pytest.mark.php
@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT], ids=lambda signum: signum.name
)
def test_serve_stops_cleanly_on_signal(tmp_path: Path, signum: signal.Signals) -> None:
    config = write_config(tmp_path, "http_sleep_on_path.php", num_workers=2)
    env, tag = tagged_environment()
    server = ServerProcess(config, env=env, start_timeout=TIMEOUT).start()
    try:
        workers = worker_pids(server.output)
        assert server.url is not None
        with ThreadPoolExecutor(1) as executor:
            in_flight = executor.submit(
                httpx.get, server.url + "/sleep", timeout=TIMEOUT
            )
            wait_for_line(server, "sleeping on /sleep", timeout=TIMEOUT)
            server.send_signal(signum)
            response = in_flight.result(TIMEOUT)
        assert server.wait(TIMEOUT) == 0
    finally:
        server.stop()

    assert response.status_code == 200
    assert response.text == "done /sleep"
    assert f"{signum.name}: stopping gracefully" in server.output
    assert server.lines[-1].endswith("server  stopped")
    assert running(workers) == []
    assert tagged_processes(tag) == []


@pytest.mark.php
def test_serve_second_sigint_forces_the_exit(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_sleep_on_path.php", num_workers=2)
    env, tag = tagged_environment()
    server = ServerProcess(config, env=env, start_timeout=TIMEOUT).start()
    try:
        workers = worker_pids(server.output)
        assert server.url is not None
        with ThreadPoolExecutor(4) as executor:
            # Requests in flight keep the graceful stop from ending before
            # the second signal arrives; two more wait for their workers,
            # and must not hold up the exit either.
            url = server.url + "/sleep"
            cut = [executor.submit(httpx.get, url, timeout=TIMEOUT) for _ in range(4)]
            wait_for_line(server, "sleeping on /sleep", timeout=TIMEOUT)
            server.send_signal(signal.SIGINT)
            time.sleep(0.2)
            server.send_signal(signal.SIGINT)
            forced = time.monotonic()
            assert server.wait(TIMEOUT) == 130
            assert time.monotonic() - forced < 1.0
            for request in cut:
                with contextlib.suppress(httpx.TransportError):  # or cut off
                    answer = request.result(TIMEOUT)
                    # Not the worker's fault: not "the worker failed", not 500.
                    assert answer.status_code == 503
                    assert answer.text == "The server is shutting down.\n"
    finally:
        server.stop()

    assert "SIGINT again: stopping now" in server.output
    assert "worker_crashed" not in server.output
    assert "the worker failed" not in server.output
    assert running(workers) == []
    assert tagged_processes(tag) == []


def test_serve_without_http_section_has_nothing_to_serve(tmp_path: Path) -> None:
    config = tmp_path / "roadrunner.toml"
    config.write_text('version = "3"\n[server]\ncommand = "php worker.php"\n')
    result = serve("-c", str(config))
    assert result.returncode == 1
    assert "nothing to serve: the configuration has no [http] section" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_unwritable_log_file_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    result = serve("-c", str(config), "-o", "logs.output=missing/dir/rr.log")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot open logs.output" in result.stderr
    assert "No such file or directory" in result.stderr


@pytest.mark.php
def test_serve_reports_a_relay_address_in_use(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http_exit_on_path.php")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        relay = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        result = serve("-c", str(config), "-o", f"server.relay={relay}")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1
    assert (
        f"server.relay: cannot listen on {relay}: Address already in use" in errors[0]
    )
    assert "Traceback" not in result.stderr


@pytest.mark.php
@pytest.mark.parametrize("front", ["auto", "hypercorn"])
def test_serve_answers_503_to_requests_left_when_the_grace_period_ends(
    tmp_path: Path, front: str
) -> None:
    # Not a connection cut with no answer: the client learns the server
    # stopped, and can send the request again elsewhere. That goes for the
    # request PHP still runs and for those waiting for its worker, which
    # is not replaced once killed.
    config = write_config(tmp_path, "http_sleep_on_path.php")
    env, tag = tagged_environment()
    server = ServerProcess(
        config,
        overrides=["endure.grace_period=0.2s", f"http.server={front}"],
        env=env,
        start_timeout=TIMEOUT,
    ).start()
    try:
        workers = worker_pids(server.output)
        assert server.url is not None
        with ThreadPoolExecutor(3) as executor:
            url = server.url + "/sleep"
            in_flight = [executor.submit(httpx.get, url, timeout=TIMEOUT)]
            wait_for_line(server, "sleeping on /sleep", timeout=TIMEOUT)
            in_flight += [
                executor.submit(httpx.get, url, timeout=TIMEOUT) for _ in range(2)
            ]
            time.sleep(0.3)  # queued behind the first (PHP sleeps 1 s)
            server.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            answers = [request.result(TIMEOUT) for request in in_flight]
            answered = time.monotonic() - stopping
        assert server.wait(TIMEOUT) == 0
    finally:
        server.stop()
    assert [answer.status_code for answer in answers] == [503] * 3
    assert {answer.text for answer in answers} == {"The server is shutting down.\n"}
    assert answered < 1.0  # the grace period, and little more
    assert (
        "grace period (0.2 s) over: ending 3 request(s) PHP still runs or that "
        "wait for a worker; they are answered 503" in server.output
    )
    assert server.output.count("sleeping on /sleep") == 1, "no worker after it"
    assert "the worker failed" not in server.output
    assert running(workers) == []
    assert tagged_processes(tag) == []


@pytest.mark.php
def test_serve_counts_a_request_whose_body_still_comes_among_those_cut(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, "http_sleep_on_path.php")
    server = ServerProcess(
        config, overrides=["endure.grace_period=0.2s"], start_timeout=TIMEOUT
    ).start()
    try:
        assert server.url is not None
        host, _, port = server.url.removeprefix("http://").rpartition(":")
        with socket.create_connection((host, int(port)), timeout=TIMEOUT) as client:
            client.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                b"Expect: 100-continue\r\n\r\n"
            )
            # The server asks for the body once it waits for it.
            assert client.recv(1024).startswith(b"HTTP/1.1 100 Continue")
            client.sendall(b"abc")  # and then nothing
            server.send_signal(signal.SIGTERM)
            assert server.wait(TIMEOUT) == 0
    finally:
        server.stop()
    assert "grace period (0.2 s) over: cutting 1 request(s) still in flight" in (
        server.output
    )


@pytest.mark.php
def test_serve_sigterm_during_start_up_stops_cleanly(tmp_path: Path) -> None:
    # A worker that never finishes booting: the stop comes before anything
    # is served, so nothing is cut and it is no failure (exit 0).
    config = write_config(tmp_path, "slow_boot.php", num_workers=1)
    env, tag = tagged_environment()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "trio_runner", "serve", "-c", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + TIMEOUT
        while "waiting for the database" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        server.send_signal(signal.SIGTERM)
        assert server.wait(TIMEOUT) == 0
    finally:
        server.kill()
        server.wait()
    assert "SIGTERM during start-up: stopping" in log.read_text()
    assert tagged_processes(tag) == []
