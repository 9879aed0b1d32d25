"""Test services and providers: methods whose behaviour the tests control,
a metrics sink and a status provider standing in for trio_runner.metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import trio

from trio_runner.errors import PoolClosed, RpcError
from trio_runner.rpc import Method
from trio_runner.rpc.proto import status_pb2
from trio_runner.status import PluginStatus


@attrs.frozen
class Point:
    name: str = ""
    value: float = 0.0
    labels: tuple[str, ...] = ()


@attrs.define
class Probe:
    """``test.*``: echo each argument type, wait on demand, fail on demand."""

    gates: dict[str, trio.Event] = attrs.field(factory=dict)
    seen: list[Any] = attrs.field(factory=list)

    def methods(self) -> list[Method]:
        return [
            Method("test.Text", str, self.echo),
            Method("test.Flag", bool, self.echo),
            Method("test.Raw", bytes, self.echo),
            Method("test.Point", Point, self.point),
            Method("test.Proto", status_pb2.Request, self.proto),
            Method("test.Object", dict, self.echo),
            Method("test.Wait", str, self.wait),
            Method("test.Fail", str, self.fail),
        ]

    async def echo(self, argument: Any) -> Any:
        self.seen.append(argument)
        return argument

    async def point(self, point: Point) -> dict[str, Any]:
        self.seen.append(point)
        return attrs.asdict(point)

    async def proto(self, request: status_pb2.Request) -> status_pb2.Response:
        self.seen.append(request)
        return status_pb2.Response(code=200, message=f"plugin {request.plugin}")

    async def wait(self, name: str) -> str:
        gate = self.gates.setdefault(name, trio.Event())
        await gate.wait()
        return f"done {name}"

    async def fail(self, how: str) -> None:
        if how == "rpc":
            raise RpcError("undefined collector x, try first Declare")
        if how == "closed":
            raise PoolClosed("pool http is not running")
        raise ZeroDivisionError("a bug")


@attrs.define
class Sink:
    """Records metrics calls; knows only what was declared."""

    calls: list[tuple[Any, ...]] = attrs.field(factory=list)
    declared: dict[str, Mapping[str, Any]] = attrs.field(factory=dict)

    def declare(self, name: str, collector: Mapping[str, Any]) -> None:
        self.declared.setdefault(name, collector)
        self.calls.append(("declare", name, dict(collector)))

    def _op(self, op: str, name: str, value: float, labels: Sequence[str]) -> None:
        if name not in self.declared:
            raise RpcError(f"undefined collector {name}, try first Declare")
        if self.declared[name].get("labels") and not labels:
            raise RpcError(f"required labels for collector {name}")
        self.calls.append((op, name, value, tuple(labels)))

    def add(self, name: str, value: float, labels: Sequence[str]) -> None:
        self._op("add", name, value, labels)

    def sub(self, name: str, value: float, labels: Sequence[str]) -> None:
        self._op("sub", name, value, labels)

    def set(self, name: str, value: float, labels: Sequence[str]) -> None:
        self._op("set", name, value, labels)

    def observe(self, name: str, value: float, labels: Sequence[str]) -> None:
        self._op("observe", name, value, labels)

    def unregister(self, name: str) -> None:
        self.declared.pop(name)
        self.calls.append(("unregister", name))


class Health:
    def status(self, plugin: str) -> PluginStatus:
        if plugin != "http":
            raise RpcError(f"no such plugin: {plugin}")
        return PluginStatus(plugin, 200, "1 of 1 workers alive")

    def ready(self, plugin: str) -> PluginStatus:
        return PluginStatus(plugin, 503, "all workers busy")
