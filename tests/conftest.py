from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.fixture(scope="session")
def golden_frames() -> dict[str, dict[str, object]]:
    """The worked frames of PROTOCOL.md 1.6, shared with the PHP tests."""
    data = json.loads((TESTS / "golden" / "frames.json").read_text())
    return data["frames"]  # type: ignore[no-any-return]


@pytest.fixture
def rpc_socket() -> Iterator[Path]:
    """A unix socket path short enough for AF_UNIX's 108 bytes (tmp_path
    often is not), in a directory removed after the test."""
    directory = Path(tempfile.mkdtemp(prefix="rr-rpc-"))
    yield directory / "rpc.sock"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A short-named directory any user may enter (mode 0755), for sockets
    that workers running as ``server.user`` connect to; removed after."""
    directory = Path(tempfile.mkdtemp(prefix="rr-user-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)
