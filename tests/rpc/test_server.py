"""The RPC server on the wire: framing, codecs, error texts, concurrency.

Each test starts an ``RpcServer`` on a free loopback port (or a unix socket
in the test's directory) and talks to it with raw frames, so what is pinned
is the bytes PHP sees. Real sockets, so real time, guarded by fail_after.
"""

from __future__ import annotations

import json
import os
import pwd
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgpack
import pytest
import trio

from tests.rpc.services import Point, Probe
from tests.rpc.wire import open_wire
from trio_runner.errors import BindError
from trio_runner.protocol import Codec, encode_frame, encode_request
from trio_runner.rpc import RpcServer
from trio_runner.rpc.proto import status_pb2

TIMEOUT = 5


@asynccontextmanager
async def serving(
    probe: Probe | None = None, listen: str = "tcp://127.0.0.1:0"
) -> AsyncIterator[str]:
    server = RpcServer(listen, [probe or Probe()])
    async with trio.open_nursery() as nursery:
        address = await nursery.start(server.run)
        yield address
        nursery.cancel_scope.cancel()


async def test_rpc_server_answers_a_json_call() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving() as address, open_wire(address) as wire:
            await wire.send(encode_request(1, "test.Text", Codec.JSON, b'"http"'))
            frame = await wire.frame()
    assert frame.flags == 0x08
    assert frame.options == (1, 9)
    assert frame.payload == b'test.Text"http"'


@pytest.mark.parametrize(
    ("method", "codec", "body", "reply"),
    [
        ("test.Text", Codec.JSON, b'"hi"', b'"hi"'),
        ("test.Flag", Codec.JSON, b"true", b"true"),
        ("test.Raw", Codec.RAW, b"\x00\xffbytes", b"\x00\xffbytes"),
        ("test.Raw", Codec.JSON, b'"AP8="', b'"AP8="'),
        ("test.Text", Codec.MSGPACK, msgpack.packb("hi"), msgpack.packb("hi")),
        (
            "test.Proto",
            Codec.PROTO,
            status_pb2.Request(plugin="http").SerializeToString(),
            status_pb2.Response(code=200, message="plugin http").SerializeToString(),
        ),
        (
            "test.Proto",
            Codec.JSON,
            b'{"plugin": "http"}',
            b'{"code":"200","message":"plugin http"}',
        ),
    ],
    ids=["json", "json-bool", "raw", "json-bytes", "msgpack", "proto", "json-proto"],
)
async def test_rpc_server_speaks_each_codec(
    method: str, codec: Codec, body: bytes, reply: bytes
) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving() as address, open_wire(address) as wire:
            await wire.call(4, method, body, codec)
            frame = await wire.frame()
    assert frame.flags == codec, "the reply echoes the codec"
    assert frame.options == (4, len(method))
    assert frame.payload == method.encode() + reply


async def test_rpc_server_matches_json_keys_ignoring_case() -> None:
    probe = Probe()
    body = json.dumps({"NAME": "hits", "Value": 2, "labels": ["a", "b"]}).encode()
    with trio.fail_after(TIMEOUT):
        async with serving(probe) as address, open_wire(address) as wire:
            await wire.call(1, "test.Point", body)
            reply = await wire.reply()
            await wire.call(
                2, "test.Point", msgpack.packb({"name": "m"}), Codec.MSGPACK
            )
            packed = await wire.reply()
    assert json.loads(reply.body) == {
        "name": "hits",
        "value": 2.0,
        "labels": ["a", "b"],
    }
    assert probe.seen[0] == Point("hits", 2.0, ("a", "b"))
    assert msgpack.unpackb(packed.body) == {"name": "m", "value": 0.0, "labels": []}


async def test_rpc_server_empty_body_is_the_zero_value() -> None:
    probe = Probe()
    with trio.fail_after(TIMEOUT):
        async with serving(probe) as address, open_wire(address) as wire:
            for seq, method in enumerate(["test.Text", "test.Flag", "test.Point"]):
                await wire.call(seq, method, b"")
                assert (await wire.reply()).error is None
            await wire.call(9, "test.Proto", b"", Codec.PROTO)
            assert (await wire.reply()).error is None
    assert probe.seen == ["", False, Point(), status_pb2.Request()]


@pytest.mark.parametrize(
    ("method", "text"),
    [
        ("informer", "rpc: service/method request ill-formed: informer"),
        ("nosuch.Thing", "rpc: can't find service nosuch.Thing"),
        ("test.Nope", "rpc: can't find method test.Nope"),
        ("metrics.Declare", "rpc: can't find service metrics.Declare"),
    ],
)
async def test_rpc_server_lookup_errors_have_net_rpc_texts(
    method: str, text: str
) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving() as address, open_wire(address) as wire:
            await wire.call(11, method, b'"x"')
            frame = await wire.frame()
    assert frame.flags == 0x08 | 0x40
    assert frame.options == (11, len(method))
    assert frame.payload == method.encode() + text.encode()


