"""Unix socket files: a stale one is replaced, nothing else ever is."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from trio_runner.errors import BindError
from trio_runner.process.unix import bind_unix_socket


def stale_socket(path: Path) -> None:
    """A socket file whose listener is gone, as a crashed server leaves it."""
    with socket.socket(socket.AF_UNIX) as crashed:
        crashed.bind(str(path))


async def test_unix_socket_replaces_a_stale_socket_and_removes_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rr.sock"
    stale_socket(path)
    listener, socket_file = await bind_unix_socket(path, "rpc.listen")
    async with listener:
        client = await trio.open_unix_socket(str(path))
        await client.aclose()
    socket_file.remove()
    assert not path.exists()


async def test_unix_socket_never_replaces_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("precious")
    with pytest.raises(BindError) as info:
        await bind_unix_socket(path, "server.relay")
    assert str(info.value) == (
        f"server.relay: {path} exists and is not a socket; refusing to replace "
        "it (choose another path, or remove the file)"
    )
    assert path.read_text() == "precious"


async def test_unix_socket_refuses_one_another_process_listens_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rr.sock"
    with socket.socket(socket.AF_UNIX) as running:
        running.bind(str(path))
        running.listen()
        with pytest.raises(BindError, match="is in use: another process"):
            await bind_unix_socket(path, "rpc.listen")
        assert path.exists()


async def test_unix_socket_leaves_a_file_that_replaced_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rr.sock"
    listener, socket_file = await bind_unix_socket(path, "rpc.listen")
    await listener.aclose()
    path.unlink()
    stale_socket(path)  # someone else's now
    socket_file.remove()
    assert path.exists()
