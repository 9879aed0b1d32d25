"""Prometheus metrics: the pools, the HTTP front and the app's own.

``MetricsService`` serves them on ``[metrics] address`` at ``/metrics``;
``AppMetrics`` is the app's collectors (``[metrics.collect]`` and the
``metrics.*`` RPC methods); ``RequestMetrics`` is the ASGI middleware that
counts HTTP requests; ``PoolCollector`` reads the pools when scraped.
"""

from __future__ import annotations

from trio_runner.metrics.app import AppMetrics
from trio_runner.metrics.http import HttpMetrics, RequestMetrics, status_class
from trio_runner.metrics.pool import PoolCollector, pool_prefix
from trio_runner.metrics.service import MetricsService
from trio_runner.metrics.summary import QuantileSummary

__all__ = [
    "AppMetrics",
    "HttpMetrics",
    "MetricsService",
    "PoolCollector",
    "QuantileSummary",
    "RequestMetrics",
    "pool_prefix",
    "status_class",
]
