"""Upload temp files: written as they arrive, refused with PHP's codes, and
deleted once the request is over, however it ends."""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import trio

from tests.http.fakes import Client, FakeExchanger, Reply, chunk, failing, http_scope
from tests.servers import PHP, wait_until_empty
from trio_runner.config.model import UploadsConfig
from trio_runner.errors import ConfigError, WorkerCrashed
from trio_runner.http import HttpBridge
from trio_runner.http import uploads as uploads_module
from trio_runner.http.proto import http_pb2
from trio_runner.http.uploads import (
    WRITE_CHUNK,
    TempFiles,
    UploadError,
    UploadOptions,
    open_temp_files,
)
from trio_runner.protocol import Payload
from trio_runner.testing.plugin import ServerFactory

MB = 1024 * 1024


def test_upload_options_from_config_resolve_dir_and_units(tmp_path: Path) -> None:
    section = UploadsConfig(
        dir="up", forbid=(".PHP",), allow=(".txt",), max_file_size=2
    )
    options = UploadOptions.from_config(section, working_dir=tmp_path)
    assert options == UploadOptions(
        dir=str(tmp_path / "up"),
        forbid=frozenset({".php"}),
        allow=frozenset({".txt"}),
        max_file_size=2 * MB,
    )
    assert UploadOptions.from_config(UploadsConfig()).dir == ""
    absolute = UploadsConfig(dir="/var/up")
    assert UploadOptions.from_config(absolute, working_dir=tmp_path).dir == "/var/up"


def test_upload_options_from_config_refuse_an_unknown_user() -> None:
    with pytest.raises(ConfigError, match="no-such-user-here"):
        UploadOptions.from_config(UploadsConfig(), user="no-such-user-here")


@pytest.mark.parametrize(
    ("forbid", "allow", "filename", "allowed"),
    [
        ({".php"}, set(), "a.php", False),
        ({".php"}, set(), "a.PhP", False),  # lower-cased
        ({".php"}, set(), "a.php.txt", True),  # the last extension counts
        ({".php"}, set(), "a.txt.php", False),
        ({".php"}, {".php", ".txt"}, "a.php", False),  # forbid wins
        (set(), {".txt"}, "a.TXT", True),
        (set(), {".txt"}, "a.png", False),
        (set(), {".txt"}, "noext", False),  # "" is not in the allow list
        (set(), set(), "noext", True),
        ({".htaccess"}, set(), ".htaccess", False),  # Go's path.Ext
    ],
)
def test_upload_options_extension_rules(
    forbid: set[str], allow: set[str], filename: str, allowed: bool
) -> None:
    options = UploadOptions(forbid=frozenset(forbid), allow=frozenset(allow))
    assert options.extension_allowed(filename) is allowed


async def test_temp_files_stream_a_file_and_delete_it_on_exit(tmp_path: Path) -> None:
    content = os.urandom(3 * WRITE_CHUNK + 5)
    async with open_temp_files(UploadOptions(dir=str(tmp_path))) as files:
        receiver = await files.receive(b"r\xc3\xa9port.bin", b"application/x-test")
        largest = 0
        for start in range(0, len(content), 10_000):
            await receiver.write(content[start : start + 10_000])
            largest = max(largest, receiver._pending_size)
        done = await receiver.finish()
        assert done.name == "r\u00e9port.bin"
        assert done.mime == "application/x-test"
        assert (done.size, done.error) == (len(content), UploadError.OK)
        path = Path(done.tmp_name)
        assert path.parent == tmp_path
        assert path.name.startswith("upload")
        assert await trio.Path(path).read_bytes() == content
        assert files.paths == [str(path)]
    assert largest < WRITE_CHUNK  # memory stays bounded by the chunk size
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("options", "filename", "error"),
    [
        (UploadOptions(), b"x.exe", UploadError.EXTENSION),
        (UploadOptions(allow=frozenset({".png"})), b"x.gif", UploadError.EXTENSION),
        (UploadOptions(), b"", UploadError.NO_FILE),
        (UploadOptions(max_file_size=10), b"x.bin", UploadError.INI_SIZE),
    ],
)
async def test_temp_files_refuse_a_file_with_its_code(
    tmp_path: Path, options: UploadOptions, filename: bytes, error: UploadError
) -> None:
    async with open_temp_files(attrs.evolve(options, dir=str(tmp_path))) as files:
        receiver = await files.receive(filename, b"")
        await receiver.write(b"x" * 8)
        await receiver.write(b"x" * 8)
        done = await receiver.finish()
        assert (done.error, done.size, done.tmp_name) == (error, 0, "")
        assert os.listdir(tmp_path) == []  # a refused file is gone at once


