"""How worker output lines become log records (no PHP needed)."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

from trio_runner.process.output import MAX_LINE, TAIL_SIZE, OutputTail, pump_output


async def pump(chunks: list[bytes]) -> OutputTail:
    send, receive = trio.testing.memory_stream_one_way_pair()
    tail = OutputTail()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(pump_output, receive, 42, tail)
        for chunk in chunks:
            await send.send_all(chunk)
            await trio.testing.wait_all_tasks_blocked()
        await send.aclose()
    return tail


def records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage())
        for r in caplog.records
        if r.name == "trio_runner.worker"
    ]


@pytest.mark.parametrize(
    ("line", "level", "message"),
    [
        ("plain words", logging.INFO, "plain words"),
        ("PHP Fatal error:  Uncaught Exception", logging.ERROR, None),
        ("PHP Parse error:  syntax error", logging.ERROR, None),
        ("PHP Warning:  Undefined variable $x", logging.WARNING, None),
        ("PHP Deprecated:  old thing", logging.INFO, None),
        ("[php error] the database is down", logging.ERROR, None),
        ("[php warning] slow query", logging.WARNING, None),
        ('{"level":"error","msg":"boom","x":1}', logging.ERROR, "boom"),
        ('{"level":"warn","message":"careful"}', logging.WARNING, "careful"),
        ('{"level":"nonsense","msg":"m"}', logging.INFO, None),
        ("[1, 2, 3]", logging.INFO, None),
    ],
)
async def test_output_line_levels(
    caplog: pytest.LogCaptureFixture, line: str, level: int, message: str | None
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_runner.worker")
    await pump([line.encode() + b"\n"])
    assert records(caplog) == [(level, message or line)]


async def test_output_a_php_stack_trace_keeps_the_errors_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_runner.worker")
    fatal = (
        b"PHP Fatal error:  Uncaught RuntimeException: boom in /app/w.php:7\n"
        b"Stack trace:\n"
        b"#0 /app/w.php(12): boot()\n"
        b"#1 {main}\n"
        b"  thrown in /app/w.php on line 7\n"
        b"PHP Warning:  Undefined variable $x in /app/a.php on line 3\n"
        b"PHP Stack trace:\n"
        b"PHP   1. {main}() /app/a.php:0\n"
        b"#2 {main}\n"
    )
    await pump([fatal[:90], fatal[90:]])
    assert [level for level, _ in records(caplog)] == [
        *[logging.ERROR] * 5,
        *[logging.WARNING] * 3,
        logging.WARNING,
    ]


async def test_output_trace_shaped_lines_alone_are_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_runner.worker")
    await pump([b"started\n#1 in the queue\nStack trace:\n"])
    assert [level for level, _ in records(caplog)] == [logging.INFO] * 3


async def test_output_joins_lines_split_across_reads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_runner.worker")
    await pump([b"fir", b"st\nsec", b"ond\r\n", b"no newline at the end"])
    assert [m for _, m in records(caplog)] == [
        "first",
        "second",
        "no newline at the end",
    ]


async def test_output_cuts_endless_lines_and_keeps_a_bounded_tail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="trio_runner.worker")
    flood = b"y" * (MAX_LINE * 2 + 10)
    tail = await pump([flood[i : i + 65536] for i in range(0, len(flood), 65536)])
    assert [len(m) for _, m in records(caplog)] == [MAX_LINE, MAX_LINE, 10]
    assert tail.text() == "y" * TAIL_SIZE
