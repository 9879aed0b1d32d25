"""Logging set-up for the server: console or JSON records, one place.

Library code only calls ``logging.getLogger(__name__)``; this module is used
by the CLI (and by embedders who want the same output) to install handlers.
Records carry stable ``extra`` keys: ``pid`` (the worker's), ``pool``,
``reason``, ``source``; console lines show them as ``key=value`` after the
message, JSON records as fields next to ``ts``, ``level``, ``logger``, ``msg``.
A record may also carry ``attrs``, a mapping of free-form attributes (PHP's
log context through the RPC app logger), shown the same way after those.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import queue as _queue
import sys
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from trio_runner.config.model import LogsConfig

__all__ = ["ConsoleFormatter", "JsonFormatter", "LogOutput", "configure_logging"]

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
_installed: list[LogOutput] = []


def _timestamp(record: logging.LogRecord) -> str:
    moment = time.gmtime(record.created)
    millis = int(record.msecs)
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + f".{millis:03d}Z"


def _attrs(record: logging.LogRecord) -> Mapping[str, object]:
    attrs = getattr(record, "attrs", None)
    return attrs if isinstance(attrs, Mapping) else {}


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
        parts.extend(f"{key}={value}" for key, value in _attrs(record).items())
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
        for key, value in _attrs(record).items():
            data.setdefault(key, value)  # never over a standard key
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class _QueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread; never blocks the event loop.

    When the output cannot keep up (a worker flooding stderr into a slow
    pipe), records beyond the queue's size are dropped and counted rather
    than held in memory without bound; the next record written says how
    many were lost.
    """

    def __init__(self, queue: _queue.Queue[logging.LogRecord]) -> None:
        super().__init__(queue)
        self.dropped = 0

    def enqueue(self, record: logging.LogRecord) -> None:
        try:
            if self.dropped:
                self.queue.put_nowait(self.drop_note())
                self.dropped = 0
            self.queue.put_nowait(record)
        except _queue.Full:
            self.dropped += 1

    def drop_note(self) -> logging.LogRecord:
        """The record that says how many were dropped."""
        return logging.makeLogRecord(
            {
                "name": "trio_runner.log",
                "levelno": logging.WARNING,
                "levelname": "WARNING",
                "msg": "log output too slow: dropped %d record(s)",
                "args": (self.dropped,),
            }
        )


class _QueueListener(logging.handlers.QueueListener):
    def enqueue_sentinel(self) -> None:
        # Wait for room: the queue may be full of records to write first.
        self.queue.put(self._sentinel, timeout=10)  # type: ignore[attr-defined]


class LogOutput:
    """The installed log output; ``close`` flushes it and stops its thread."""

    def __init__(self, handler: logging.Handler, stream: IO[str]) -> None:
        self._queue: _queue.Queue[logging.LogRecord] = _queue.Queue(_QUEUE_SIZE)
        queue = self._queue
        self.handler = _QueueHandler(queue)
        self._stream = stream
        self._target = handler
        self._listener = _QueueListener(queue, handler)
        self._listener.start()
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.handler.dropped:
            self._queue.put(self.handler.drop_note(), timeout=10)
        self._listener.stop()  # writes what is queued, then ends the thread
        self._target.close()
        if self._stream not in (sys.stderr, sys.stdout):
            self._stream.close()


# Records waiting for the writer thread before new ones are dropped.
_QUEUE_SIZE = 10_000


def configure_logging(config: LogsConfig, *, silent: bool = False) -> LogOutput:
    """Install the output ``config`` asks for on the ``trio_runner`` logger.

    Records are written by a thread of their own, so a slow terminal or
    pipe never stalls the server. ``mode = "off"`` or ``silent`` keep only
    errors. Calling again replaces the previous output; call ``close`` on
    the returned value before exiting to write what is still queued.

    Raises:
        OSError: ``output`` is a file that cannot be opened.
    """
    root = logging.getLogger("trio_runner")
    for output in _installed:
        root.removeHandler(output.handler)
        output.close()
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
    output = LogOutput(handler, stream)
    root.setLevel(level)
    root.addHandler(output.handler)
    root.propagate = False
    _installed.append(output)
    return output
