from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def rpc_socket() -> Iterator[Path]:
    """A unix socket path short enough for AF_UNIX's 108 bytes (tmp_path
    often is not), in a directory removed after the test."""
    directory = Path(tempfile.mkdtemp(prefix="rr-rpc-"))
    yield directory / "rpc.sock"
    shutil.rmtree(directory, ignore_errors=True)
