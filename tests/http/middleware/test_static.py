from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.http.fakes import Client, Reply
from tests.http.middleware.apps import Answer, call, http_scope
from trio_runner.config.model import STATIC_FORBID, StaticConfig
from trio_runner.errors import ConfigError
from trio_runner.http.asgi import Scope
from trio_runner.http.middleware import static
from trio_runner.http.middleware.docroot import DocumentRoot
from trio_runner.http.middleware.field import format_http_date
from trio_runner.http.middleware.static import (
    UNSATISFIABLE,
    StaticFiles,
    Unsatisfiable,
    parse_range,
)

CONTENT = b"0123456789" * 10  # 100 bytes
MTIME = 1_700_000_000


@pytest.fixture
def public(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("secret")
    root = tmp_path / "public"
    (root / "css").mkdir(parents=True)
    (root / "data.txt").write_bytes(CONTENT)
    (root / "css" / "site.css").write_text("body {}")
    (root / "worker.php").write_text("<?php echo 'the app';")
    (root / "empty.txt").write_bytes(b"")
    (root / "bundle.tar.gz").write_bytes(b"\x1f\x8b not really")
    (root / "app.js.map").write_text("{}")
    os.utime(root / "data.txt", (MTIME, MTIME))
    return root


def files(root: Path, app: Answer | None = None, **settings: object) -> StaticFiles:
    options: dict[str, Any] = settings
    config = StaticConfig(dir=str(root), forbid=[".php"], **options)
    return StaticFiles.from_config(app or Answer(), config, working_dir=root)


def get(path: str, *headers: tuple[bytes, bytes], method: str = "GET") -> Scope:
    return http_scope(method, path, headers=[(b"host", b"h"), *headers])


async def test_static_serves_a_file_with_its_headers(public: Path) -> None:
    app = Answer()
    reply = await call(files(public, app), get("/data.txt"))

    assert not app.called
    assert reply.status == 200
    assert reply.body == CONTENT
    assert dict(reply.headers) == {
        b"content-type": b"text/plain; charset=utf-8",
        b"last-modified": format_http_date(MTIME),
        b"accept-ranges": b"bytes",
        b"x-content-type-options": b"nosniff",
        b"content-length": b"100",
    }
    assert reply.complete


async def test_static_head_sends_headers_only(public: Path) -> None:
    reply = await call(files(public), get("/data.txt", method="HEAD"))
    assert reply.status == 200
    assert reply.header(b"content-length") == [b"100"]
    assert reply.body == b""


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("css/site.css", b"text/css; charset=utf-8"),
        ("bundle.tar.gz", b"application/gzip"),
        ("empty.txt", b"text/plain; charset=utf-8"),
        ("app.js.map", b"application/json"),
    ],
)
async def test_static_content_type_from_the_extension(
    public: Path, name: str, content_type: bytes
) -> None:
    reply = await call(files(public), get(f"/{name}"))
    assert reply.header(b"content-type") == [content_type]
    assert reply.header(b"content-encoding") == []  # a .gz is not an encoding
    assert reply.body == (public / name).read_bytes()


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/worker.php",
        b"/WORKER.PHP",
        b"/worker.php%00.txt",
        b"/../secret.txt",
        b"/%2e%2e/secret.txt",
        b"/css/..%2f..%2fsecret.txt",
        b"/..%5csecret.txt",
        b"/missing.txt",
        b"/css",
        b"/css/",
        b"/",
    ],
)
async def test_static_miss_falls_through_to_the_app(
    public: Path, raw_path: bytes
) -> None:
    app = Answer()
    scope = get("/")
    scope["raw_path"] = raw_path
    reply = await call(files(public, app), scope)
    assert app.called
    assert app.scope is scope
    assert reply.body == b"from the app"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
async def test_static_leaves_other_methods_to_the_app(
    public: Path, method: str
) -> None:
    app = Answer()
    await call(files(public, app), get("/data.txt", method=method))
    assert app.called


async def test_static_strong_etag_is_the_crc32_of_the_content(public: Path) -> None:
    reply = await call(files(public, calculate_etag=True), get("/data.txt"))
    assert reply.header(b"etag") == [b'"%08x-64"' % zlib.crc32(CONTENT)]


