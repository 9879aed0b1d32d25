"""A Prometheus summary with quantiles, which prometheus-client lacks.

prometheus-client's ``Summary`` exports only ``_count`` and ``_sum``;
RoadRunner's (Go's) exports the quantiles its ``objectives`` name too, and
PHP apps declare summaries expecting them. ``QuantileSummary`` keeps each
series' recent observations and computes the quantiles when scraped:

- the window is the last ``max_age`` seconds (Go's default, ten minutes),
  and at most the last ``max_samples`` observations of a series, so memory
  stays bounded whatever the rate;
- a quantile is exact over that window (nearest rank), so the allowed error
  of an objective is met trivially; it is accepted for compatibility;
- a quantile of an empty window is NaN, as Go reports it.

``_count`` and ``_sum`` cover every observation since the series began.
It runs on one thread (trio's), so it takes no lock.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

__all__ = ["QuantileSummary"]

_MAX_AGE = 600.0
_MAX_SAMPLES = 1 << 14


class _Series:
    __slots__ = ("count", "recent", "total")

    def __init__(self, max_samples: int) -> None:
        self.count = 0
        self.total = 0.0
        self.recent: deque[tuple[float, float]] = deque(maxlen=max_samples)


class QuantileSummary:
    """A prometheus-client collector: one summary, with or without labels.

    Args:
        name: the full metric name.
        documentation: its HELP text.
        labelnames: label names; each observation gives their values.
        quantiles: the quantiles to export, each in (0, 1).
        max_age: seconds an observation counts towards the quantiles.
        max_samples: observations kept per series for the quantiles.
        clock: the time source, ``time.monotonic`` unless testing.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        quantiles: Sequence[float] = (),
        max_age: float = _MAX_AGE,
        max_samples: int = _MAX_SAMPLES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self.quantiles = tuple(sorted(quantiles))
        self._max_age = max_age
        self._max_samples = max_samples
        self._clock = clock
        self._series: dict[tuple[str, ...], _Series] = {}

    def observe(self, value: float, labelvalues: Sequence[str] = ()) -> None:
        """Record one observation in the series ``labelvalues``.

        Raises:
            ValueError: the number of label values is not the number of
                label names.
        """
        key = tuple(labelvalues)
        if len(key) != len(self.labelnames):
            raise ValueError(
                f"expected {len(self.labelnames)} label value(s), got {len(key)}"
            )
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(self._max_samples)
        series.count += 1
        series.total += value
        if self.quantiles:
            series.recent.append((self._clock(), value))

    def describe(self) -> Iterable[Metric]:
        return [Metric(self.name, self.documentation, "summary")]

    def collect(self) -> Iterable[Metric]:
        metric = Metric(self.name, self.documentation, "summary")
        oldest = self._clock() - self._max_age
        for key, series in self._series.items():
            labels = dict(zip(self.labelnames, key, strict=True))
            while series.recent and series.recent[0][0] < oldest:
                series.recent.popleft()
            values = sorted(value for _, value in series.recent)
            for quantile in self.quantiles:
                labelled = {**labels, "quantile": _go_float(quantile)}
                metric.samples.append(
                    Sample(self.name, labelled, _nearest_rank(values, quantile))
                )
            metric.samples.append(Sample(f"{self.name}_sum", labels, series.total))
            metric.samples.append(
                Sample(f"{self.name}_count", labels, float(series.count))
            )
        return [metric]


def _nearest_rank(values: Sequence[float], quantile: float) -> float:
    if not values:
        return math.nan
    rank = max(math.ceil(quantile * len(values)), 1)
    return values[rank - 1]


def _go_float(value: float) -> str:
    # "0.5", "0.99": the label values Go's client writes.
    return repr(value)
