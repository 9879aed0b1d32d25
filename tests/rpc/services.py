"""Test services: methods whose behaviour the wire tests control."""

from __future__ import annotations

from typing import Any

import attrs
import trio

from trio_runner.errors import PoolClosed, RpcError
from trio_runner.rpc import Method
from trio_runner.rpc.proto import status_pb2


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
