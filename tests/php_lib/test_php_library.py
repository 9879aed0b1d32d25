"""Runs the PHP worker library's phpunit suite (tests/php_lib/*Test.php).

The PHP side is tested in PHP: frames against tests/golden/frames.json, the
worker lifecycle over an in-memory relay, pipe and socket relays, the HTTP
contexts, PSR-7/PSR-15 on nyholm/psr7, the RPC client (also against a real
server it starts with this interpreter, TRIO_RUNNER_PYTHON), and the example
apps run as real PHP processes. This test fails with phpunit's whole output
when any of that fails, so a plain ``pytest`` run covers both languages.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent

# The suite takes about 2 s; this only stops a hung worker from hanging CI.
TIMEOUT_SECONDS = 120


@pytest.mark.php
def test_php_library_phpunit_suite_passes() -> None:
    php = shutil.which("php")
    phpunit = shutil.which("phpunit")
    if php is None or phpunit is None:
        missing = " and ".join(
            name for name, path in (("php", php), ("phpunit", phpunit)) if path is None
        )
        pytest.skip(
            f"{missing} not on PATH; install PHP 8.2 and phpunit "
            "(Debian: apt-get install php-cli phpunit) to test the PHP library"
        )

    result = subprocess.run(
        [phpunit, "--configuration", str(HERE / "phpunit.xml")],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
        env={**os.environ, "TRIO_RUNNER_PYTHON": sys.executable},
    )

    if result.returncode != 0:
        pytest.fail(
            f"phpunit failed (exit {result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
