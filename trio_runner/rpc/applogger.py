"""``app.*``: PHP code logging through the server's logger (RoadRunner's app-logger).

===================================  ==========================  ==========
method                               argument                    goes to
===================================  ==========================  ==========
``app.Error`` / ``Warning`` /        the message (JSON string)   logger
``Info`` / ``Debug``                                             ``trio_runner.app``
``app.Log``                          the message                 stderr, raw
``app.<Level>WithContext``,          ``applogger.v1.LogEntry``   the same, with
``app.LogWithContext``               (proto)                     its attributes
===================================  ==========================  ==========

The plain methods reply ``false`` (RoadRunner never sets it); the
``WithContext`` ones an empty ``applogger.v1.Response``. A record's
attributes travel as ``extra={"attrs": {...}}``, which the console and
JSON formatters show (``log.py``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import IO

from trio_runner.rpc.proto import applogger_pb2
from trio_runner.rpc.registry import Method

__all__ = ["AppLogger"]

# RoadRunner's logger for this is named "app".
APP_LOGGER = "trio_runner.app"

_LEVELS = {
    "Error": logging.ERROR,
    "Warning": logging.WARNING,
    "Info": logging.INFO,
    "Debug": logging.DEBUG,
}


class AppLogger:
    """The ``app`` service.

    Args:
        stderr: where ``app.Log`` writes; the process's stderr by default.
    """

    def __init__(self, stderr: Callable[[], IO[str]] = lambda: sys.stderr) -> None:
        self._logger = logging.getLogger(APP_LOGGER)
        self._stderr = stderr

    def methods(self) -> list[Method]:
        methods = [Method("app.Log", str, self.log)]
        methods.append(
            Method("app.LogWithContext", applogger_pb2.LogEntry, self.log_with_context)
        )
        for name, level in _LEVELS.items():
            methods.append(Method(f"app.{name}", str, self._plain(level)))
            methods.append(
                Method(
                    f"app.{name}WithContext",
                    applogger_pb2.LogEntry,
                    self._with_context(level),
                )
            )
        return methods

    def _plain(self, level: int) -> Callable[[str], Awaitable[bool]]:
        async def log(message: str) -> bool:
            self._logger.log(level, "%s", message)
            return False

        return log

    def _with_context(
        self, level: int
    ) -> Callable[[applogger_pb2.LogEntry], Awaitable[applogger_pb2.Response]]:
        async def log(entry: applogger_pb2.LogEntry) -> applogger_pb2.Response:
            attrs = _attrs(entry)
            self._logger.log(level, "%s", entry.message, extra={"attrs": attrs})
            return applogger_pb2.Response()

        return log

    async def log(self, message: str) -> bool:
        self._write(message)
        return False

    async def log_with_context(
        self, entry: applogger_pb2.LogEntry
    ) -> applogger_pb2.Response:
        attrs = _attrs(entry)
        text = entry.message
        if attrs:
            text = f"{text.rstrip(chr(10))} {json.dumps(attrs)}"
        self._write(text)
        return applogger_pb2.Response()

    def _write(self, text: str) -> None:
        stream = self._stderr()
        stream.write(text if text.endswith("\n") else text + "\n")
        stream.flush()


def _attrs(entry: applogger_pb2.LogEntry) -> Mapping[str, str]:
    return {attr.key: attr.value for attr in entry.log_attrs}
