"""Helpers for tests that run the whole server with real PHP workers.

``worker_pids`` reads the pids from the server's ready line. A server
started with ``tagged_environment`` passes the tag on to every worker it
spawns, replacements included, and to its reaper, so ``tagged_processes``
can show that none outlived it even when the test never saw its pid.
Besides its workers, a server has one more child: its reaper
(``is_reaper``, ``reaper_of``). ``half_close`` is a client that sends its
requests, shuts its sending side (``nc -N``) and reads to the end.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import psutil
import trio

from trio_runner.process.reaper import MARK
from trio_runner.testing.process import ServerProcess

TESTS = Path(__file__).parent
PHP = TESTS / "php"
EXAMPLES = TESTS.parent / "examples"

_TAG = "TRIO_RUNNER_TEST_TAG"
_READY = re.compile(r"serving on .+? \(workers: ([\d, ]+)\)")


def write_config(directory: Path, script: str, *, num_workers: int = 1) -> Path:
    """A ``roadrunner.toml`` in ``directory`` serving ``tests/php/<script>``."""
    path = directory / "roadrunner.toml"
    path.write_text(
        f'version = "3"\n\n'
        f"[server]\n"
        f'command = "php {PHP / script}"\n\n'
        f"[http]\n"
        f'address = "127.0.0.1:0"\n\n'
        f"[http.pool]\n"
        f"num_workers = {num_workers}\n"
    )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for relays and
    RPC listeners, which cannot be given port 0)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def worker_pids(log: str) -> list[int]:
    """The worker pids named by the ready line of a server's log."""
    match = _READY.search(log)
    assert match is not None, f"no ready line in the log:\n{log}"
    return [int(pid) for pid in match[1].split(", ")]


def is_reaper(process: psutil.Process) -> bool:
    """Whether ``process`` is a server's reaper (trio_runner/process/reaper.py)."""
    try:
        return MARK in process.cmdline()
    except psutil.Error:  # gone, or a zombie
        return False


def reaper_of(server: ServerProcess) -> int:
    """The pid of ``server``'s reaper; there must be exactly one."""
    children = psutil.Process(server.pid).children()
    reapers = [child.pid for child in children if is_reaper(child)]
    assert len(reapers) == 1, f"reapers: {reapers}, children: {children}"
    return reapers[0]


def running(pids: Iterable[int]) -> list[int]:
    """Those of ``pids`` that are still running (zombies are not)."""
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def tagged_environment() -> tuple[dict[str, str], str]:
    """This process's environment plus a fresh tag, and the tag."""
    tag = uuid.uuid4().hex
    return {**os.environ, _TAG: tag}, tag


def tagged_processes(tag: str) -> list[psutil.Process]:
    """Running processes whose environment carries ``tag``."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get(_TAG) == tag:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass  # gone, a zombie (a NoSuchProcess), or not ours
    return found


def wait_for_line(server: ServerProcess, text: str, *, timeout: float) -> None:
    """Wait until ``text`` shows up in the server's log.

    Raises:
        AssertionError: it did not within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while text not in server.output:
        assert time.monotonic() < deadline, f"no {text!r} in:\n{server.output}"
        time.sleep(0.01)


async def wait_until_empty(directory: Path) -> None:
    """Wait until ``directory`` is empty, e.g. of the upload temp files that
    the server deletes just after the client has its response. Bound it
    with ``trio.fail_after``."""
    # A directory has no event to wait on: poll it.
    while os.listdir(directory):  # noqa: ASYNC110
        await trio.sleep(0.01)


async def half_close(address: str, request: bytes) -> bytes:
    """Send ``request``, shut the sending side, read until the server closes."""
    host, _, port = address.rpartition(":")
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(request)
        await stream.send_eof()
        data = b""
        while part := await stream.receive_some(65536):
            data += part
    return data
