"""The RPC service of a whole server with real PHP workers.

The informer reads real processes (RSS, CPU, pids); AddWorker and
RemoveWorker start and stop real PHP processes; the lookups and two
interleaved calls are driven frame by frame on one connection.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
from pathlib import Path

import httpx
import psutil
import pytest
import trio

from tests.php_workers import PHP_DIR, is_gone
from tests.rpc.services import Sink
from tests.rpc.wire import open_wire
from tests.servers import free_port
from trio_runner.config import load_config
from trio_runner.errors import BindError
from trio_runner.protocol import Codec, Payload, encode_request
from trio_runner.rpc import MetricsService
from trio_runner.server import Server

pytestmark = pytest.mark.php

TIMEOUT = 15


async def start(php_server, path: Path, workers: int = 2) -> Server:
    server: Server = await php_server(
        script=PHP_DIR / "http_exit_on_path.php",
        num_workers=workers,
        overrides=[f"rpc.listen=unix://{path}"],
    )
    assert server.rpc_address == f"unix://{path}"
    return server


async def test_rpc_php_informer_shows_the_real_workers(php_server, rpc_socket) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, rpc_socket)
        async with open_wire(f"unix://{rpc_socket}") as wire:
            await wire.call(1, "informer.Workers", b'"http"')
            reply = await wire.reply()
        pids = [worker.pid for worker in server.pools["http"].workers]
    workers = json.loads(reply.body)["workers"]
    assert [w["pid"] for w in workers] == pids
    for worker in workers:
        process = psutil.Process(worker["pid"])
        assert worker["statusStr"] == "ready"
        assert worker["memoryUsage"] > 1 << 20, "a PHP process has MBs of RSS"
        assert worker["memoryUsage"] < 2 * process.memory_info().rss
        assert worker["CPUPercent"] >= 0
        assert "http_exit_on_path.php" in worker["command"]
        assert abs(worker["created"] / 1e9 - process.create_time()) < 5


async def test_rpc_php_lookup_errors_and_interleaved_calls(
    php_server, rpc_socket
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, rpc_socket)
        before = {worker.pid for worker in server.pools["http"].workers}
        async with open_wire(f"unix://{rpc_socket}") as wire:
            await wire.call(1, "informer.Nope", b'"http"')
            missing = await wire.frame()
            # One write, two calls: the reset takes a while, the list not.
            await wire.send(
                encode_request(2, "resetter.Reset", Codec.JSON, b'"http"')
                + encode_request(3, "informer.List", Codec.JSON, b"true")
            )
            first = await wire.reply()
            second = await wire.reply()
        after = {worker.pid for worker in server.pools["http"].workers}
    assert missing.flags == 0x48
    assert missing.payload == b"informer.Noperpc: can't find method informer.Nope"
    assert (first.seq, json.loads(first.body)) == (3, ["http"])
    assert (second.seq, json.loads(second.body)) == (2, True)
    assert after.isdisjoint(before), "the reset was done when it answered"
    assert all(is_gone(pid) for pid in before)


async def test_rpc_php_add_and_remove_worker_start_and_stop_processes(
    php_server, rpc_socket
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, rpc_socket, workers=1)
        pool = server.pools["http"]
        async with open_wire(f"unix://{rpc_socket}") as wire:
            await wire.call(1, "informer.AddWorker", b'"http"')
            assert (await wire.reply()).body == b"false"
            pids = [worker.pid for worker in pool.workers]
            assert len(pids) == 2
            assert all(psutil.pid_exists(pid) for pid in pids)

            await wire.call(2, "informer.RemoveWorker", b'"http"')
            assert (await wire.reply()).body == b"false"
            [left] = [worker.pid for worker in pool.workers]
            [removed] = set(pids) - {left}
            assert is_gone(removed), "stopped and reaped when it answered"

            await wire.call(3, "informer.RemoveWorker", b'"http"')
            refused = await wire.reply()
    assert refused.error is not None
    assert "refusing to remove the last one" in refused.error


async def test_rpc_php_workers_get_rr_rpc(php_server, rpc_socket) -> None:
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP_DIR / "report_env.php",
            overrides=[f"rpc.listen=unix://{rpc_socket}"],
        )
        reply = await server.pools["http"].exec(Payload(b"{}", b""))
    assert json.loads(reply.body)["RR_RPC"] == f"unix://{rpc_socket}"


async def test_rpc_address_in_use_fails_start_up_before_any_worker() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = load_config(
            text=(
                f'[server]\ncommand = "php {PHP_DIR / "echo.php"}"\n'
                f'[http]\naddress = "127.0.0.1:0"\n'
                f'[rpc]\nlisten = "tcp://127.0.0.1:{port}"\n'
            )
        )
        with trio.fail_after(TIMEOUT), pytest.raises(BindError) as info:
            await Server(config).run()
    assert f"rpc.listen: cannot listen on tcp://127.0.0.1:{port}" in str(info.value)


async def test_rpc_server_serves_the_extra_services_it_is_given(rpc_socket) -> None:
    sink = Sink()
    config = load_config(
        text=(
            f'[server]\ncommand = "php {PHP_DIR / "echo.php"}"\n'
            f'[http]\naddress = "127.0.0.1:0"\n[http.pool]\nnum_workers = 1\n'
            f'[rpc]\nlisten = "unix://{rpc_socket}"\n'
        )
    )
    server = Server(config, rpc_services=[MetricsService(sink)])
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            async with open_wire(f"unix://{rpc_socket}") as wire:
                await wire.call(1, "metrics.Declare", b'{"name": "hits"}')
                reply = await wire.reply()
            server.stop()
    assert reply.body == b"true"
    assert sink.calls == [("declare", "hits", {})]


@pytest.mark.parametrize("listen", ["unix", "tcp"])
async def test_rpc_php_worker_resets_its_own_pool_from_a_request(
    php_server, rpc_socket, listen: str
) -> None:
    # Bug report: the reset waited for every old worker to finish its
    # request, the caller's too, whose request waited on the reset: it hung
    # for reset_timeout (60 s) and answered 500.
    address = (
        f"unix://{rpc_socket}" if listen == "unix" else f"tcp://127.0.0.1:{free_port()}"
    )
    with trio.fail_after(TIMEOUT):
        server: Server = await php_server(
            script=PHP_DIR / "http_rpc_client.php",
            num_workers=2,
            overrides=[f"rpc.listen={address}", "http.pool.reset_timeout=30s"],
        )
        pool = server.pools["http"]
        old = list(pool.workers)
        before = {worker.pid for worker in old}
        async with httpx.AsyncClient(
            base_url=server.http_url, timeout=TIMEOUT
        ) as client:
            start = trio.current_time()
            reset = await client.get("/reset")
            took = trio.current_time() - start
            after = {(await client.get("/")).text for _ in range(4)}
        for worker in old:  # the caller too, once it has answered
            await worker.wait_stopped()
    assert reset.status_code == 200, reset.text
    assert int(reset.text.removeprefix("reset by ")) in before
    assert took < 10
    assert all(text.startswith("pid ") for text in after)
    assert {int(text.removeprefix("pid ")) for text in after}.isdisjoint(before)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run workers as nobody")
async def test_rpc_php_workers_of_server_user_reach_relay_and_rpc_sockets(
    php_server, shared_dir: Path
) -> None:
    nobody = pwd.getpwnam("nobody")
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP_DIR / "http_rpc_client.php",
            overrides=[
                "server.user=nobody",
                f"server.relay=unix://{shared_dir}/rr.sock",
                f"rpc.listen=unix://{shared_dir}/rpc.sock",
            ],
        )
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"{server.http_url}/workers")
    assert reply.status_code == 200, reply.text
    answer = json.loads(reply.text)  # the worker asked over RR_RPC
    assert answer["pids"] == [answer["me"]]
    assert psutil.Process(answer["me"]).uids().real == nobody.pw_uid


async def test_rpc_php_two_workers_resetting_at_once_both_return(
    php_server, rpc_socket
) -> None:
    # Bug report: each reset waited for the other caller's worker, whose
    # request waited on its own reset: both hung for reset_timeout.
    with trio.fail_after(TIMEOUT):
        server: Server = await php_server(
            script=PHP_DIR / "http_rpc_client.php",
            num_workers=2,
            overrides=[
                f"rpc.listen=unix://{rpc_socket}",
                "http.pool.reset_timeout=30s",
            ],
        )
        old = list(server.pools["http"].workers)
        answers: list[httpx.Response] = []
        async with (
            httpx.AsyncClient(base_url=server.http_url, timeout=TIMEOUT) as client,
            trio.open_nursery() as nursery,
        ):

            async def reset() -> None:
                answers.append(await client.get("/reset"))

            start = trio.current_time()
            nursery.start_soon(reset)
            nursery.start_soon(reset)
        took = trio.current_time() - start
        for worker in old:
            await worker.wait_stopped()
    assert [answer.status_code for answer in answers] == [200, 200], answers
    callers = {int(answer.text.removeprefix("reset by ")) for answer in answers}
    assert callers == {worker.pid for worker in old}  # one on each worker
    assert took < 10