async def test_temp_files_accept_a_file_of_exactly_max_file_size(
    tmp_path: Path,
) -> None:
    async with open_temp_files(UploadOptions(dir=str(tmp_path), max_file_size=16)) as f:
        receiver = await f.receive(b"x.bin", b"")
        await receiver.write(b"x" * 16)
        done = await receiver.finish()
    assert (done.error, done.size) == (UploadError.OK, 16)


async def test_temp_files_without_their_dir_give_code_6_and_one_error_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = tmp_path / "missing"
    async with open_temp_files(UploadOptions(dir=str(missing))) as files:
        for _ in range(2):
            receiver = await files.receive(b"a.txt", b"text/plain")
            await receiver.write(b"data")
            done = await receiver.finish()
            assert (done.error, done.tmp_name) == (UploadError.NO_TMP_DIR, "")
    [record] = [r for r in caplog.records if r.name == "trio_runner.http.uploads"]
    assert record.levelno == logging.ERROR
    assert str(missing) in record.getMessage()


async def test_temp_files_that_cannot_be_written_give_code_7(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uploads_module, "_write_all", disk_full)
    async with open_temp_files(UploadOptions(dir=str(tmp_path))) as files:
        receiver = await files.receive(b"a.bin", b"")
        await receiver.write(b"x" * WRITE_CHUNK)
        await receiver.write(b"more, dropped")
        done = await receiver.finish()
        assert (done.error, done.size, done.tmp_name) == (UploadError.CANT_WRITE, 0, "")
        assert os.listdir(tmp_path) == []


async def test_temp_files_are_deleted_when_the_block_fails(tmp_path: Path) -> None:
    async def fail() -> None:
        async with open_temp_files(UploadOptions(dir=str(tmp_path))) as files:
            receiver = await files.receive(b"a.bin", b"")
            await receiver.write(b"x")
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError):
        await fail()
    assert os.listdir(tmp_path) == []


async def test_temp_files_are_deleted_when_the_block_is_cancelled(
    tmp_path: Path,
) -> None:
    with trio.CancelScope() as scope:
        async with open_temp_files(UploadOptions(dir=str(tmp_path))) as files:
            await (await files.receive(b"a.bin", b"")).finish()
            scope.cancel()
            await trio.sleep_forever()
    assert os.listdir(tmp_path) == []


async def test_temp_files_delete_tolerates_a_file_already_gone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    files = TempFiles(UploadOptions(dir=str(tmp_path)))
    await files.delete([str(tmp_path / "never-made")])
    await files.delete([str(tmp_path)])  # a directory: logged, not raised
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.__dict__["reason"] == "upload_cleanup"


# The bridge: temp files live exactly as long as their request.

BOUNDARY = b"b0undary"
MULTIPART = [
    (b"host", b"h"),
    (b"content-type", b"multipart/form-data; boundary=b0undary"),
]