async def test_static_strong_etag_follows_the_content(public: Path) -> None:
    middleware = files(public, calculate_etag=True)
    first = (await call(middleware, get("/data.txt"))).header(b"etag")
    (public / "data.txt").write_bytes(CONTENT[::-1])
    os.utime(public / "data.txt", (MTIME, MTIME + 1))
    second = (await call(middleware, get("/data.txt"))).header(b"etag")
    assert first != second


async def test_static_weak_etag_does_not_read_the_file(
    public: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_reading(fd: int, size: int) -> int:
        raise AssertionError("a weak etag must not read the file")

    monkeypatch.setattr(static, "_crc32", no_reading)
    reply = await call(files(public, calculate_etag=True, weak=True), get("/data.txt"))
    [etag] = reply.header(b"etag")
    assert etag.startswith(b'W/"64-')


# (request headers, expected status) with calculate_etag on
CONDITIONAL_CASES = [
    pytest.param([], 200, id="unconditional"),
    pytest.param([(b"if-none-match", b"ETAG")], 304, id="etag matches"),
    pytest.param([(b"if-none-match", b"W/ETAG")], 304, id="weak comparison"),
    pytest.param([(b"if-none-match", b'"other", ETAG')], 304, id="one of a list"),
    pytest.param([(b"if-none-match", b"*")], 304, id="star"),
    pytest.param([(b"if-none-match", b'"other"')], 200, id="etag differs"),
    pytest.param(
        [(b"if-modified-since", format_http_date(MTIME))], 304, id="not modified since"
    ),
    pytest.param(
        [(b"if-modified-since", format_http_date(MTIME + 60))], 304, id="later date"
    ),
    pytest.param(
        [(b"if-modified-since", format_http_date(MTIME - 1))], 200, id="modified since"
    ),
    pytest.param([(b"if-modified-since", b"yesterday")], 200, id="not a date"),
    pytest.param(
        [
            (b"if-none-match", b'"other"'),
            (b"if-modified-since", format_http_date(MTIME)),
        ],
        200,
        id="if-none-match wins over if-modified-since",
    ),
]


@pytest.mark.parametrize(("request_lines", "status"), CONDITIONAL_CASES)
async def test_static_answers_conditional_requests(
    public: Path, request_lines: list[tuple[bytes, bytes]], status: int
) -> None:
    middleware = files(public, calculate_etag=True)
    [etag] = (await call(middleware, get("/data.txt"))).header(b"etag")
    lines = [(name, value.replace(b"ETAG", etag)) for name, value in request_lines]
    reply = await call(middleware, get("/data.txt", *lines))

    assert reply.status == status
    if status == 304:
        assert reply.body == b""
        assert reply.header(b"etag") == [etag]
        assert reply.header(b"content-length") == []
        assert reply.header(b"content-type") == []
    else:
        assert reply.body == CONTENT


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"bytes=0-9", (0, 9)),
        (b"bytes=90-", (90, 99)),
        (b"bytes=-10", (90, 99)),
        (b"bytes=-1000", (0, 99)),
        (b"bytes=95-200", (95, 99)),
        (b"Bytes = 5-5", (5, 5)),
        (b"bytes=100-", UNSATISFIABLE),
        (b"bytes=100-200", UNSATISFIABLE),
        (b"bytes=-0", UNSATISFIABLE),
        (b"bytes=0-1,5-6", None),
        (b"bytes=9-0", None),
        (b"bytes=a-b", None),
        (b"bytes=5", None),
        (b"items=0-9", None),
        (b"bytes=-", None),
    ],
)
def test_parse_range(value: bytes, expected: object) -> None:
    assert parse_range(value, 100) == expected


def test_parse_range_of_an_empty_file_is_unsatisfiable() -> None:
    assert isinstance(parse_range(b"bytes=0-", 0), Unsatisfiable)
    assert isinstance(parse_range(b"bytes=-5", 0), Unsatisfiable)


async def test_static_answers_a_range_with_206(public: Path) -> None:
    reply = await call(files(public), get("/data.txt", (b"range", b"bytes=10-19")))
    assert reply.status == 206
    assert reply.body == CONTENT[10:20]
    assert reply.header(b"content-range") == [b"bytes 10-19/100"]
    assert reply.header(b"content-length") == [b"10"]


