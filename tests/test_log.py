"""Log set-up: formats, levels, and output that never stalls the server."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from trio_runner import log
from trio_runner.config import LogsConfig


@pytest.fixture
def restore_root():
    root = logging.getLogger("trio_runner")
    handlers, level, propagate = list(root.handlers), root.level, root.propagate
    yield
    for output in log._installed:
        root.removeHandler(output.handler)
        output.close()
    log._installed.clear()
    root.handlers[:] = handlers
    root.setLevel(level)
    root.propagate = propagate


def capture(monkeypatch, **settings) -> tuple[io.StringIO, log.LogOutput]:
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    return stream, log.configure_logging(LogsConfig(**settings))


def test_log_console_line_has_level_logger_message_and_extras(
    monkeypatch, restore_root
) -> None:
    stream, output = capture(monkeypatch)
    logging.getLogger("trio_runner.pool.pool").warning(
        "worker %d replaced", 7, extra={"pool": "http", "pid": 7}
    )
    output.close()
    line = stream.getvalue().strip()
    assert "WARNING" in line
    assert "pool.pool  worker 7 replaced pool=http pid=7" in line


def test_log_json_records_have_stable_keys(monkeypatch, restore_root) -> None:
    stream, output = capture(monkeypatch, encoding="json")
    logging.getLogger("trio_runner.access").info(
        "GET / 200", extra={"method": "GET", "status": 200, "pid": 3}
    )
    output.close()
    record = json.loads(stream.getvalue())
    assert record["level"] == "info"
    assert record["logger"] == "trio_runner.access"
    assert record["msg"] == "GET / 200"
    assert (record["method"], record["status"], record["pid"]) == ("GET", 200, 3)
    assert record["ts"].endswith("Z")


def test_log_attrs_show_after_the_extras(monkeypatch, restore_root) -> None:
    stream, output = capture(monkeypatch)
    logging.getLogger("trio_runner.app").info(
        "order shipped", extra={"pid": 4, "attrs": {"order": "42", "to": "Lyon"}}
    )
    output.close()
    assert "app  order shipped pid=4 order=42 to=Lyon" in stream.getvalue()


def test_log_json_attrs_are_fields_that_never_replace_standard_ones(
    monkeypatch, restore_root
) -> None:
    stream, output = capture(monkeypatch, encoding="json")
    logging.getLogger("trio_runner.app").warning(
        "low disk", extra={"attrs": {"free": "2%", "msg": "not the message"}}
    )
    output.close()
    record = json.loads(stream.getvalue())
    assert record["msg"] == "low disk"
    assert record["free"] == "2%"


@pytest.mark.parametrize(
    ("settings", "shown"),
    [
        ({"level": "info"}, ["info", "warning"]),
        ({"level": "warn"}, ["warning"]),
        ({"level": "info", "mode": "development"}, ["debug", "info", "warning"]),
        ({"level": "info", "mode": "off"}, []),
    ],
)
def test_log_levels_and_modes(monkeypatch, restore_root, settings, shown) -> None:
    stream, output = capture(monkeypatch, **settings)
    logger = logging.getLogger("trio_runner.x")
    logger.debug("debug")
    logger.info("info")
    logger.warning("warning")
    output.close()
    assert [line.rsplit("  ", 1)[-1] for line in stream.getvalue().splitlines()] == (
        shown
    )


def test_log_drops_and_counts_records_when_output_is_stuck(
    monkeypatch, restore_root
) -> None:
    monkeypatch.setattr(log, "_QUEUE_SIZE", 5)
    stream, output = capture(monkeypatch)
    blocked = threading.Event()
    release = threading.Event()
    real_emit = output._target.emit

    def stuck_emit(record: logging.LogRecord) -> None:
        blocked.set()
        release.wait(10)
        real_emit(record)

    monkeypatch.setattr(output._target, "emit", stuck_emit)
    logger = logging.getLogger("trio_runner.flood")
    logger.info("first")
    assert blocked.wait(5)
    for i in range(20):  # returns at once although the writer is stuck
        logger.info("line %d", i)
    release.set()
    output.close()
    text = stream.getvalue()
    assert text.count("line ") < 20
    assert text.strip().endswith(f"dropped {20 - text.count('line ')} record(s)")