@pytest.mark.parametrize(
    ("method", "codec", "body", "text"),
    [
        (
            "test.Text",
            Codec.JSON,
            b"5",
            "json: the argument must be a string, got the number 5",
        ),
        ("test.Text", Codec.JSON, b"{", "json: the argument is not valid JSON"),
        (
            "test.Point",
            Codec.JSON,
            b'{"value": "x"}',
            'json: "value" must be a number, got a string',
        ),
        (
            "test.Point",
            Codec.JSON,
            b'{"labels": [1]}',
            'json: "labels"[0] must be a string',
        ),
        ("test.Text", Codec.PROTO, b"\x0a\x01x", "proto: this method takes a string"),
        ("test.Text", Codec.RAW, b"x", "raw: this method takes a string"),
        ("test.Text", Codec.GOB, b"x", "the gob codec is not supported"),
        ("test.Object", Codec.RAW, b"x", "raw: this method takes an object"),
        ("test.Fail", Codec.JSON, b'"rpc"', "undefined collector x, try first Declare"),
        ("test.Fail", Codec.JSON, b'"closed"', "pool http is not running"),
        (
            "test.Fail",
            Codec.JSON,
            b'"bug"',
            "test.Fail: internal error: ZeroDivisionError('a bug')",
        ),
    ],
)
async def test_rpc_server_failed_calls_answer_an_error(
    method: str, codec: Codec, body: bytes, text: str, caplog
) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving() as address, open_wire(address) as wire:
            await wire.call(2, method, body, codec)
            reply = await wire.reply()
            await wire.call(3, "test.Text", b'"still here"')
            after = await wire.reply()
    assert reply.seq == 2
    assert reply.method == method
    assert reply.error is not None and reply.error.startswith(text)
    assert after.body == b'"still here"', "the connection goes on"
    assert ("a bug" in caplog.text) == (body == b'"bug"'), "only bugs are logged"


async def test_rpc_server_replies_out_of_order_to_interleaved_calls() -> None:
    probe = Probe()
    with trio.fail_after(TIMEOUT):
        async with serving(probe) as address, open_wire(address) as wire:
            # One write carrying both calls: the slow one first.
            await wire.send(
                encode_request(1, "test.Wait", Codec.JSON, b'"slow"')
                + encode_request(2, "test.Text", Codec.JSON, b'"fast"')
            )
            first = await wire.reply()
            probe.gates.setdefault("slow", trio.Event()).set()
            second = await wire.reply()
    assert (first.seq, first.body) == (2, b'"fast"')
    assert (second.seq, second.body) == (1, b'"done slow"')


async def test_rpc_server_wrong_option_count_is_answered_and_the_link_goes_on() -> None:
    with trio.fail_after(TIMEOUT):
        async with serving() as address, open_wire(address) as wire:
            await wire.send(encode_frame(0x08, b'test.Text"x"', (7,)))
            frame = await wire.frame()
            await wire.call(8, "test.Text", b'"next"')
            after = await wire.reply()
    assert frame.flags == 0x48
    assert frame.options == (7, 0)
    assert frame.payload == b"should be 2 options. SEQ_ID and METHOD_LEN"
    assert after.body == b'"next"'


async def test_rpc_server_closes_a_connection_whose_frames_are_garbage(caplog) -> None:
    with trio.fail_after(TIMEOUT):
        async with serving() as address, open_wire(address) as wire:
            await wire.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = await wire.reply()
            assert await wire.closed()
    # Said of the peer that connected, not of a PHP worker's stdout.
    assert reply.error is not None
    assert reply.error.startswith("it does not speak goridge RPC")
    assert "GET / HTTP/1.1" in reply.error
    assert "rpc: closing a connection: it does not speak goridge RPC" in caplog.text
    assert "worker" not in caplog.text


async def test_rpc_server_finishes_calls_of_a_client_that_left() -> None:
    probe = Probe()
    with trio.fail_after(TIMEOUT):
        async with serving(probe) as address:
            async with open_wire(address) as wire:
                await wire.call(1, "test.Wait", b'"left"')
                await trio.testing.wait_all_tasks_blocked()
            gate = probe.gates["left"]
            gate.set()
            async with open_wire(address) as wire:
                await wire.call(1, "test.Text", b'"alive"')
                assert (await wire.reply()).body == b'"alive"'


async def test_rpc_server_on_a_unix_socket_replaces_a_stale_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rpc.sock"
    with socket.socket(socket.AF_UNIX) as crashed:  # bound, never unlinked
        crashed.bind(str(path))
    with trio.fail_after(TIMEOUT):
        async with serving(listen=f"unix://{path}") as address:
            assert address == f"unix://{path}"
            async with open_wire(address) as wire:
                await wire.call(1, "test.Text", b'"unix"')
                assert (await wire.reply()).body == b'"unix"'
    assert not path.exists(), "removed at exit"


async def test_rpc_server_reports_an_address_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = RpcServer(f"tcp://127.0.0.1:{port}", [Probe()])
        with pytest.raises(BindError) as info:
            await server.run()
    assert str(info.value) == (
        f"rpc.listen: cannot listen on tcp://127.0.0.1:{port}: Address already "
        "in use (choose another address for rpc.listen)"
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as nobody")
async def test_rpc_server_unix_socket_lets_workers_of_server_user_connect(
    shared_dir: Path,
) -> None:
    path = shared_dir / "rpc.sock"
    nobody = pwd.getpwnam("nobody")
    server = RpcServer(f"unix://{path}", [Probe()], user="nobody")
    connect = f'exit(stream_socket_client("unix://{path}") ? 0 : 1);'
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            assert path.stat().st_uid == nobody.pw_uid
            # As a worker of server.user does for RR_RPC.
            result = await trio.run_process(
                ["php", "-r", connect],
                user=nobody.pw_uid,
                group=nobody.pw_gid,
                extra_groups=[],
                capture_stderr=True,
                check=False,
            )
            nursery.cancel_scope.cancel()
    assert result.returncode == 0, result.stderr.decode()
