"""Health and readiness: /health and /ready, and the status.* RPC methods."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from tests.fakes import FakePHP, FakeSpawner
from tests.metrics.scrape import value
from tests.servers import PHP
from trio_runner.config import PoolConfig, StatusConfig
from trio_runner.errors import BindError, RpcError
from trio_runner.pool import Pool
from trio_runner.protocol import Payload
from trio_runner.status import PluginStatus, StatusService

LOCAL = StatusConfig(address="127.0.0.1:0")

# Real PHP: each test bounds itself (the machine is shared and slow).
TIMEOUT = 30


class Gate:
    def __init__(self) -> None:
        self.open = trio.Event()

    async def __call__(self, php: FakePHP, payload: Payload) -> None:
        if payload.body == b"wait":
            await self.open.wait()
        await php.respond(b"{}", payload.body)


@asynccontextmanager
async def running_pool(
    spawner: FakeSpawner, num_workers: int = 2, **options: object
) -> AsyncIterator[Pool]:
    config = PoolConfig(num_workers=num_workers, **options)  # type: ignore[arg-type]
    pool = Pool("http", spawner, config)
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        await pool.aclose()


async def test_status_ready_turns_unavailable_while_every_worker_is_busy() -> None:
    gate = Gate()
    async with running_pool(FakeSpawner(gate)) as pool:
        service = StatusService(LOCAL, {"http": pool})
        assert service.status("http") == PluginStatus("http", 200)
        assert service.ready("http") == PluginStatus("http", 200)
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(pool.exec, Payload(b"{}", b"wait"))
            await trio.testing.wait_all_tasks_blocked()
            assert service.status("http") == PluginStatus("http", 200)
            assert service.ready("http") == PluginStatus(
                "http", 503, "all 2 workers of pool http are busy (1 requests waiting)"
            )
            gate.open.set()
        assert service.ready("http").code == 200


async def test_status_unhealthy_while_no_worker_can_start(autojump_clock) -> None:
    broken = False

    async def boot(process) -> None:  # type: ignore[no-untyped-def]
        if broken:
            process.exit(255)

    config = StatusConfig(address="127.0.0.1:0", unavailable_status_code=500)
    async with running_pool(FakeSpawner(boot=boot), num_workers=1) as pool:
        service = StatusService(config, {"http": pool})
        broken = True
        pool.workers[0].process.exit(1)  # type: ignore[attr-defined]
        await trio.sleep(1)
        health = service.status("http")
        assert health.code == 500
        assert health.message.startswith("pool http has no live workers: ")
        assert "fake worker failed" in health.message
        assert service.ready("http") == health
        broken = False
        await trio.sleep(11)
        assert service.status("http").code == 200
        assert service.ready("http").code == 200


async def test_status_debug_pool_is_healthy_without_resident_workers() -> None:
    async with running_pool(FakeSpawner(), debug=True) as pool:
        assert pool.workers == []
        service = StatusService(LOCAL, {"http": pool})
        assert service.status("http").code == 200
        assert service.ready("http").code == 200


def test_status_rpc_methods_refuse_an_unknown_plugin() -> None:
    service = StatusService(LOCAL, {})
    for method in (service.status, service.ready):
        with pytest.raises(RpcError) as info:
            method("jobs")
        assert (
            str(info.value) == "no plugin named 'jobs' reports a status (known: none)"
        )


async def test_status_endpoint_reports_each_plugin_and_the_worst_status() -> None:
    gate = Gate()
    async with running_pool(FakeSpawner(gate), num_workers=1) as pool:
        service = StatusService(LOCAL, {"http": pool})
        async with trio.open_nursery() as nursery, httpx.AsyncClient() as client:
            address = await nursery.start(service.run)
            base = f"http://{address}"
            reply = await client.get(f"{base}/health?plugin=http")
            assert reply.status_code == 200
            assert reply.headers["content-type"] == "application/json"
            assert reply.json() == [
                {"plugin_name": "http", "error_message": "", "status_code": 200}
            ]
            reply = await client.get(f"{base}/ready", params=[("plugin", "http")] * 2)
            assert [r["plugin_name"] for r in reply.json()] == ["http", "http"]

            reply = await client.get(f"{base}/health?plugin=http&plugin=grpc")
            assert reply.status_code == 404
            assert reply.json()[1] == {
                "plugin_name": "grpc",
                "error_message": "no plugin named 'grpc' reports a status "
                "(known: http)",
                "status_code": 404,
            }

            nursery.start_soon(pool.exec, Payload(b"{}", b"wait"))
            await trio.testing.wait_all_tasks_blocked()
            reply = await client.get(f"{base}/ready?plugin=grpc&plugin=http")
            assert reply.status_code == 503, "the worst of 404 and 503"
            gate.open.set()

            reply = await client.get(f"{base}/health")
            assert reply.status_code == 400
            assert "/health?plugin=http" in reply.text
            reply = await client.get(f"{base}/live")
            assert reply.status_code == 404
            reply = await client.post(f"{base}/health?plugin=http")
            assert reply.status_code == 405
            nursery.cancel_scope.cancel()


# --- with real PHP workers ------------------------------------------------------


async def get(
    client: httpx.AsyncClient, url: str
) -> tuple[int, list[dict[str, object]]]:
    reply = await client.get(url)
    return reply.status_code, reply.json()


async def wait_for_status(client: httpx.AsyncClient, url: str, status: int) -> None:
    """Poll ``url`` until it answers ``status``; bound it with fail_after."""
    # Another process's state has no event to wait on: poll it.
    while (await client.get(url)).status_code != status:  # noqa: ASYNC110
        await trio.sleep(0.05)


@pytest.mark.php
async def test_status_flips_when_real_workers_are_all_busy_and_back(
    php_server, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP / "http_block_until_file.php",
            num_workers=2,
            overrides=["status.address=127.0.0.1:0", "metrics.address=127.0.0.1:0"],
        )
        health = f"{server.status.url}/health?plugin=http"
        ready = f"{server.status.url}/ready?plugin=http"
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            assert await get(client, ready) == (
                200,
                [{"plugin_name": "http", "error_message": "", "status_code": 200}],
            )
            for _ in range(3):
                assert (await client.get(server.http_url + "/")).status_code == 200

            async with trio.open_nursery() as nursery:
                for _ in range(2):
                    nursery.start_soon(
                        client.get, f"{server.http_url}/block?until={release}"
                    )
                await wait_for_status(client, ready, 503)
                assert await get(client, ready) == (
                    503,
                    [
                        {
                            "plugin_name": "http",
                            "error_message": "all 2 workers of pool http are busy",
                            "status_code": 503,
                        }
                    ],
                )
                assert (await client.get(health)).status_code == 200
                text = (await client.get(server.metrics.url)).text
                assert value(text, "rr_http_workers_working") == 2
                assert value(text, "rr_http_workers_ready") == 0
                release.touch()
            assert (await client.get(ready)).status_code == 200

            # A request is counted once its app returns, which may be just
            # after the client has read the response.
            while True:
                text = (await client.get(server.metrics.url)).text
                if value(text, "rr_http_request_total", status="2xx") == 5:
                    break
                await trio.sleep(0.05)
            assert (
                value(text, "rr_http_request_duration_seconds_count", status="2xx") == 5
            )
            assert value(text, "rr_http_execs_total") == 5
            assert value(text, "rr_http_workers_ready") == 2
            pids = [str(worker.pid) for worker in server.pools["http"].workers]
            for pid in pids:
                assert value(text, "rr_http_worker_memory_bytes", pid=pid) > 1_000_000


@pytest.mark.php
async def test_status_flips_when_real_workers_are_dead_and_back(
    php_server, tmp_path: Path
) -> None:
    flag = tmp_path / "broken"
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP / "http_boot_flag.php",
            num_workers=2,
            overrides=[
                "status.address=127.0.0.1:0",
                f"server.env.BOOT_FLAG={flag}",
            ],
        )
        health = f"{server.status.url}/health?plugin=http"
        ready = f"{server.status.url}/ready?plugin=http"
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            assert (await client.get(health)).status_code == 200
            flag.touch()  # a broken deploy: replacements exit at boot
            for worker in server.pools["http"].workers:
                os.kill(worker.pid, signal.SIGKILL)  # workers this test started
            await wait_for_status(client, health, 503)
            # Dead at once; then, once a replacement failed to boot, why.
            while True:
                status, [report] = await get(client, health)
                assert (status, report["status_code"]) == (503, 503)
                message = str(report["error_message"])
                assert message.startswith("pool http has no live workers")
                if message.startswith("pool http has no live workers: "):
                    break
                await trio.sleep(0.05)
            assert (await client.get(ready)).status_code == 503
            assert (await client.get(server.http_url + "/")).status_code == 503

            flag.unlink()
            await wait_for_status(client, health, 200)
            await wait_for_status(client, ready, 200)
            assert (await client.get(server.http_url + "/")).status_code == 200


@pytest.mark.php
async def test_status_address_in_use_fails_server_start_naming_the_setting(
    php_server,
) -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with trio.fail_after(TIMEOUT), pytest.raises(BindError) as info:
            await php_server(
                script=PHP / "http_block_until_file.php",
                overrides=[f"status.address=127.0.0.1:{port}"],
            )
    assert str(info.value).startswith(f"status: cannot listen on 127.0.0.1:{port}")
    assert str(info.value).endswith("(set status.address to a free host:port)")
