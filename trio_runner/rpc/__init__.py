"""The goridge RPC control plane: the server, its services, and a client.

``RpcServer`` listens on ``rpc.listen`` and serves the methods of the
services it is given; ``trio_runner.server.Server`` gives it the informer,
the resetter, ``rpc.*`` and the app logger, plus ``metrics.*`` and
``status.*`` when their providers exist. Framing lives in
``trio_runner.protocol.rpc`` (sans-I/O, shared with the client); argument
and reply codecs in ``rpc.codec``.

::

    async with trio.open_nursery() as nursery:
        rpc = RpcServer("tcp://127.0.0.1:6001", [Informer(pools)])
        await nursery.start(rpc.run)

    with RpcClient("tcp://127.0.0.1:6001") as client:
        client.call("informer.Workers", "http")
"""

from __future__ import annotations

from trio_runner.rpc.applogger import AppLogger
from trio_runner.rpc.client import RpcClient
from trio_runner.rpc.informer import Informer
from trio_runner.rpc.meta import RpcInfo
from trio_runner.rpc.metrics import MetricsService, MetricsSink
from trio_runner.rpc.registry import Method, Registry, RpcService
from trio_runner.rpc.resetter import Resetter
from trio_runner.rpc.server import RpcServer
from trio_runner.rpc.status import StatusProvider, StatusService

__all__ = [
    "AppLogger",
    "Informer",
    "Method",
    "MetricsService",
    "MetricsSink",
    "Registry",
    "Resetter",
    "RpcClient",
    "RpcInfo",
    "RpcServer",
    "RpcService",
    "StatusProvider",
    "StatusService",
]
