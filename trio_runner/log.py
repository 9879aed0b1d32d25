"""Logging set-up for the server: console or JSON records, one place.

Library code only calls ``logging.getLogger(__name__)``; this module is used
by the CLI (and by embedders who want the same output) to install handlers.
Records carry stable ``extra`` keys: ``pid`` (the worker's), ``pool``,
``reason``, ``source``; console lines show them as ``key=value`` after the
message, JSON records as fields next to ``ts``, ``level``, ``logger``, ``msg``.

Access records (``trio_runner.access``) are written in JSON as RoadRunner
writes them, which is what Laravel Octane parses: ``msg`` is ``"http log"``
and the fields are ``method``, ``status``, ``URI``, ``elapsed`` (a Go
duration string such as ``"3.2ms"``), ``remote_address`` and ``bytes``.

``[logs.channels.<channel>]`` sets mode, level, encoding or output for one
component; :data:`CHANNELS` maps RoadRunner's plugin names to the loggers
each covers. A channel with its own output gets its own writer thread, and
its records no longer reach the main output.
A record may also carry ``attrs``, a mapping of free-form attributes (PHP's
log context through the RPC app logger), shown the same way after those.
"""

from __future__ import annotations

import contextlib
import json
import logging
import logging.handlers
import queue as _queue
import sys
import threading
import time
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING

from trio_runner.errors import ConfigError

if TYPE_CHECKING:
    from trio_runner.config.model import LogsConfig

__all__ = [
    "CHANNELS",
    "ConsoleFormatter",
    "JsonFormatter",
    "LogOutput",
    "configure_logging",
    "go_duration",
]

# RoadRunner's plugin (logger) names, as ``[logs.channels.<name>]`` takes
# them, and the trio_runner loggers each one covers (with their children).
CHANNELS: Mapping[str, tuple[str, ...]] = {
    "http": ("trio_runner.http", "trio_runner.access"),
    "server": ("trio_runner.server", "trio_runner.process", "trio_runner.worker"),
    "pool": ("trio_runner.pool",),
    "rpc": ("trio_runner.rpc",),
    "app": ("trio_runner.app",),
    "metrics": ("trio_runner.metrics",),
    "status": ("trio_runner.status",),
    "reload": ("trio_runner.reload",),
}

# Keys of ``extra=`` that the formatters show, in this order. The access
# log's keys are in its message already, so the console leaves them out.
EXTRA_KEYS = ("pool", "pid", "reason", "source", "address")
ACCESS_KEYS = ("method", "status", "URI", "elapsed", "remote_address", "bytes")

# The access logger (``trio_runner.http.access.ACCESS_LOGGER``; not
# imported, so that logging set-up does not load the HTTP front) and the
# message RoadRunner gives its records.
_ACCESS_LOGGER = "trio_runner.access"
_ACCESS_MESSAGE = "http log"

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Set by ``configure_logging`` so a second call replaces, not duplicates:
# the outputs it installed, and the channel loggers it changed.
_installed: list[LogOutput] = []
_channel_loggers: list[logging.Logger] = []


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


