"""Health checks: ``/health`` and ``/ready`` on ``[status] address``.

A *plugin* is a pool by name (``http``). For each:

- **healthy** while the pool has live workers, idle or busy (in debug mode,
  where workers start per request, while starting them does not fail);
- **ready** while at least one worker is free right now.

Otherwise it reports ``unavailable_status_code`` (503) with the reason.
``GET /health?plugin=http&plugin=...`` and ``/ready?plugin=...`` answer a
JSON array with one report per plugin asked for, in the order asked::

    [{"plugin_name": "http", "error_message": "", "status_code": 200}]

and the response's status is the worst (highest) of them. A plugin that is
not known reports 404 (``"error_message"`` says which plugins are); asking
for none answers 400 with a line saying how to ask.

``status`` and ``ready`` are for the ``status.Status`` and ``status.Ready``
RPC methods: they return the same report for one plugin, and raise
``RpcError`` for a plugin that is not known.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence

import attrs
import trio

from trio_runner.config.model import StatusConfig
from trio_runner.errors import RpcError
from trio_runner.http.endpoint import Endpoint, Reply, allow_methods, serve_endpoint
from trio_runner.pool import Pool

__all__ = ["PluginStatus", "StatusService"]

logger = logging.getLogger(__name__)

_OK = 200
_NOT_FOUND = 404


@attrs.frozen
class PluginStatus:
    """One plugin's report. ``code`` is an HTTP status: 200 when well;
    ``message`` says what is wrong, "" when nothing is."""

    plugin: str
    code: int
    message: str = ""

    def as_json(self) -> dict[str, object]:
        """The report as RoadRunner's status plugin writes it."""
        return {
            "plugin_name": self.plugin,
            "error_message": self.message,
            "status_code": self.code,
        }


class StatusService:
    """Answers health and readiness for the pools in ``pools``.

    Args:
        config: the ``[status]`` section.
        pools: the pools by name, read at each check (the server's dict).

    Attributes:
        address: the bound ``host:port`` once serving, with the real port.
    """

    def __init__(self, config: StatusConfig, pools: Mapping[str, Pool]) -> None:
        self.config = config
        self._pools = pools
        self.address: str | None = None
        self._endpoint = Endpoint(self._handle)

    @property
    def url(self) -> str | None:
        return None if self.address is None else f"http://{self.address}"

    def status(self, plugin: str) -> PluginStatus:
        """Whether ``plugin`` is healthy (``status.Status``).

        Raises:
            RpcError: no plugin of that name.
        """
        return self._known(plugin, self._health)

    def ready(self, plugin: str) -> PluginStatus:
        """Whether ``plugin`` can take a request now (``status.Ready``).

        Raises:
            RpcError: no plugin of that name.
        """
        return self._known(plugin, self._readiness)

    async def run(
        self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; ``task_status`` gets the bound address.

        Raises:
            BindError: ``status.address`` cannot be listened on.
        """

        def ready(bound: str) -> None:
            self.address = bound
            logger.info(
                "status: serving /health and /ready on %s (plugins: %s)",
                self.url,
                ", ".join(self._pools) or "none",
            )

        await serve_endpoint(
            self._endpoint,
            self.config.address,
            "status",
            ready,
            task_status=task_status,
        )

    # -- checks ------------------------------------------------------------

    def _known(
        self, plugin: str, check: Callable[[str, Pool], PluginStatus]
    ) -> PluginStatus:
        pool = self._pools.get(plugin)
        if pool is None:
            raise RpcError(self._unknown(plugin))
        return check(plugin, pool)

    def _unknown(self, plugin: str) -> str:
        known = ", ".join(self._pools) or "none"
        return f"no plugin named {plugin!r} reports a status (known: {known})"

    def _health(self, plugin: str, pool: Pool) -> PluginStatus:
        stats = pool.statistics()
        if stats.ready + stats.working > 0:
            return PluginStatus(plugin, _OK)
        failure = stats.start_failure
        if pool.config.debug and failure is None:
            return PluginStatus(plugin, _OK)  # a worker starts per request
        message = f"pool {pool.name} has no live workers"
        if failure is not None:
            message += f": {failure.partition(chr(10))[0]}"
        return PluginStatus(plugin, self.config.unavailable_status_code, message)

    def _readiness(self, plugin: str, pool: Pool) -> PluginStatus:
        stats = pool.statistics()
        if stats.ready > 0:
            return PluginStatus(plugin, _OK)
        health = self._health(plugin, pool)
        if health.code != _OK or pool.config.debug:
            return health
        return PluginStatus(
            plugin,
            self.config.unavailable_status_code,
            f"all {stats.working} workers of pool {pool.name} are busy"
            + (f" ({stats.waiting} requests waiting)" if stats.waiting else ""),
        )

    # -- HTTP --------------------------------------------------------------

    def _handle(
        self, method: str, path: str, query: Mapping[str, Sequence[str]]
    ) -> Reply:
        checks = {"/health": self._health, "/ready": self._readiness}
        check = checks.get(path.rstrip("/") or "/")
        if check is None:
            text = "Not found: ask /health?plugin=http or /ready?plugin=http.\n"
            return Reply(_NOT_FOUND, text.encode())
        return allow_methods(method, lambda: self._reports(path, check, query))

    def _reports(
        self,
        path: str,
        check: Callable[[str, Pool], PluginStatus],
        query: Mapping[str, Sequence[str]],
    ) -> Reply:
        plugins = query.get("plugin", ())
        if not plugins:
            known = ", ".join(self._pools) or "none"
            text = (
                f"Name the plugins to check: {path.rstrip('/')}?plugin=http"
                f"&plugin=... (known: {known}).\n"
            )
            return Reply(400, text.encode())
        reports = []
        for plugin in plugins:
            pool = self._pools.get(plugin)
            if pool is None:
                reports.append(PluginStatus(plugin, _NOT_FOUND, self._unknown(plugin)))
            else:
                reports.append(check(plugin, pool))
        body = json.dumps([report.as_json() for report in reports]).encode()
        worst = max(report.code for report in reports)
        return Reply(worst, body, "application/json")
