"""Log set-up: formats, levels, and output that never stalls the server."""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest

from trio_runner import log
from trio_runner.config import LogChannelConfig, LogsConfig
from trio_runner.errors import ConfigError


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
    logging.getLogger("trio_runner.pool.pool").warning(
        "worker %d replaced", 3, extra={"pool": "http", "pid": 3, "reason": "ttl"}
    )
    output.close()
    record = json.loads(stream.getvalue())
    assert record["level"] == "warn"  # as RoadRunner spells it
    assert record["logger"] == "trio_runner.pool.pool"
    assert record["msg"] == "worker 3 replaced"
    assert (record["pool"], record["pid"], record["reason"]) == ("http", 3, "ttl")
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

    class Stuck(io.StringIO):
        def write(self, text: str) -> int:
            blocked.set()
            release.wait(10)
            return stream.write(text)

    monkeypatch.setattr(output._target, "stream", Stuck())
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


def test_log_json_access_record_is_what_octane_parses(
    monkeypatch, restore_root
) -> None:
    # Laravel Octane reads RoadRunner's JSON lines: msg "http log" at info,
    # with method, status, URI, remote_address and elapsed as a Go duration.
    stream, output = capture(monkeypatch, encoding="json")
    logging.getLogger("trio_runner.access").info(
        "GET /a?b 200 2B 1.5ms 127.0.0.1",
        extra={
            "method": "GET",
            "status": 200,
            "URI": "/a?b",
            "elapsed": log.go_duration(0.0015),
            "remote_address": "127.0.0.1",
            "bytes": 2,
        },
    )
    output.close()
    record = json.loads(stream.getvalue())
    assert (record["level"], record["msg"]) == ("info", "http log")
    assert record["logger"] == "trio_runner.access"
    assert (record["method"], record["status"], record["URI"]) == ("GET", 200, "/a?b")
    assert (record["elapsed"], record["remote_address"]) == ("1.5ms", "127.0.0.1")


def test_log_console_access_record_keeps_its_line(monkeypatch, restore_root) -> None:
    stream, output = capture(monkeypatch)
    logging.getLogger("trio_runner.access").info(
        "GET / 200 2B 1.5ms 127.0.0.1", extra={"method": "GET", "URI": "/"}
    )
    output.close()
    assert stream.getvalue().rstrip().endswith("access  GET / 200 2B 1.5ms 127.0.0.1")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.000_000_5, "500ns"),
        (0.000_850, "850\u00b5s"),
        (0.001_5, "1.5ms"),
        (0.003_123_456, "3.123456ms"),
        (1.5, "1.5s"),
        (60, "1m0s"),
        (123.5, "2m3.5s"),
        (3600 + 61, "1h1m1s"),
    ],
)
def test_go_duration_prints_as_go_does(seconds: float, text: str) -> None:
    assert log.go_duration(seconds) == text


def test_log_channel_level_applies_to_its_loggers_only(
    monkeypatch, restore_root
) -> None:
    channels = {
        "pool": LogChannelConfig(level="debug"),
        "http": LogChannelConfig(level="error"),
    }
    stream, output = capture(monkeypatch, channels=channels)
    logging.getLogger("trio_runner.pool.pool").debug("pool debug")
    logging.getLogger("trio_runner.access").info("access info")
    logging.getLogger("trio_runner.http.bridge").warning("bridge warning")
    logging.getLogger("trio_runner.reload").debug("reload debug")
    logging.getLogger("trio_runner.reload").info("reload info")
    output.close()
    messages = [line.rsplit("  ", 1)[-1] for line in stream.getvalue().splitlines()]
    assert messages == ["pool debug", "reload info"]


def test_log_channel_encoding_and_output_of_its_own(
    monkeypatch, restore_root, tmp_path
) -> None:
    access_file = tmp_path / "access.log"
    channels = {
        "http": LogChannelConfig(encoding="json", output=str(access_file)),
        "server": LogChannelConfig(encoding="json"),
    }
    stream, output = capture(monkeypatch, channels=channels)
    logging.getLogger("trio_runner.access").info("GET / 200", extra={"status": 200})
    logging.getLogger("trio_runner.worker").info("php says hi", extra={"pid": 9})
    logging.getLogger("trio_runner.pool").info("pool line")
    output.close()
    [access] = access_file.read_text().splitlines()
    assert json.loads(access)["msg"] == "http log"
    worker, pool = stream.getvalue().splitlines()
    assert json.loads(worker)["msg"] == "php says hi"
    assert pool.endswith("pool  pool line")


def test_log_reconfiguring_resets_the_channels(monkeypatch, restore_root) -> None:
    _, output = capture(monkeypatch, channels={"pool": LogChannelConfig(level="debug")})
    output.close()
    stream, output = capture(monkeypatch)
    logging.getLogger("trio_runner.pool").debug("hidden")
    logging.getLogger("trio_runner.pool").info("shown")
    output.close()
    assert [line.rsplit("  ", 1)[-1] for line in stream.getvalue().splitlines()] == [
        "shown"
    ]


def test_log_channels_are_roadrunner_plugin_names_over_our_loggers() -> None:
    assert set(log.CHANNELS) >= {"http", "server", "pool", "rpc", "app", "metrics"}
    for name, loggers in log.CHANNELS.items():
        assert loggers, name
        assert all(logger.startswith("trio_runner.") for logger in loggers)
        LogsConfig(channels={name: LogChannelConfig(level="debug")})


def test_log_channel_output_that_cannot_open_names_its_key(tmp_path) -> None:
    missing = tmp_path / "no" / "such" / "pool.log"
    config = LogsConfig(channels={"pool": LogChannelConfig(output=str(missing))})
    with pytest.raises(ConfigError) as info:
        log.configure_logging(config)
    assert str(info.value).startswith(
        f"cannot open logs.channels.pool.output {missing}: No such file or directory"
    )
