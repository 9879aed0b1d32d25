"""Each pool's figures, read when Prometheus scrapes (nothing is kept).

For a pool named ``P`` (``http``), named as RoadRunner names its own
(``rr_http_...``):

=================================  =======  ================================
``rr_P_total_workers``             gauge    live worker processes
``rr_P_workers_ready``             gauge    workers free for a request
``rr_P_workers_working``           gauge    workers running a request
``rr_P_worker_state{pid,state}``   gauge    1 for each worker, by state
``rr_P_workers_memory_bytes``      gauge    resident memory of all workers
``rr_P_worker_memory_bytes{pid}``  gauge    resident memory (RSS) per worker
``rr_P_worker_execs_total{pid}``   counter  requests each worker has run
``rr_P_execs_total``               counter  requests sent to the pool's
                                            workers
``rr_P_requests_queue``            gauge    requests waiting for a worker
``rr_P_no_free_workers_total``     counter  requests refused: no worker was
                                            free in time, or the queue full
``rr_P_worker_restarts_total``     counter  workers replaced, by ``reason``
{reason}                                    (``max_jobs``, ``crashed``, ...)
=================================  =======  ================================

The pool mapping is read at every scrape, so pools added after the
collector was registered show up too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from trio_runner.pool import Pool
from trio_runner.pool.supervisor import process_rss
from trio_runner.process.worker import Worker

__all__ = ["PoolCollector", "pool_prefix"]

_NOT_NAME = re.compile(r"[^a-zA-Z0-9_]")


def pool_prefix(name: str) -> str:
    """``rr_<name>``, with what a metric name cannot hold replaced by ``_``."""
    return f"rr_{_NOT_NAME.sub('_', name)}"


class PoolCollector:
    """A prometheus-client collector for every pool in ``pools``.

    Args:
        pools: the pools by name; read at each scrape.
        memory: a worker's RSS in bytes (None if it is gone).
    """

    def __init__(
        self,
        pools: Mapping[str, Pool],
        *,
        memory: Callable[[Worker], int | None] = process_rss,
    ) -> None:
        self._pools = pools
        self._memory = memory

    def describe(self) -> Iterable[Metric]:
        # The names, for the registry's clash check against app metrics.
        for name in list(self._pools):
            yield from _families(pool_prefix(name))

    def collect(self) -> Iterable[Metric]:
        for name, pool in list(self._pools.items()):
            yield from self._collect_pool(pool_prefix(name), pool)

    def _collect_pool(self, prefix: str, pool: Pool) -> Iterable[Metric]:
        stats = pool.statistics()
        (
            total,
            ready,
            working,
            state,
            memory_total,
            memory,
            worker_execs,
            execs,
            queue,
            refused,
            restarts,
        ) = _families(prefix)
        total.add_metric([], stats.workers)
        ready.add_metric([], stats.ready)
        working.add_metric([], stats.working)
        all_rss = 0
        for worker in pool.workers:
            pid = str(worker.pid)
            state.add_metric([pid, worker.state.value], 1)
            worker_execs.add_metric([pid], worker.execs)
            rss = self._memory(worker)
            if rss is not None:
                memory.add_metric([pid], rss)
                all_rss += rss
        memory_total.add_metric([], all_rss)
        execs.add_metric([], stats.execs)
        queue.add_metric([], stats.waiting)
        refused.add_metric([], stats.no_free_workers)
        for reason, count in sorted(stats.restarts.items()):
            restarts.add_metric([reason], count)
        return [
            *(total, ready, working, state, memory_total, memory, worker_execs),
            *(execs, queue, refused, restarts),
        ]


def _families(
    prefix: str,
) -> tuple[
    GaugeMetricFamily,
    GaugeMetricFamily,
    GaugeMetricFamily,
    GaugeMetricFamily,
    GaugeMetricFamily,
    GaugeMetricFamily,
    CounterMetricFamily,
    CounterMetricFamily,
    GaugeMetricFamily,
    CounterMetricFamily,
    CounterMetricFamily,
]:
    """The pool's metric families, empty, in the order the docstring lists."""
    pool = prefix.removeprefix("rr_")
    return (
        GaugeMetricFamily(
            f"{prefix}_total_workers", f"Live worker processes of pool {pool}."
        ),
        GaugeMetricFamily(
            f"{prefix}_workers_ready", f"Workers of pool {pool} free for a request."
        ),
        GaugeMetricFamily(
            f"{prefix}_workers_working", f"Workers of pool {pool} running a request."
        ),
        GaugeMetricFamily(
            f"{prefix}_worker_state",
            f"Each worker of pool {pool} (1) by its state.",
            labels=["pid", "state"],
        ),
        GaugeMetricFamily(
            f"{prefix}_workers_memory_bytes",
            f"Resident memory of all workers of pool {pool}.",
        ),
        GaugeMetricFamily(
            f"{prefix}_worker_memory_bytes",
            f"Resident memory (RSS) of each worker of pool {pool}.",
            labels=["pid"],
        ),
        CounterMetricFamily(
            f"{prefix}_worker_execs",
            f"Requests each worker of pool {pool} has run.",
            labels=["pid"],
        ),
        CounterMetricFamily(
            f"{prefix}_execs", f"Requests sent to the workers of pool {pool}."
        ),
        GaugeMetricFamily(
            f"{prefix}_requests_queue",
            f"Requests waiting for a free worker of pool {pool}.",
        ),
        CounterMetricFamily(
            f"{prefix}_no_free_workers",
            f"Requests refused because no worker of pool {pool} was free in "
            "time, its queue was full, or no worker could start.",
        ),
        CounterMetricFamily(
            f"{prefix}_worker_restarts",
            f"Workers of pool {pool} replaced, by reason.",
            labels=["reason"],
        ),
    )
