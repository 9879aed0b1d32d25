"""HTTP requests by status class, and how long they took.

``RequestMetrics`` is ASGI middleware around the whole HTTP front (the
middleware stack and the bridge): every request is counted once, whether
PHP answered it, the static middleware did, or the pool refused it. What
it exports:

======================================  =========  ==========================
``rr_http_request_total{status}``       counter    requests, by status class
``rr_http_request_duration_seconds``    histogram  from the request's arrival
``{status}``                                       to the end of its response
======================================  =========  ==========================

``status`` is the class: ``"2xx"``, ``"3xx"``, ``"4xx"``, ``"5xx"`` (and
``"1xx"``, which only a protocol switch ends with). A client that left
before any answer counts as ``"4xx"`` (nginx's 499, as in the access log);
a request that failed inside trio_runner as ``"5xx"``.

Cost per request: two clock reads and two updates of series resolved in
advance (no label lookup on the hot path).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Histogram

from trio_runner.http.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    client_left,
)

__all__ = ["HttpMetrics", "RequestMetrics", "status_class"]

_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def status_class(status: int) -> str:
    """``"2xx"`` for 204; a status outside 100-599 counts as ``"5xx"``."""
    if 100 <= status <= 599:
        return _CLASSES[status // 100 - 1]
    return "5xx"


class HttpMetrics:
    """The HTTP front's counter and histogram, registered in ``registry``.

    Args:
        registry: the metrics service's registry.
        prefix: the metric name prefix, RoadRunner's ``rr_http``.
    """

    def __init__(self, registry: CollectorRegistry, *, prefix: str = "rr_http") -> None:
        self.requests = Counter(
            f"{prefix}_request",
            "HTTP requests handled, by status class.",
            ["status"],
            registry=registry,
        )
        self.duration = Histogram(
            f"{prefix}_request_duration_seconds",
            "HTTP request duration, from arrival to the end of the response, "
            "by status class.",
            ["status"],
            registry=registry,
        )
        # Resolved once: labels() takes a lock and a dict lookup per call.
        self._series = {
            name: (self.requests.labels(name), self.duration.labels(name))
            for name in _CLASSES
        }

    def record(self, status: int, seconds: float) -> None:
        """Count one request that ended with ``status`` after ``seconds``."""
        counter, histogram = self._series[status_class(status)]
        counter.inc()
        histogram.observe(seconds)


class RequestMetrics:
    """ASGI middleware feeding ``HttpMetrics`` from every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        left = client_left(scope)  # cancelled for a leaving client: 499
        try:
            await self.app(scope, receive, send_status)
        except BaseException:
            status = status or (499 if left() else 500)
            raise
        finally:
            # No answer at all: the client left first (nginx's 499).
            self.metrics.record(status or 499, time.perf_counter() - start)
