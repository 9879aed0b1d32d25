"""The real PHP workers of ``tests/php/`` and what tests check about them.

Tests that run real PHP use the real clock, each under its own
``trio.fail_after``, and prove that no process outlives them: every child
of the test process, zombies included, must be gone once a pool is closed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psutil

from trio_runner.protocol import Payload

PHP_DIR = Path(__file__).parent / "php"


def php(script: str, *args: str) -> list[str]:
    """The command that runs ``tests/php/<script>``."""
    return ["php", str(PHP_DIR / script), *args]


def request(body: bytes) -> Payload:
    return Payload(b"{}", body)


def child_processes() -> list[psutil.Process]:
    """This test process's children, zombies (unreaped) included."""
    return psutil.Process().children(recursive=True)


def is_gone(pid: int) -> bool:
    """True when ``pid`` has exited *and* been reaped (a zombie still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def is_dead(pid: int) -> bool:
    """True when ``pid`` has exited, reaped or not.

    For the children PHP workers fork: once their parent is gone they are
    reparented to init (or a subreaper), which reaps them when it will.
    """
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def has_pcntl() -> bool:
    """Whether the ``php`` on PATH has the pcntl extension (pcntl_fork)."""
    result = subprocess.run(
        ["php", "-r", "echo extension_loaded('pcntl') ? 'yes' : 'no';"],
        capture_output=True,
        check=False,
    )
    return result.stdout == b"yes"
