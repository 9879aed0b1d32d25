"""The RPC method registry: ``"Service.Method"`` names to typed handlers.

A service is any object with a ``methods()`` that lists its ``Method``
values; the server registers them all at construction. Looking a name up
fails with Go ``net/rpc``'s texts, which PHP code matches (PROTOCOL.md 5.1)::

    "informer"              rpc: service/method request ill-formed: informer
    "nosuch.Thing"          rpc: can't find service nosuch.Thing
    "informer.Nope"         rpc: can't find method informer.Nope

As in Go, the service is everything before the *last* dot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import attrs

from trio_runner.errors import RpcError
from trio_runner.rpc.codec import zero_value

__all__ = ["Handler", "Method", "Registry", "RpcService"]

Handler = Callable[[Any], Awaitable[Any]]


@attrs.frozen
class Method:
    """One callable method.

    Attributes:
        name: ``"Service.Method"``, e.g. ``"informer.Workers"``.
        argument: the type the body is decoded into (see ``rpc.codec``).
        handler: ``async (argument) -> reply``. It raises ``RpcError`` (or
            any ``TrioRunnerError``) to answer with that error text.
    """

    name: str
    argument: type
    handler: Handler

    def __attrs_post_init__(self) -> None:
        service, dot, method = self.name.rpartition(".")
        if not (dot and service and method):
            raise ValueError(f"RPC method names are Service.Method, got {self.name!r}")
        zero_value(self.argument)  # TypeError now, not at the first call


class RpcService(Protocol):
    """What the RPC server registers: an object that lists its methods."""

    def methods(self) -> Iterable[Method]: ...


class Registry:
    """Methods by name, with RoadRunner's lookup errors."""

    def __init__(self, services: Iterable[RpcService] = ()) -> None:
        self._methods: dict[str, Method] = {}
        self._services: set[str] = set()
        for service in services:
            self.add_service(service)

    def add_service(self, service: RpcService) -> None:
        for method in service.methods():
            self.add(method)

    def add(self, method: Method) -> None:
        """Register one method.

        Raises:
            ValueError: a method of that name is registered already.
        """
        if method.name in self._methods:
            raise ValueError(f"RPC method {method.name} is registered twice")
        self._methods[method.name] = method
        self._services.add(method.name.rpartition(".")[0])

    @property
    def names(self) -> list[str]:
        return sorted(self._methods)

    def lookup(self, name: str) -> Method:
        """The method called ``name``.

        Raises:
            RpcError: with net/rpc's text when the name is ill-formed or
                names no service or method.
        """
        method = self._methods.get(name)
        if method is not None:
            return method
        service, dot, _ = name.rpartition(".")
        if not dot:
            raise RpcError(f"rpc: service/method request ill-formed: {name}")
        if service not in self._services:
            raise RpcError(f"rpc: can't find service {name}")
        raise RpcError(f"rpc: can't find method {name}")
