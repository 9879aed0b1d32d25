"""The metrics service: Prometheus' text format on ``GET /metrics``.

One ``CollectorRegistry`` per service, never prometheus-client's global
one, so two servers in one Python process keep their figures apart (and an
embedding program's own metrics stay out). It holds:

- ``PoolCollector``: every pool's workers, queue, refusals and restarts,
  read at scrape time;
- ``HttpMetrics``: requests by status class and their latency, fed by
  ``RequestMetrics`` around the HTTP front;
- ``AppMetrics``: the app's collectors, from ``[metrics.collect]`` and the
  RPC methods (``service.app`` is what the RPC server calls).

The endpoint always answers in the Prometheus text format 0.0.4, which
every Prometheus accepts, and leaves out prometheus-client's ``_created``
series (RoadRunner has none; they double the series count for nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import trio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from trio_runner.config.model import MetricsConfig
from trio_runner.http.endpoint import Endpoint, Reply, allow_methods, serve_endpoint
from trio_runner.metrics.app import AppMetrics
from trio_runner.metrics.http import HttpMetrics
from trio_runner.metrics.pool import PoolCollector
from trio_runner.pool import Pool

__all__ = ["MetricsService"]

logger = logging.getLogger(__name__)

_TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


class MetricsService:
    """Serves ``/metrics`` on ``[metrics] address``.

    Args:
        config: the ``[metrics]`` section.
        pools: the pools by name; read at each scrape, so it may be filled
            after the service is made (the server's own dict).

    Attributes:
        registry: this service's own registry.
        app: the app's collectors: the sink for the ``metrics.*`` RPC
            methods.
        http: the HTTP front's request metrics (``RequestMetrics`` feeds it).
        address: the bound ``host:port`` once serving, with the real port.

    Raises:
        ConfigError: two collectors of ``[metrics.collect]`` (or one and a
            built-in metric) would export the same name.
    """

    def __init__(self, config: MetricsConfig, pools: Mapping[str, Pool]) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.registry.register(PoolCollector(pools))
        self.http = HttpMetrics(self.registry)
        self.app = AppMetrics.from_config(self.registry, config.collect)
        self.address: str | None = None
        self._endpoint = Endpoint(self._handle)

    @property
    def url(self) -> str | None:
        """``http://host:port/metrics`` once serving."""
        return None if self.address is None else f"http://{self.address}/metrics"

    def exposition(self) -> bytes:
        """Every metric now, in the Prometheus text format."""
        return generate_latest(_WithoutCreated(self.registry))

    async def run(
        self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled; ``task_status`` gets the bound address.

        Raises:
            BindError: ``metrics.address`` cannot be listened on.
        """

        def ready(bound: str) -> None:
            self.address = bound
            logger.info("metrics: serving on %s", self.url)

        await serve_endpoint(
            self._endpoint,
            self.config.address,
            "metrics",
            ready,
            task_status=task_status,
        )

    def _handle(
        self, method: str, path: str, _query: Mapping[str, Sequence[str]]
    ) -> Reply:
        if path != "/metrics":
            return Reply(404, b"Not found: the metrics are at /metrics.\n")
        return allow_methods(
            method, lambda: Reply(200, self.exposition(), _TEXT_FORMAT)
        )


class _WithoutCreated:
    """A view of a registry without the ``_created`` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        for metric in self._registry.collect():
            if metric.type in _WITH_CREATED:
                created = f"{metric.name}_created"
                metric.samples = [s for s in metric.samples if s.name != created]
            yield metric


_WITH_CREATED = frozenset({"counter", "histogram", "summary"})
