"""Relays with real PHP workers: pipes, TCP and unix sockets.

Over a socket relay any worker may connect first; the listener must pair
each connection with the process that opened it (by the pid it reports),
and what a worker writes to stdout is then a log stream, not the protocol.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pwd
import uuid
from pathlib import Path

import psutil
import pytest
import trio

from tests.php_workers import child_processes, php, request
from trio_runner.config.model import PoolConfig
from trio_runner.errors import BindError, WorkerStartError
from trio_runner.pool import open_pool
from trio_runner.process import ProcessSpawner, Worker, open_relay, worker_environment
from trio_runner.process.relay import Link
from trio_runner.protocol import Payload, Response, WorkerConnection
from trio_runner.stream import PipeStream

pytestmark = pytest.mark.php


def relay_spec(kind: str, tmp_path: Path) -> str:
    return {
        "pipes": "pipes",
        "tcp": "tcp://127.0.0.1:0",
        "unix": f"unix://{tmp_path}/r.sock",
    }[kind]


@pytest.mark.parametrize("kind", ["pipes", "tcp", "unix"])
async def test_relay_carries_requests_to_every_worker(
    kind: str, tmp_path: Path
) -> None:
    body = os.urandom(1 << 20)  # several reads and writes on every relay
    with trio.fail_after(10):
        async with open_pool(
            php("echo.php"),
            config=PoolConfig(num_workers=2),
            relay=relay_spec(kind, tmp_path),
        ) as pool:
            pids = {worker.pid for worker in pool.workers}
            answered = {int((await pool.exec(request(b"pid"))).body) for _ in range(4)}
            assert answered == pids
            reply = await pool.exec(Payload(b'{"k":"v"}', body))
            assert reply.context == b'{"k":"v"}'
            assert reply.body == body
    assert child_processes() == []


@pytest.mark.parametrize("kind", ["tcp", "unix"])
async def test_relay_socket_pairs_each_connection_with_its_process(
    kind: str, tmp_path: Path
) -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            relay = await open_relay(relay_spec(kind, tmp_path), relay_nursery=nursery)
            assert not relay.spec.endswith(":0"), "workers need the bound port"
            spawner = ProcessSpawner(
                argv=php("echo.php"),
                env=worker_environment(relay=relay.spec, mode="http"),
                relay=relay,
            )
            spawned = []

            async def spawn_one() -> None:
                spawned.append(await spawner.spawn(task_nursery=nursery, timeout=10))

            # Started together, they connect in any order.
            async with trio.open_nursery() as spawning:
                for _ in range(4):
                    spawning.start_soon(spawn_one)

            for one in spawned:
                assert one.link.pid == one.process.pid
                worker = Worker(one)
                await worker.request(request(b"pid"))
                event = await worker.next_event()
                assert isinstance(event, Response)
                assert event.payload.body == b"%d" % one.process.pid
                worker.dismiss()
                nursery.start_soon(functools.partial(worker.run, grace=5))
            for one in spawned:
                assert await one.process.wait() == 0
            nursery.cancel_scope.cancel()
    assert child_processes() == []


async def test_relay_tcp_port_zero_gives_workers_the_bound_port() -> None:
    with trio.fail_after(10):
        async with open_pool(
            php("report_env.php"),
            config=PoolConfig(num_workers=1),
            relay="tcp://127.0.0.1:0",
        ) as pool:
            env = json.loads((await pool.exec(request(b"env"))).body)
    host, _, port = env["RR_RELAY"].removeprefix("tcp://").rpartition(":")
    assert host == "127.0.0.1"
    assert int(port) > 0


async def test_relay_socket_logs_what_workers_write_to_stdout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_runner.worker")
    with trio.fail_after(10):
        async with open_pool(
            php("writes_to_stdout.php", "boot"),
            config=PoolConfig(num_workers=1),
            relay=f"unix://{tmp_path}/r.sock",
        ) as pool:
            pid = pool.workers[0].pid
            reply = await pool.exec(request(b"garbage"))
            assert int(reply.body) == pid, "stdout is not the protocol here"
            await trio.testing.wait_all_tasks_blocked()
    lines = {
        (record.getMessage(), record.pid, record.source)  # type: ignore[attr-defined]
        for record in caplog.records
        if record.name == "trio_runner.worker"
    }
    assert ("writes_to_stdout: debug output at boot", pid, "stdout") in lines
    assert ("writes_to_stdout: debug output mid-request", pid, "stdout") in lines


async def test_relay_socket_wrapper_that_does_not_exec_never_pairs() -> None:
    # The shell forks PHP instead of exec'ing it (the "; exit" stops that
    # optimisation), so the pid PHP reports is not the one spawned.
    command = ["sh", "-c", f"{' '.join(php('echo.php'))}; exit"]
    tag = uuid.uuid4().hex
    with trio.fail_after(10):
        with pytest.raises(WorkerStartError, match="did not answer the handshake"):
            async with open_pool(
                command,
                config=PoolConfig(num_workers=1, allocate_timeout=0.5),
                relay="tcp://127.0.0.1:0",
                env={"TEST_TAG": tag},
            ):
                pytest.fail("a wrapped worker paired")
    assert child_processes() == []
    # The PHP the shell forked was killed with its process group, not
    # orphaned: no process carrying this test's tag is left anywhere.
    assert [p for p in psutil.process_iter() if _tagged(p, tag)] == []


def _tagged(process: psutil.Process, tag: str) -> bool:
    try:
        return process.environ().get("TEST_TAG") == tag
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@pytest.mark.parametrize("kind", ["pipes", "stapled"])
async def test_link_sees_stray_bytes_of_an_idle_worker(kind: str) -> None:
    # What the pool checks before it gives an idle worker a request: bytes
    # it wrote after its last answer, on the pipe streams of the hot path
    # (PipeStream) as much as on trio's own.
    to_worker_r, to_worker_w = os.pipe()
    from_worker_r, from_worker_w = os.pipe()
    send = trio.lowlevel.FdStream(to_worker_w)
    receive = trio.lowlevel.FdStream(from_worker_r)
    stream: trio.abc.Stream = (
        PipeStream(send, receive)
        if kind == "pipes"
        else trio.StapledStream(send, receive)
    )
    link = Link(stream, WorkerConnection(), 1)
    try:
        assert not link.readable_now()
        os.write(from_worker_w, b"a stray line\n")
        assert link.readable_now()
    finally:
        os.close(to_worker_r)
        os.close(from_worker_w)
        await stream.aclose()


needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="only root can run workers as another user"
)


@needs_root
async def test_relay_unix_socket_lets_workers_of_server_user_connect(
    shared_dir: Path,
) -> None:
    path = shared_dir / "rr.sock"
    nobody = pwd.getpwnam("nobody")
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            relay = await open_relay(
                f"unix://{path}", relay_nursery=nursery, user="nobody"
            )
            assert (path.stat().st_uid, path.stat().st_gid) == (
                nobody.pw_uid,
                nobody.pw_gid,
            )
            spawner = ProcessSpawner(
                argv=php("echo.php"),
                env=worker_environment(relay=relay.spec, mode="http"),
                relay=relay,
                user="nobody",
            )
            spawned = await spawner.spawn(task_nursery=nursery, timeout=10)
            assert psutil.Process(spawned.process.pid).uids().real == nobody.pw_uid
            worker = Worker(spawned)
            worker.dismiss()
            await worker.run(grace=5)
            nursery.cancel_scope.cancel()
    assert spawned.process.returncode == 0
    assert child_processes() == []


@needs_root
async def test_relay_unix_socket_refuses_a_directory_server_user_cannot_enter(
    rpc_socket: Path,
) -> None:
    rpc_socket.parent.chmod(0o700)  # root's own: nobody may not enter it
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            with pytest.raises(BindError) as info:
                await open_relay(
                    f"unix://{rpc_socket}", relay_nursery=nursery, user="nobody"
                )
    message = str(info.value)
    assert message.startswith(
        f"server.relay: server.user 'nobody' cannot reach unix://{rpc_socket}: "
        f"it may not enter {rpc_socket.parent} (mode drwx------, owner uid 0)"
    )
    assert not await trio.Path(rpc_socket).exists(), "refused before binding"