async def test_static_answers_an_unsatisfiable_range_with_416(public: Path) -> None:
    reply = await call(files(public), get("/data.txt", (b"range", b"bytes=500-")))
    assert reply.status == 416
    assert reply.header(b"content-range") == [b"bytes */100"]
    assert reply.body == b""


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        (b"ETAG", 206),
        (b'"stale"', 200),
        (format_http_date(MTIME), 206),
        (format_http_date(MTIME - 10), 200),
    ],
)
async def test_static_if_range_decides_between_part_and_whole(
    public: Path, if_range: bytes, status: int
) -> None:
    middleware = files(public, calculate_etag=True)
    [etag] = (await call(middleware, get("/data.txt"))).header(b"etag")
    request_lines = [
        (b"range", b"bytes=0-9"),
        (b"if-range", if_range.replace(b"ETAG", etag)),
    ]
    reply = await call(middleware, get("/data.txt", *request_lines))
    assert reply.status == status


async def test_static_head_ignores_range(public: Path) -> None:
    reply = await call(
        files(public), get("/data.txt", (b"range", b"bytes=0-9"), method="HEAD")
    )
    assert reply.status == 200


async def test_static_response_and_request_headers(public: Path) -> None:
    middleware = files(
        public,
        response={"Cache-Control": "max-age=60", "X-Content-Type-Options": "off"},
        request={"If-None-Match": "*"},
    )
    reply = await call(middleware, get("/data.txt"))
    assert reply.status == 304  # the configured request header made it conditional
    assert reply.header(b"cache-control") == [b"max-age=60"]
    assert reply.header(b"x-content-type-options") == [b"off"]


async def test_static_streams_large_files_in_chunks(public: Path) -> None:
    big = os.urandom(static.CHUNK_SIZE * 3 + 10)
    (public / "big.bin").write_bytes(big)
    reply = await call(files(public), get("/big.bin"))
    assert [len(body) for body in reply.bodies] == [static.CHUNK_SIZE] * 3 + [10]
    assert reply.body == big
    assert reply.complete


async def test_static_stops_streaming_when_the_client_leaves(public: Path) -> None:
    (public / "big.bin").write_bytes(b"x" * static.CHUNK_SIZE * 50)
    client = Client()
    reply = Reply(on_send=lambda message: client.disconnect())
    with trio.fail_after(5):
        await files(public)(get("/big.bin"), client.receive, reply.send)
    assert len(reply.bodies) < 50
    assert not reply.complete


async def test_static_from_config_refuses_a_missing_dir(tmp_path: Path) -> None:
    config = StaticConfig(dir="nowhere")
    with pytest.raises(ConfigError, match=r"http\.static\.dir .*'nowhere'"):
        StaticFiles.from_config(Answer(), config, working_dir=tmp_path)


async def test_static_from_config_warns_when_php_is_not_forbidden(
    public: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = StaticConfig(dir=".", forbid=[".txt"])
    with caplog.at_level(logging.WARNING):
        StaticFiles.from_config(Answer(), config, working_dir=public)
    assert 'add ".php" to http.static.forbid' in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        files(public)
    assert caplog.text == ""


async def test_static_dir_is_relative_to_the_working_dir(public: Path) -> None:
    middleware = StaticFiles.from_config(
        Answer(), StaticConfig(dir="public"), working_dir=public.parent
    )
    assert middleware.root == DocumentRoot.from_dir(public, STATIC_FORBID)


@pytest.mark.parametrize("name", ["worker.php", "view.phtml", "app.phar", "db.inc"])
async def test_static_keeps_php_sources_private_by_default(
    public: Path, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    # RoadRunner forbids nothing by default; here a [http.static] without
    # forbid must not hand out the app's code, and needs no warning.
    (public / name).write_text("<?php $password = 'x';")
    app = Answer()
    with caplog.at_level(logging.WARNING):
        middleware = StaticFiles.from_config(app, StaticConfig(), working_dir=public)
    reply = await call(middleware, get(f"/{name}"))
    assert app.called  # a miss: PHP answers
    assert reply.body == b"from the app"
    assert (await call(middleware, get("/data.txt"))).body == CONTENT
    assert caplog.text == ""


async def test_static_serves_php_sources_when_forbid_is_emptied(public: Path) -> None:
    config = StaticConfig(forbid=[])
    middleware = StaticFiles.from_config(Answer(), config, working_dir=public)
    reply = await call(middleware, get("/worker.php"))
    assert reply.body == b"<?php echo 'the app';"