# Level names as RoadRunner's JSON logs spell them, for the same log queries.
_JSON_LEVELS = {"WARNING": "warn", "CRITICAL": "fatal"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line with stable keys."""

    def format(self, record: logging.LogRecord) -> str:
        access = record.name == _ACCESS_LOGGER
        data: dict[str, object] = {
            "ts": _timestamp(record),
            "level": _JSON_LEVELS.get(record.levelname) or record.levelname.lower(),
            "logger": record.name,
            "msg": _ACCESS_MESSAGE if access else record.getMessage(),
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


class _ChannelFormatter(logging.Formatter):
    """Formats each record with the formatter of its channel, if any.

    ``routes`` maps logger names to formatters; a record's logger or its
    nearest ancestor in ``routes`` decides, else ``default``.
    """

    def __init__(
        self,
        default: logging.Formatter,
        routes: Mapping[str, logging.Formatter] | None = None,
    ) -> None:
        super().__init__()
        self.default = default
        self.routes = dict(routes or {})
        self._cache: dict[str, logging.Formatter] = {}

    def route(self, logger: str, formatter: logging.Formatter) -> None:
        self.routes[logger] = formatter
        self._cache.clear()

    def format(self, record: logging.LogRecord) -> str:
        formatter = self._cache.get(record.name)
        if formatter is None:
            formatter = self._lookup(record.name)
            self._cache[record.name] = formatter
        return formatter.format(record)

    def _lookup(self, name: str) -> logging.Formatter:
        while name:
            if name in self.routes:
                return self.routes[name]
            name = name.rpartition(".")[0]
        return self.default


def go_duration(seconds: float) -> str:
    """``seconds`` as Go prints a ``time.Duration``: ``"850µs"``,
    ``"3.25ms"``, ``"1.5s"``, ``"2m3.5s"``. RoadRunner's access log writes
    ``elapsed`` this way, and Laravel Octane parses it."""
    ns = round(seconds * 1e9)
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    if ns == 0:
        return "0s"
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_decimal(ns, 1_000)}\u00b5s"
    if ns < 1_000_000_000:
        return f"{sign}{_decimal(ns, 1_000_000)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = f"{_decimal(rest, 1_000_000_000)}s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _decimal(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    if not part:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{part:0{digits}d}".rstrip("0")


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


class _Writer:
    """The thread that writes queued records: what has piled up since its
    last write goes out in one write and one flush, so that it keeps up
    with a flood of records far better than a write per record would."""

    BATCH = 1000
    _STOP = logging.makeLogRecord({"msg": "stop"})

    def __init__(
        self,
        queue: _queue.Queue[logging.LogRecord],
        handler: logging.StreamHandler[IO[str]],
    ) -> None:
        self._queue = queue
        self._handler = handler
        self._thread = threading.Thread(
            target=self._run, name="log writer", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread."""
        # Wait for room: the queue may be full of records to write first.
        self._queue.put(self._STOP, timeout=10)
        self._thread.join()

    def _run(self) -> None:
        handler = self._handler
        stopping = False
        while not stopping:
            batch = [self._queue.get()]
            with contextlib.suppress(_queue.Empty):
                while len(batch) < self.BATCH:
                    batch.append(self._queue.get_nowait())
            if any(record is self._STOP for record in batch):
                stopping = True  # once what came before it is written
                batch = [record for record in batch if record is not self._STOP]
            lines: list[str] = []
            for record in batch:
                try:
                    lines.append(handler.format(record) + handler.terminator)
                except Exception:
                    handler.handleError(record)
            if not lines:
                continue
            try:
                handler.stream.write("".join(lines))
                handler.stream.flush()
            except Exception:
                handler.handleError(batch[0])


class LogOutput:
    """The installed log output; ``close`` flushes it and stops its thread."""

    def __init__(
        self, handler: logging.StreamHandler[IO[str]], stream: IO[str]
    ) -> None:
        # Outputs of channels with their own, closed with this one.
        self.companions: list[LogOutput] = []
        self._queue: _queue.Queue[logging.LogRecord] = _queue.Queue(_QUEUE_SIZE)
        queue = self._queue
        self.handler = _QueueHandler(queue)
        self._stream = stream
        self._target = handler
        self.formatter = _ChannelFormatter(logging.Formatter())
        if isinstance(handler.formatter, _ChannelFormatter):
            self.formatter = handler.formatter
        self._writer = _Writer(queue, handler)
        self._closed = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.handler.dropped:
            self._queue.put(self.handler.drop_note(), timeout=10)
        self._writer.stop()  # writes what is queued, then ends the thread
        self._target.close()
        if self._stream not in (sys.stderr, sys.stdout):
            self._stream.close()
        for companion in self.companions:
            companion.close()


# Records waiting for the writer thread before new ones are dropped.
_QUEUE_SIZE = 10_000


def configure_logging(config: LogsConfig, *, silent: bool = False) -> LogOutput:
    """Install the output ``config`` asks for on the ``trio_runner`` logger.

    Records are written by a thread of their own, so a slow terminal or
    pipe never stalls the server. ``mode = "off"`` or ``silent`` keep only
    errors (in every channel). Calling again replaces the previous output;
    call ``close`` on the returned value before exiting to write what is
    still queued (it closes the channels' own outputs too).

    Raises:
        ConfigError: ``output`` (or a channel's) is a file that cannot be
            opened; the message names the key and the path.
    """
    root = logging.getLogger("trio_runner")
    _uninstall(root)

    main = _open_output(
        config.output, _formatter(config.encoding, config.mode), "logs.output"
    )
    _installed.append(main)
    outputs = {config.output: main}
    root.setLevel(_level(config.mode, config.level, silent))
    root.addHandler(main.handler)
    root.propagate = False

    for name, channel in config.channels.items():
        mode = channel.mode or config.mode
        level = _level(mode, channel.level or config.level, silent)
        formatter = _formatter(channel.encoding or config.encoding, mode)
        target = channel.output or config.output
        output = outputs.get(target)
        if output is None:
            key = f"logs.channels.{name}.output" if channel.output else "logs.output"
            output = outputs[target] = _open_output(target, formatter, key)
            main.companions.append(output)
        for logger_name in CHANNELS[name]:
            channel_logger = logging.getLogger(logger_name)
            channel_logger.setLevel(level)
            _channel_loggers.append(channel_logger)
            output.formatter.route(logger_name, formatter)
            if output is not main:
                channel_logger.addHandler(output.handler)
                channel_logger.propagate = False
    return main


def _uninstall(root: logging.Logger) -> None:
    for output in _installed:
        root.removeHandler(output.handler)
        for companion in output.companions:
            for channel_logger in _channel_loggers:
                channel_logger.removeHandler(companion.handler)
        output.close()
    _installed.clear()
    for channel_logger in _channel_loggers:
        channel_logger.setLevel(logging.NOTSET)
        channel_logger.propagate = True
    _channel_loggers.clear()


def _open_output(output: str, formatter: logging.Formatter, key: str) -> LogOutput:
    stream: IO[str]
    if output == "stderr":
        stream = sys.stderr
    elif output == "stdout":
        stream = sys.stdout
    else:
        try:
            stream = open(output, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        except OSError as exc:
            raise ConfigError(
                f"cannot open {key} {output}: {exc.strerror or exc} (check that "
                "its directory exists and the server may write there)"
            ) from exc
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_ChannelFormatter(formatter))
    return LogOutput(handler, stream)


def _formatter(encoding: str, mode: str) -> logging.Formatter:
    if encoding == "json":
        return JsonFormatter()
    if mode == "raw":
        return logging.Formatter("%(message)s")
    return ConsoleFormatter()


def _level(mode: str, level: str, silent: bool) -> int:
    if mode == "off" or silent:
        return logging.ERROR
    if mode == "development":
        return min(_LEVELS[level], logging.DEBUG)
    return _LEVELS[level]
