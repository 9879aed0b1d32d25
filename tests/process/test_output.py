"""A real worker's stderr as log records: one per line, with the pid."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from tests.php_workers import PHP_DIR, request

pytestmark = pytest.mark.php


async def test_output_each_stderr_line_is_one_record(
    php_pool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_runner.worker")
    with trio.fail_after(10):
        pool = await php_pool(PHP_DIR / "stderr_lines.php")
        pid = pool.workers[0].pid
        await pool.exec(request(b"go"))
        # PHP wrote its lines before the answer; let the pump log them.
        await trio.testing.wait_all_tasks_blocked()

    records = [r for r in caplog.records if r.name == "trio_runner.worker"]
    assert [r.getMessage() for r in records] == [
        "stderr_lines: first",
        "stderr_lines: second",
        "x" * 100 * 1024,  # longer than a pipe buffer, still one record
        "stderr_lines: last",
    ]
    assert all(r.levelno == logging.INFO for r in records)
    assert all(r.pid == pid for r in records)  # type: ignore[attr-defined]
    assert all(r.source == "stderr" for r in records)  # type: ignore[attr-defined]