def multipart(*parts: tuple[bytes, bytes | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = b'form-data; name="' + name + b'"'
        if filename is not None:
            disposition += b'; filename="' + filename + b'"'
        out += b"--" + BOUNDARY + b"\r\ncontent-disposition: " + disposition
        out += b"\r\ncontent-type: text/plain\r\n\r\n" + data + b"\r\n"
    return out + b"--" + BOUNDARY + b"--\r\n"


FORM = multipart((b"note", None, b"hello"), (b"f", b"a.txt", b"x" * 70_000))


def in_pieces(body: bytes, size: int = 16_384) -> list[bytes]:
    return [body[start : start + size] for start in range(0, len(body), size)]


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def call(bridge: HttpBridge, client: Client) -> Reply:
    reply = Reply()
    with trio.fail_after(5):
        await bridge(http_scope("POST", headers=MULTIPART), client.receive, reply.send)
    return reply


def context_of(payload: Payload) -> http_pb2.Request:
    return http_pb2.Request.FromString(payload.context)


async def test_bridge_gives_php_the_form_and_deletes_its_files_after(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {}

    async def script(payload: Payload) -> AsyncGenerator[Any, None]:
        tree = json.loads(context_of(payload).uploads)
        seen["tree"] = tree
        seen["content"] = await trio.Path(tree["f"]["tmpName"]).read_bytes()
        yield chunk(200, b"ok")

    bridge = HttpBridge(FakeExchanger(script), uploads=UploadOptions(dir=str(tmp_path)))
    reply = await call(bridge, Client(in_pieces(FORM)))
    assert reply.status == 200
    [sent] = bridge.exchanger.requests  # type: ignore[attr-defined]
    assert context_of(sent).parsed
    assert json.loads(sent.body) == {"note": "hello"}
    assert seen["content"] == b"x" * 70_000
    assert seen["tree"]["f"] | {"tmpName": ""} == {
        "name": "a.txt",
        "mime": "text/plain",
        "size": 70_000,
        "error": 0,
        "tmpName": "",
    }
    assert os.listdir(tmp_path) == []


async def test_bridge_deletes_files_when_the_worker_crashed(tmp_path: Path) -> None:
    fake = FakeExchanger(failing(WorkerCrashed("died", pid=7)))
    bridge = HttpBridge(fake, uploads=UploadOptions(dir=str(tmp_path)))
    reply = await call(bridge, Client(in_pieces(FORM)))
    assert reply.status == 500
    assert os.listdir(tmp_path) == []


async def test_bridge_deletes_files_when_the_client_leaves_mid_body(
    tmp_path: Path,
) -> None:
    fake = FakeExchanger()
    bridge = HttpBridge(fake, uploads=UploadOptions(dir=str(tmp_path)))
    client = Client(in_pieces(FORM)[:-1], finished=False)
    client.disconnect()
    fds = open_fds()
    reply = await call(bridge, client)
    assert reply.messages == []
    assert fake.requests == []
    assert os.listdir(tmp_path) == []
    assert open_fds() == fds  # the file cut short is closed too


async def test_bridge_deletes_files_when_the_client_leaves_during_php(
    tmp_path: Path,
) -> None:
    client = Client(in_pieces(FORM))
    during: list[str] = []

    async def script(payload: Payload) -> AsyncGenerator[Any, None]:
        during.extend(os.listdir(tmp_path))
        client.disconnect()
        await trio.sleep_forever()
        yield chunk()  # pragma: no cover

    bridge = HttpBridge(FakeExchanger(script), uploads=UploadOptions(dir=str(tmp_path)))
    reply = await call(bridge, client)
    assert reply.messages == []
    assert len(during) == 1
    assert os.listdir(tmp_path) == []


async def test_bridge_refuses_an_oversized_form_and_deletes_what_it_wrote(
    tmp_path: Path,
) -> None:
    big = multipart((b"f", b"a.bin", b"x" * (MB + 100_000)))
    fake = FakeExchanger()
    bridge = HttpBridge(
        fake, max_request_size=1, uploads=UploadOptions(dir=str(tmp_path))
    )
    fds = open_fds()
    reply = await call(bridge, Client(in_pieces(big, 64 * 1024)))
    assert open_fds() == fds
    assert reply.status == 413
    assert (b"connection", b"close") in reply.headers
    assert fake.requests == []
    assert os.listdir(tmp_path) == []


async def test_bridge_refuses_a_malformed_form_with_400(tmp_path: Path) -> None:
    fake = FakeExchanger()
    bridge = HttpBridge(fake, uploads=UploadOptions(dir=str(tmp_path)))
    reply = await call(bridge, Client(in_pieces(FORM)[:-1]))
    assert reply.status == 400
    assert b"ends before its closing boundary" in reply.body
    assert (b"connection", b"close") not in reply.headers  # the body was read
    assert fake.requests == []
    assert os.listdir(tmp_path) == []


@pytest.mark.php
async def test_uploads_are_deleted_when_the_php_worker_dies_mid_request(
    php_server: ServerFactory, tmp_path: Path
) -> None:
    with trio.fail_after(10):
        server = await php_server(
            script=PHP / "http_exit_on_path.php",
            overrides=[f"http.uploads.dir={tmp_path}"],
        )
        assert server.http_url is not None
        async with httpx.AsyncClient(base_url=server.http_url) as client:
            files = {"report": ("report.bin", b"r" * 204_800)}
            died = await client.post("/die", data={"note": "hello"}, files=files)
            assert died.status_code == 500
            with trio.fail_after(1):
                await wait_until_empty(tmp_path)
            served = await client.post("/", files=files)
            assert served.status_code == 200
            with trio.fail_after(1):
                await wait_until_empty(tmp_path)
