"""The built-in RPC services over the wire, on pools of fake workers.

informer, resetter, rpc.*, app.*, and the routing of metrics.* and
status.* to their providers (test doubles here; trio_runner.metrics
provides the real ones).
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio
import trio.testing

from tests.fakes import FakeSpawner
from tests.pool.test_pool import config
from tests.rpc.services import Health, Sink
from tests.rpc.wire import Wire, open_wire
from trio_runner import RR_VERSION
from trio_runner.errors import RpcError
from trio_runner.pool import Pool
from trio_runner.protocol import Codec
from trio_runner.rpc import (
    AppLogger,
    Informer,
    MetricsService,
    Resetter,
    RpcInfo,
    RpcServer,
    StatusService,
)
from trio_runner.rpc.proto import applogger_pb2, status_pb2

TIMEOUT = 5
WORKER_KEYS = {
    "pid",
    "status",
    "numExecs",
    "created",
    "memoryUsage",
    "CPUPercent",
    "command",
    "statusStr",
}


@attrs.define
class Setup:
    wire: Wire
    pools: dict[str, Pool]
    spawner: FakeSpawner
    sink: Sink
    stderr: io.StringIO
    seq: int = 0

    async def call(
        self, method: str, argument: object = None, codec: Codec = Codec.JSON
    ) -> Any:
        """Call; return the decoded JSON reply, or raise RpcError."""
        self.seq += 1
        if codec is Codec.JSON:
            body = b"" if argument is None else json.dumps(argument).encode()
        else:
            assert isinstance(argument, bytes)
            body = argument
        await self.wire.call(self.seq, method, body, codec)
        reply = await self.wire.reply()
        assert reply.seq == self.seq
        assert reply.method == method
        assert reply.codec is codec
        if reply.error is not None:
            raise RpcError(reply.error)
        return json.loads(reply.body) if codec is Codec.JSON else reply.body


@asynccontextmanager
async def services(num_workers: int = 2) -> AsyncIterator[Setup]:
    spawner = FakeSpawner(command="php worker.php")
    pools: dict[str, Pool] = {}
    sink = Sink()
    stderr = io.StringIO()
    data = {"version": "3", "rpc": {"listen": "tcp://127.0.0.1:6001"}}
    server = RpcServer(
        "tcp://127.0.0.1:0",
        [
            Informer(pools),
            Resetter(pools),
            RpcInfo(data),
            AppLogger(lambda: stderr),
            MetricsService(sink),
            StatusService(Health()),
        ],
    )
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            pool = Pool("http", spawner, config(num_workers=num_workers))
            await nursery.start(pool.run)
            pools["http"] = pool
            address = await nursery.start(server.run)
            async with open_wire(address) as wire:
                yield Setup(wire, pools, spawner, sink, stderr)
            await pool.aclose()
            nursery.cancel_scope.cancel()


async def test_informer_workers_lists_each_worker_with_rr_keys() -> None:
    async with services() as rpc:
        reply = await rpc.call("informer.Workers", "http")
        pids = [worker.pid for worker in rpc.pools["http"].workers]
    workers = reply["workers"]
    assert [w["pid"] for w in workers] == pids
    for worker in workers:
        assert set(worker) == WORKER_KEYS
        assert worker["status"] == 1
        assert worker["statusStr"] == "ready"
        assert worker["command"] == "php worker.php"
        assert worker["numExecs"] == 0
        assert worker["created"] > 1_600_000_000 * 10**9, "Unix nanoseconds"


async def test_informer_unknown_pool_has_null_workers() -> None:
    async with services() as rpc:
        assert await rpc.call("informer.Workers", "jobs") == {"workers": None}
        assert await rpc.call("informer.List", True) == ["http"]
        assert await rpc.call("resetter.List", True) == ["http"]


async def test_informer_add_and_remove_worker_resize_the_pool() -> None:
    async with services(num_workers=2) as rpc:
        pool = rpc.pools["http"]
        assert await rpc.call("informer.AddWorker", "http") is False
        assert len(pool.workers) == 3
        assert len((await rpc.call("informer.Workers", "http"))["workers"]) == 3
        assert await rpc.call("informer.RemoveWorker", "http") is False
        assert await rpc.call("informer.RemoveWorker", "http") is False
        with pytest.raises(RpcError) as info:
            await rpc.call("informer.RemoveWorker", "http")
        assert str(info.value) == (
            "pool http has 1 worker left; refusing to remove the last one "
            "(stop the server instead)"
        )
        assert len(pool.workers) == 1
        with pytest.raises(RpcError) as info:
            await rpc.call("informer.AddWorker", "grpc")
        assert str(info.value) == "plugin grpc does not support workers management"


async def test_resetter_reset_returns_once_new_workers_serve() -> None:
    async with services() as rpc:
        before = {w.pid for w in rpc.pools["http"].workers}
        assert await rpc.call("resetter.Reset", "http") is True
        after = {w.pid for w in rpc.pools["http"].workers}
        assert len(after) == 2
        assert after.isdisjoint(before)
        with pytest.raises(RpcError, match="no pool named 'kv' to reset"):
            await rpc.call("resetter.Reset", "kv")


async def test_rpc_version_and_config() -> None:
    async with services() as rpc:
        assert await rpc.call("rpc.Version", True) == RR_VERSION
        encoded = await rpc.call("rpc.Config", True)
    assert json.loads(base64.b64decode(encoded)) == {
        "version": "3",
        "rpc": {"listen": "tcp://127.0.0.1:6001"},
    }


@pytest.mark.parametrize(
    ("method", "level"),
    [
        ("app.Error", logging.ERROR),
        ("app.Warning", logging.WARNING),
        ("app.Info", logging.INFO),
        ("app.Debug", logging.DEBUG),
    ],
)
async def test_app_logger_logs_at_the_level_asked(
    method: str, level: int, caplog
) -> None:
    caplog.set_level(logging.DEBUG, logger="trio_runner.app")
    async with services() as rpc:
        assert await rpc.call(method, "order 42 shipped") is False
        entry = applogger_pb2.LogEntry(
            message="with context",
            log_attrs=[applogger_pb2.LogAttrs(key="order", value="42")],
        )
        context = f"{method}WithContext"
        assert await rpc.call(context, entry.SerializeToString(), Codec.PROTO) == b""
    records = [r for r in caplog.records if r.name == "trio_runner.app"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (level, "order 42 shipped"),
        (level, "with context"),
    ]
    assert records[1].attrs == {"order": "42"}


async def test_app_log_writes_raw_text_to_stderr(caplog) -> None:
    async with services() as rpc:
        assert await rpc.call("app.Log", "raw line") is False
        entry = applogger_pb2.LogEntry(
            message="ctx", log_attrs=[applogger_pb2.LogAttrs(key="k", value="v")]
        )
        await rpc.call("app.LogWithContext", entry.SerializeToString(), Codec.PROTO)
        text = rpc.stderr.getvalue()
    assert text == 'raw line\nctx {"k": "v"}\n'
    assert not [r for r in caplog.records if r.name == "trio_runner.app"]


async def test_metrics_calls_reach_the_sink_and_its_errors_the_caller() -> None:
    async with services() as rpc:
        collector = {"Type": "counter", "help": "Orders", "labels": ["kind"]}
        declare = {"name": "orders", "collector": collector}
        assert await rpc.call("metrics.Declare", declare) is True
        add = {"name": "orders", "value": 1, "labels": ["book"]}
        assert await rpc.call("metrics.Add", add) is True
        assert await rpc.call("metrics.Observe", {**add, "value": 0.5}) is True
        with pytest.raises(RpcError) as info:
            await rpc.call("metrics.Add", {"name": "nope", "value": 1})
        assert str(info.value) == "undefined collector nope, try first Declare"
        with pytest.raises(RpcError, match="required labels for collector orders"):
            await rpc.call("metrics.Set", {"name": "orders", "value": 3})
        assert await rpc.call("metrics.Unregister", "orders") is True
    assert rpc.sink.calls == [
        (
            "declare",
            "orders",
            {"type": "counter", "help": "Orders", "labels": ["kind"]},
        ),
        ("add", "orders", 1.0, ("book",)),
        ("observe", "orders", 0.5, ("book",)),
        ("unregister", "orders"),
    ]


async def test_status_calls_reach_the_provider() -> None:
    async with services() as rpc:
        request = status_pb2.Request(plugin="http").SerializeToString()
        status = await rpc.call("status.Status", request, Codec.PROTO)
        ready = await rpc.call("status.Ready", request, Codec.PROTO)
        with pytest.raises(RpcError, match="no such plugin: kv"):
            await rpc.call(
                "status.Status",
                status_pb2.Request(plugin="kv").SerializeToString(),
                Codec.PROTO,
            )
    assert status_pb2.Response.FromString(status) == status_pb2.Response(
        code=200, message="1 of 1 workers alive"
    )
    assert status_pb2.Response.FromString(ready).code == 503
