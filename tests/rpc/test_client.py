"""The blocking RPC client against a real RpcServer (run in a thread)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from tests.rpc.services import Probe
from trio_runner.errors import RpcError, RpcUnreachable
from trio_runner.protocol import Codec
from trio_runner.rpc import RpcClient, RpcServer
from trio_runner.rpc.proto import status_pb2

TIMEOUT = 5


async def test_rpc_client_calls_in_each_codec(rpc_socket: Path) -> None:
    server = RpcServer(f"unix://{rpc_socket}", [Probe()])

    def calls() -> list[object]:
        with RpcClient(f"unix://{rpc_socket}", timeout=TIMEOUT) as client:
            return [
                client.call("test.Text", "json"),
                client.call("test.Raw", b"\x00raw", codec=Codec.RAW),
                client.call("test.Text", "packed", codec=Codec.MSGPACK),
                client.call(
                    "test.Proto",
                    status_pb2.Request(plugin="http"),
                    codec=Codec.PROTO,
                    reply_type=status_pb2.Response,
                ),
                client.call("test.Flag"),
            ]

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            results = await trio.to_thread.run_sync(calls)
            nursery.cancel_scope.cancel()
    assert results == [
        "json",
        b"\x00raw",
        "packed",
        status_pb2.Response(code=200, message="plugin http"),
        False,
    ]


async def test_rpc_client_raises_the_servers_error_text() -> None:
    server = RpcServer("tcp://127.0.0.1:0", [Probe()])

    def call(address: str) -> None:
        with RpcClient(address, timeout=TIMEOUT) as client:
            try:
                client.call("nosuch.Method", "x")
            finally:
                # The connection still serves after an error reply.
                assert client.call("test.Text", "ok") == "ok"

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            address = await nursery.start(server.run)
            with pytest.raises(RpcError) as info:
                await trio.to_thread.run_sync(call, address)
            nursery.cancel_scope.cancel()
    assert str(info.value) == "rpc: can't find service nosuch.Method"


def test_rpc_client_says_when_nothing_listens(rpc_socket: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        with pytest.raises(RpcUnreachable) as info:
            RpcClient(f"tcp://127.0.0.1:{port}").call("informer.List", True)
    assert str(info.value) == (
        f"no trio_runner answers RPC at tcp://127.0.0.1:{port}: connection refused"
    )
    with pytest.raises(RpcUnreachable) as info:
        RpcClient(f"unix://{rpc_socket}").call("informer.List", True)
    assert str(info.value) == (
        f"no trio_runner answers RPC at unix://{rpc_socket}: no such file or directory"
    )


def test_rpc_client_refuses_a_bad_address() -> None:
    with pytest.raises(ValueError, match="use tcp://host:port"):
        RpcClient("http://127.0.0.1:6001")


def test_rpc_client_reports_a_server_that_closes_mid_call() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = RpcClient(f"tcp://127.0.0.1:{port}", timeout=TIMEOUT)
        client.connect()
        conn, _ = listener.accept()
        conn.close()
        with pytest.raises(RpcError, match="the server closed the connection"):
            client.call("informer.List", True)
        client.close()


def test_rpc_client_says_when_another_protocol_answers() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = RpcClient(f"tcp://127.0.0.1:{port}", timeout=TIMEOUT)
        client.connect()
        conn, _ = listener.accept()
        with conn:
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            with pytest.raises(RpcError) as info:
                client.call("informer.List", True)
        client.close()
    assert str(info.value) == (
        f"informer.List: what answers at tcp://127.0.0.1:{port} does not speak "
        "goridge RPC (is rpc.listen the address of another service, such as "
        "http.address?)"
    )
