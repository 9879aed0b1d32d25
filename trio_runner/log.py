"""Logging set-up for the server: console or JSON records, one place.

Library code only calls ``logging.getLogger(__name__)``; this module is used
by the CLI (and by embedders who want the same output) to install handlers.
Records carry stable ``extra`` keys: ``pid`` (the worker's), ``pool``,
``reason``, ``source``; console lines show them as ``key=value`` after the
message, JSON records as fields next to ``ts``, ``level``, ``logger``, ``msg``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from trio_runner.config.model import LogsConfig

__all__ = ["ConsoleFormatter", "JsonFormatter", "configure_logging"]

# Keys of ``extra=`` that the formatters show, in this order. The access
# log's keys are in its message already, so the console leaves them out.
EXTRA_KEYS = ("pool", "pid", "reason", "source", "address")
ACCESS_KEYS = ("method", "uri", "status", "bytes", "elapsed", "remote_address")

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Set by ``configure_logging`` so a second call replaces, not duplicates.
_installed: list[logging.Handler] = []


def _timestamp(record: logging.LogRecord) -> str:
    moment = time.gmtime(record.created)
    millis = int(record.msecs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{millis:03d}Z"


class ConsoleFormatter(logging.Formatter):
    """``ts LEVEL logger message key=value ...`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _timestamp(record),
            f"{record.levelname:<7}",
            record.name.removeprefix("trio_runner."),
            record.getMessage(),
        ]
        for key in EXTRA_KEYS:
            value = getattr(record, key, None)
            if value is not None and key != "source":
                parts.append(f"{key}={value}")
        line = "  ".join(parts[:3]) + "  " + " ".join(parts[3:])
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line with stable keys."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in EXTRA_KEYS + ACCESS_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure_logging(config: LogsConfig, *, silent: bool = False) -> None:
    """Install the handler ``config`` asks for on the ``trio_runner`` logger.

    ``mode = "off"`` or ``silent`` keep only errors. Calling again replaces
    the previous handler.
    """
    root = logging.getLogger("trio_runner")
    for handler in _installed:
        root.removeHandler(handler)
        handler.close()
    _installed.clear()

    stream: IO[str]
    if config.output == "stderr":
        stream = sys.stderr
    elif config.output == "stdout":
        stream = sys.stdout
    else:
        stream = open(config.output, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
    handler = logging.StreamHandler(stream)
    if config.encoding == "json":
        handler.setFormatter(JsonFormatter())
    elif config.mode == "raw":
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler.setFormatter(ConsoleFormatter())
    level = _LEVELS[config.level]
    if config.mode == "development":
        level = min(level, logging.DEBUG)
    if config.mode == "off" or silent:
        level = logging.ERROR
    root.setLevel(level)
    root.addHandler(handler)
    root.propagate = False
    _installed.append(handler)
