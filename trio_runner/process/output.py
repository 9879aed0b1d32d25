"""A worker's stderr (and stdout in socket mode) turned into log records.

Each line becomes one record on the ``trio_runner.worker`` logger with the
worker's pid, however the bytes were chunked by the pipe. Memory stays
bounded whatever the worker writes: a line longer than ``MAX_LINE`` is logged
in pieces of that size, and only the last ``TAIL_SIZE`` bytes are kept for
error messages (a worker that fails to start is reported with its own words).

Lines that are JSON objects with a ``level`` and a message (``msg`` or
``message``) keep that level and message. PHP's own error lines (``PHP Fatal
error: ...``, ``PHP Warning: ...``) and the ``[php <level>]`` lines of
RoadRunner's PHP logger are logged at the level they name, and the stack
trace that follows a PHP error at that level too; anything else is INFO.
"""

from __future__ import annotations

import json
import logging
import re
from collections import deque

import trio

__all__ = ["MAX_LINE", "TAIL_SIZE", "OutputTail", "pump_output"]

logger = logging.getLogger("trio_runner.worker")

MAX_LINE = 1 << 20
TAIL_SIZE = 8 << 10
_READ_SIZE = 64 << 10

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "err": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


class OutputTail:
    """The last few KiB a process wrote, for error messages."""

    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def add(self, data: bytes) -> None:
        if len(data) >= TAIL_SIZE:
            self._chunks.clear()
            data = data[-TAIL_SIZE:]
            self._size = 0
        self._chunks.append(data)
        self._size += len(data)
        while self._size - len(self._chunks[0]) >= TAIL_SIZE:
            self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        data = b"".join(self._chunks)[-TAIL_SIZE:]
        return data.decode("utf-8", "replace").strip()


async def pump_output(
    stream: trio.abc.ReceiveStream,
    pid: int,
    tail: OutputTail,
    *,
    source: str = "stderr",
) -> None:
    """Log every line read from ``stream`` until end of file.

    Read errors end the pump quietly: the process is gone, and whoever
    watches the process reports that.
    """
    pending = bytearray()
    level = logging.INFO  # of the last line: a stack trace's lines share it
    while True:
        try:
            data = await stream.receive_some(_READ_SIZE)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            data = b""
        if not data:
            break
        tail.add(bytes(data))
        pending += data
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            level = _log_line(pending[start:end], pid, source, level)
            start = end + 1
        del pending[:start]
        while len(pending) >= MAX_LINE:
            level = _log_line(pending[:MAX_LINE], pid, source, level)
            del pending[:MAX_LINE]
    if pending:
        _log_line(pending, pid, source, level)


# PHP's error_log lines, and RoadRunner's PHP logger ("[php error] ...").
_PHP_LINE = re.compile(
    r"PHP (?P<php>Fatal error|Parse error|Recoverable fatal error|Warning):"
    r"|\[php (?P<logger>[a-z]+)\]"
)
_PHP_LEVELS = {
    "Fatal error": logging.ERROR,
    "Parse error": logging.ERROR,
    "Recoverable fatal error": logging.ERROR,
    "Warning": logging.WARNING,
}


# The lines after "PHP Fatal error: Uncaught ...": the stack trace, in
# either of PHP's layouts, and the "thrown in" line.
_CONTINUATION = re.compile(
    r"(?:PHP )?Stack trace:$|#\d+ |  thrown in |PHP +\d+\. |(?:PHP )?\{main\}"
)


def _log_line(
    raw: bytes | bytearray, pid: int, source: str, previous: int = logging.INFO
) -> int:
    """Log one line; return its level. ``previous``: the line before's."""
    line = bytes(raw).rstrip(b"\r").decode("utf-8", "replace")
    level = logging.INFO
    if previous > logging.INFO and _CONTINUATION.match(line):
        level = previous
    elif line.startswith("{"):
        level, line = _structured(line)
    elif match := _PHP_LINE.match(line):
        if match["php"]:
            level = _PHP_LEVELS[match["php"]]
        else:
            level = _LEVELS.get(match["logger"], logging.INFO)
    logger.log(level, "%s", line, extra={"pid": pid, "source": source})
    return level


def _structured(line: str) -> tuple[int, str]:
    try:
        record = json.loads(line)
    except ValueError:
        return logging.INFO, line
    if not isinstance(record, dict):
        return logging.INFO, line
    message = record.get("msg", record.get("message"))
    level = _LEVELS.get(str(record.get("level", "")).lower())
    if level is None or not isinstance(message, str):
        return logging.INFO, line
    return level, message
