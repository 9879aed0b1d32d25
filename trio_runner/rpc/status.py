"""``status.*``: a pool's health and readiness over RPC.

``status.Status`` and ``status.Ready`` take a ``status.v1.Request`` with
the plugin (pool) name and answer a ``status.v1.Response``: an HTTP-like
code (200 good, 503 not) and a message. The decisions belong to a
``StatusProvider`` (``trio_runner.status``, which also serves ``/health``
and ``/ready``); this module only carries them over RPC.
"""

from __future__ import annotations

from typing import Protocol

from trio_runner.rpc.proto import status_pb2
from trio_runner.rpc.registry import Method

__all__ = ["StatusProvider", "StatusService"]


class StatusReport(Protocol):
    """One plugin's answer (``trio_runner.status.PluginStatus``)."""

    @property
    def code(self) -> int: ...
    @property
    def message(self) -> str: ...


class StatusProvider(Protocol):
    """Answers for one plugin (``trio_runner.status.StatusService``).

    ``status`` is liveness (workers exist and are not all dead), ``ready``
    is readiness (a worker could take a request now). Raise ``RpcError``
    for a plugin that does not exist.
    """

    def status(self, plugin: str) -> StatusReport: ...

    def ready(self, plugin: str) -> StatusReport: ...


class StatusService:
    """The ``status`` service, asking ``provider``."""

    def __init__(self, provider: StatusProvider) -> None:
        self._provider = provider

    def methods(self) -> list[Method]:
        return [
            Method("status.Status", status_pb2.Request, self.status),
            Method("status.Ready", status_pb2.Request, self.ready),
        ]

    async def status(self, request: status_pb2.Request) -> status_pb2.Response:
        report = self._provider.status(request.plugin)
        return status_pb2.Response(code=report.code, message=report.message)

    async def ready(self, request: status_pb2.Request) -> status_pb2.Response:
        report = self._provider.ready(request.plugin)
        return status_pb2.Response(code=report.code, message=report.message)
