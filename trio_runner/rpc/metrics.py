"""``metrics.*``: PHP code declaring and feeding Prometheus collectors.

The RPC side only: arguments are decoded as RoadRunner's metrics plugin
takes them (PROTOCOL.md 5.2) and handed to a ``MetricsSink``, which owns
the collectors and the ``/metrics`` endpoint (``trio_runner.metrics``).

==========================  =============================================  ======
method                      argument                                       reply
==========================  =============================================  ======
``metrics.Declare``         ``{"name", "collector": {"namespace",          true
                            "subsystem", "type", "help", "labels",
                            "buckets", "objectives"}}``
``metrics.Add`` / ``Sub``   ``{"name", "value", "labels"}``                true
/ ``Set`` / ``Observe``
``metrics.Unregister``      the name                                       true
==========================  =============================================  ======

Keys match case-insensitively (JSON and msgpack), as in RoadRunner; the
sink gets the collector's keys lower-cased.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from trio_runner.rpc.registry import Method

__all__ = ["Declare", "MetricsService", "MetricsSink", "Operation"]


class MetricsSink(Protocol):
    """Where ``metrics.*`` calls go. Each method raises ``RpcError`` with
    RoadRunner's text for the caller on failure, e.g. ``undefined collector
    X, try first Declare...`` or ``required labels for collector X``.

    ``declare`` of a name that exists already succeeds without a change.
    """

    def declare(self, name: str, collector: Mapping[str, Any]) -> None: ...

    def add(self, name: str, value: float, labels: Sequence[str]) -> None: ...

    def sub(self, name: str, value: float, labels: Sequence[str]) -> None: ...

    def set(self, name: str, value: float, labels: Sequence[str]) -> None: ...

    def observe(self, name: str, value: float, labels: Sequence[str]) -> None: ...

    def unregister(self, name: str) -> None: ...


@attrs.frozen
class Declare:
    """The argument of ``metrics.Declare``."""

    name: str = ""
    collector: dict[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class Operation:
    """The argument of ``metrics.Add``, ``Sub``, ``Set`` and ``Observe``."""

    name: str = ""
    value: float = 0.0
    labels: tuple[str, ...] = ()


class MetricsService:
    """The ``metrics`` service, calling ``sink``."""

    def __init__(self, sink: MetricsSink) -> None:
        self._sink = sink

    def methods(self) -> list[Method]:
        return [
            Method("metrics.Declare", Declare, self.declare),
            Method("metrics.Add", Operation, self.add),
            Method("metrics.Sub", Operation, self.sub),
            Method("metrics.Set", Operation, self.set),
            Method("metrics.Observe", Operation, self.observe),
            Method("metrics.Unregister", str, self.unregister),
        ]

    async def declare(self, argument: Declare) -> bool:
        # Go matches these keys ignoring case too; the sink sees them lower.
        collector = {key.lower(): value for key, value in argument.collector.items()}
        self._sink.declare(argument.name, collector)
        return True

    async def add(self, argument: Operation) -> bool:
        self._sink.add(argument.name, argument.value, argument.labels)
        return True

    async def sub(self, argument: Operation) -> bool:
        self._sink.sub(argument.name, argument.value, argument.labels)
        return True

    async def set(self, argument: Operation) -> bool:
        self._sink.set(argument.name, argument.value, argument.labels)
        return True

    async def observe(self, argument: Operation) -> bool:
        self._sink.observe(argument.name, argument.value, argument.labels)
        return True

    async def unregister(self, name: str) -> bool:
        self._sink.unregister(name)
        return True
