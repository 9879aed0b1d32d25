"""The app's own metrics: declared in ``[metrics.collect]`` or over RPC.

``AppMetrics`` is what the RPC methods ``metrics.Declare``, ``Add``, ``Sub``,
``Set``, ``Observe`` and ``Unregister`` call (PROTOCOL.md 5.2), one method
each. A refused call raises ``RpcError`` whose text is the reply's
error text, word for word: PHP matches its start (``undefined collector``,
``required labels for collector``).

What each kind of collector takes, as in RoadRunner:

=========  =====================================================
counter    ``add`` (never negative)
gauge      ``add``, ``sub``, ``set``
histogram  ``observe``
summary    ``observe`` (quantiles from ``objectives``; ``summary``)
=========  =====================================================

A collector with labels needs one value per label on every update; one
without labels ignores any it is given, as RoadRunner does. Declaring a
name that exists already succeeds and changes nothing, as in RoadRunner.

Names are exported as ``namespace_subsystem_name``. prometheus-client
writes a counter as ``<name>_total`` (unless the name ends so already),
where Go's client, and so RoadRunner, would keep the name as declared.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from trio_runner.config.kinds import Invalid, MetricName
from trio_runner.config.model import COLLECTOR_TYPES, CollectorConfig
from trio_runner.config.schema import KIND
from trio_runner.errors import ConfigError, RpcError
from trio_runner.metrics.summary import QuantileSummary

__all__ = ["AppMetrics"]

logger = logging.getLogger(__name__)

_NAME = MetricName()
# Which update each type takes.
_TAKES = {
    "counter": ("add",),
    "gauge": ("add", "sub", "set"),
    "histogram": ("observe",),
    "summary": ("observe",),
}
_RPC = {"add": "Add", "sub": "Sub", "set": "Set", "observe": "Observe"}


@attrs.frozen
class _Declared:
    config: CollectorConfig
    full_name: str
    metric: Collector


class AppMetrics:
    """The app's collectors, registered in ``registry`` (the service's own).

    Every method raises ``RpcError`` with the text an RPC reply
    carries; none blocks.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self._declared: dict[str, _Declared] = {}

    @classmethod
    def from_config(
        cls, registry: CollectorRegistry, collect: Mapping[str, CollectorConfig]
    ) -> AppMetrics:
        """The collectors of ``[metrics.collect]``, declared.

        Raises:
            ConfigError: one would export a name another metric exports.
        """
        metrics = cls(registry)
        for name, config in collect.items():
            try:
                metrics._declare(name, config)
            except RpcError as exc:
                raise ConfigError(f"metrics.collect.{name}: {exc}") from None
        return metrics

    @property
    def names(self) -> list[str]:
        """The declared collectors' names (as declared, not as exported)."""
        return list(self._declared)

    def declare(self, name: str, collector: Mapping[str, Any]) -> None:
        """``metrics.Declare``: add a collector, unless ``name`` exists.

        ``collector`` is the JSON object PHP sends: ``type`` (required),
        ``namespace``, ``subsystem``, ``help``, ``labels``, ``buckets``,
        ``objectives`` (``{"0.5": 0.05}``). As Go's JSON decoding does, the
        keys match whatever their case and null means "not given".
        """
        self._check_name(name)
        if name in self._declared:
            return
        if not isinstance(collector, Mapping):
            raise RpcError(
                f"collector {name}: the collector must be an object with at "
                f"least a type, got {collector!r}"
            )
        self._declare(name, _collector_config(name, collector))
        logger.info("metrics: declared %s %s", self._declared[name].config.type, name)

    def add(self, name: str, value: float, labels: Sequence[str]) -> None:
        """``metrics.Add``: a counter or gauge goes up by ``value``."""
        self._update("add", name, value, labels)

    def sub(self, name: str, value: float, labels: Sequence[str]) -> None:
        """``metrics.Sub``: a gauge goes down by ``value``."""
        self._update("sub", name, value, labels)

    def set(self, name: str, value: float, labels: Sequence[str]) -> None:
        """``metrics.Set``: a gauge is set to ``value``."""
        self._update("set", name, value, labels)

    def observe(self, name: str, value: float, labels: Sequence[str]) -> None:
        """``metrics.Observe``: a histogram or summary records ``value``."""
        self._update("observe", name, value, labels)

    def unregister(self, name: str) -> None:
        """``metrics.Unregister``: remove a collector and its series."""
        declared = self._lookup(name)
        self._registry.unregister(declared.metric)
        del self._declared[name]
        logger.info("metrics: unregistered %s", name)

    # -- internals ---------------------------------------------------------

    def _check_name(self, name: object) -> None:
        try:
            _NAME.parse(name)
        except Invalid as exc:
            raise RpcError(f"collector name {exc}") from None

    def _declare(self, name: str, config: CollectorConfig) -> None:
        if config.buckets and config.type != "histogram":
            raise RpcError(
                f"collector {name}: buckets are for a histogram, and this is "
                f"a {config.type}: drop them or make it a histogram"
            )
        if config.objectives and config.type != "summary":
            raise RpcError(
                f"collector {name}: objectives are for a summary, and this is "
                f"a {config.type}: drop them or make it a summary"
            )
        full_name = "_".join(
            part for part in (config.namespace, config.subsystem, name) if part
        )
        metric = _build(full_name, config)
        try:
            self._registry.register(metric)
        except ValueError:
            raise RpcError(
                f"collector {name} would export {full_name}, which another "
                "metric exports already: declare it under another name or "
                "namespace"
            ) from None
        self._declared[name] = _Declared(config, full_name, metric)

    def _lookup(self, name: str) -> _Declared:
        declared = self._declared.get(name)
        if declared is None:
            raise RpcError(
                f"undefined collector {name}, try first Declare it "
                f"(metrics.Declare) or list it as [metrics.collect.{name}]"
            )
        return declared

    def _update(
        self, method: str, name: str, value: float, labels: Sequence[str]
    ) -> None:
        declared = self._lookup(name)
        kind = declared.config.type
        if method not in _TAKES[kind]:
            takes = " and ".join(f"metrics.{_RPC[m]}" for m in _TAKES[kind])
            raise RpcError(
                f"collector {name} is a {kind}: it takes {takes}, "
                f"not metrics.{_RPC[method]}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RpcError(f"collector {name}: value must be a number")
        target = _series(name, declared, labels)
        if method == "add" and kind == "counter":
            if value < 0:
                raise RpcError(
                    f"collector {name} is a counter: it can only go up, "
                    f"got {value:g}; use a gauge for values that go down"
                )
            target.inc(value)
        elif method == "add":
            target.inc(value)
        elif method == "sub":
            target.dec(value)
        elif method == "set":
            target.set(value)
        elif isinstance(declared.metric, QuantileSummary):
            declared.metric.observe(value, labels)
        else:
            target.observe(value)


def _series(name: str, declared: _Declared, labels: Sequence[str]) -> Any:
    """The child series to update (the metric itself without labels)."""
    labelnames = declared.config.labels
    if not labelnames:
        return declared.metric  # RoadRunner ignores labels given to it
    if not labels:
        raise RpcError(f"required labels for collector {name}")
    if len(labels) != len(labelnames) or not all(isinstance(v, str) for v in labels):
        raise RpcError(
            f"collector {name} takes {len(labelnames)} label value(s) "
            f"({', '.join(labelnames)}), got {list(labels)!r}"
        )
    if isinstance(declared.metric, QuantileSummary):
        return declared.metric
    return declared.metric.labels(*labels)  # type: ignore[attr-defined]


def _build(full_name: str, config: CollectorConfig) -> Collector:
    help_text = config.help or full_name
    labels = config.labels
    if config.type == "counter":
        return Counter(full_name, help_text, labels, registry=None)
    if config.type == "gauge":
        return Gauge(full_name, help_text, labels, registry=None)
    if config.type == "histogram":
        if config.buckets:
            return Histogram(
                full_name, help_text, labels, registry=None, buckets=config.buckets
            )
        return Histogram(full_name, help_text, labels, registry=None)
    quantiles = [quantile for quantile, _error in config.objectives]
    return QuantileSummary(full_name, help_text, labels, quantiles=quantiles)


def _collector_config(name: str, raw: Mapping[str, Any]) -> CollectorConfig:
    """A ``CollectorConfig`` from PHP's JSON, each value checked as in a file."""
    fields = {field.name: field for field in attrs.fields(CollectorConfig)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field = fields.get(str(key).lower())
        if field is None or value is None:
            continue  # Go's decoder skips unknown keys
        if field.name == "objectives" and value == []:
            value = {}  # PHP encodes an empty array as []
        try:
            values[field.name] = field.metadata[KIND].parse(value)
        except Invalid as exc:
            raise RpcError(f"collector {name}: {field.name} {exc}") from None
    if "type" not in values:
        types = ", ".join(COLLECTOR_TYPES)
        raise RpcError(f"collector {name}: type is required ({types})")
    return CollectorConfig(**values)
