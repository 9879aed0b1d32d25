"""The hot-path streams: they wait only when the kernel says they must."""

from __future__ import annotations

import os
import socket

import pytest
import trio
import trio.testing

from trio_runner.stream import PipeStream, SocketStream


def socket_pair() -> tuple[SocketStream, socket.socket]:
    ours, theirs = socket.socketpair()
    return SocketStream(ours), theirs


async def test_socket_stream_writes_without_a_checkpoint_when_the_kernel_takes_it() -> (
    None
):
    stream, peer = socket_pair()
    with peer:
        task = trio.lowlevel.current_task()
        # No checkpoint: the task's schedule count does not move.
        before = task._schedule_points  # type: ignore[attr-defined]
        await stream.send_all(b"hello")
        assert task._schedule_points == before  # type: ignore[attr-defined]
        assert peer.recv(100) == b"hello"
        await stream.aclose()


async def test_socket_stream_waits_for_room_and_sends_everything() -> None:
    stream, peer = socket_pair()
    peer.setblocking(False)
    data = os.urandom(8 * 1024 * 1024)  # far more than the socket buffers
    received = bytearray()

    async def drain() -> None:
        while len(received) < len(data):
            await trio.lowlevel.wait_readable(peer)
            received.extend(peer.recv(1 << 20))

    with peer, trio.fail_after(10):
        first = stream.send_nowait(data)
        assert 0 < first < len(data)  # the kernel took what fitted
        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            await stream.send_all(memoryview(data)[first:])
        await stream.aclose()
    assert received == data


async def write_until_broken(stream: SocketStream) -> None:
    for _ in range(100):  # the peer's close shows after a write or two
        await stream.send_all(b"x" * 65536)


async def test_socket_stream_receives_and_reports_the_end() -> None:
    stream, peer = socket_pair()
    with trio.fail_after(5):
        peer.sendall(b"abc")
        assert await stream.receive_some(2) == b"ab"  # waited first
        assert await stream.receive_some(2) == b"c"  # a full read: tried at once
        peer.shutdown(socket.SHUT_WR)
        assert await stream.receive_some() == b""
        await stream.send_eof()
        assert peer.recv(10) == b""
        peer.close()
        with pytest.raises(trio.BrokenResourceError):
            await write_until_broken(stream)
        await stream.aclose()
        with pytest.raises(trio.ClosedResourceError):
            await stream.receive_some()
        with pytest.raises(trio.ClosedResourceError):
            stream.send_nowait(b"x")


async def test_socket_stream_closing_wakes_a_blocked_reader() -> None:
    stream, peer = socket_pair()
    with peer, trio.fail_after(5):
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                with pytest.raises(trio.ClosedResourceError):
                    await stream.receive_some()

            nursery.start_soon(read)
            await trio.testing.wait_all_tasks_blocked()
            await stream.aclose()


async def test_pipe_stream_carries_frames_both_ways_and_closes_its_fds() -> None:
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    stream = PipeStream(
        trio.lowlevel.FdStream(to_child_w), trio.lowlevel.FdStream(from_child_r)
    )
    with trio.fail_after(5):
        await stream.send_all(b"request")
        assert os.read(to_child_r, 100) == b"request"
        os.write(from_child_w, b"answer")
        assert await stream.receive_some() == b"answer"
        os.close(from_child_w)
        assert await stream.receive_some() == b""
        await stream.send_eof()  # closes the child's stdin
        assert os.read(to_child_r, 100) == b""
        await stream.aclose()
    os.close(to_child_r)
    with pytest.raises(trio.ClosedResourceError):
        await stream.send_all(b"late")
