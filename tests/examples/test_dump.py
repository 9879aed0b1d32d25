"""examples/dump end to end: what PHP receives, over HTTP/1.1 and h2c, per codec.

One server per request codec and HTTP/1.1 server (lean, or hypercorn,
which also serves h2c) serves the module, each with
``max_request_size = 1``, one worker and its own uploads dir. With one
worker, the dump's ``requests`` counter shows whether PHP was called at all.
The inputs come from public bug reports (issue #3), each with the value PHP
must see, or the response the client must get: the dump's query knobs
(``status=``, ``set-cookie=``, ``text=``, ``die=``) make PHP answer those.

Past 600 lines: the table-driven checks of issue #3 against the real app,
over both HTTP/1.1 servers and HTTP/2 and both codecs, are kept in one
file so that each input sits next to its expected value.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attrs
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import httpx
import pytest
import trio

from tests.http.h2client import open_h2
from tests.http.hosts import GOOD_HOSTS
from tests.servers import EXAMPLES, wait_until_empty
from trio_runner.testing.process import ServerProcess

pytestmark = [
    pytest.mark.php,
    # When a body is refused early, httpx stops sending it and leaves its
    # request-body generator unfinished, which Python reports when it is
    # garbage-collected.
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <async_generator object"
        ":pytest.PytestUnraisableExceptionWarning"
    ),
    pytest.mark.filterwarnings("ignore:Async generator .* was garbage collected"),
]

TIMEOUT = 10.0
MB = 1024 * 1024
CODECS = ("proto", "json")


@attrs.frozen
class Dump:
    """The running dump app for one codec."""

    server: ServerProcess
    uploads: Path

    @property
    def url(self) -> str:
        assert self.server.url is not None
        return self.server.url


# How HTTP/1.1 reaches the dump: hypercorn (the dump's h2c = true needs it)
# or the lean server (h2c turned off); HTTP/2 is hypercorn's only.
TARGETS = [
    (codec, http, front)
    for codec in CODECS
    for http, front in (("1.1", "lean"), ("1.1", "hypercorn"), ("2", "hypercorn"))
]


@pytest.fixture(scope="module")
def dumps(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[tuple[str, str], Dump]]:
    started: dict[tuple[str, str], Dump] = {}
    try:
        for codec in CODECS:
            for front in ("lean", "hypercorn"):
                uploads = tmp_path_factory.mktemp(f"uploads-{codec}-{front}")
                server = ServerProcess(
                    EXAMPLES / "dump" / "roadrunner.toml",
                    overrides=[
                        f"http.codec={codec}",
                        "http.max_request_size=1",
                        f"http.uploads.dir={uploads}",
                        "http.pool.num_workers=1",
                        f"http.http2.h2c={'false' if front == 'lean' else 'true'}",
                    ],
                    start_timeout=TIMEOUT,
                )
                started[codec, front] = Dump(server.start(), uploads)
        yield started
    finally:
        for dump in started.values():
            dump.server.stop(timeout=TIMEOUT)


@attrs.frozen
class Target:
    dump: Dump
    codec: str
    http: str


@pytest.fixture(
    params=TARGETS,
    ids=lambda param: f"{param[0]}-http{param[1]}-{param[2]}",
)
def target(
    request: pytest.FixtureRequest, dumps: dict[tuple[str, str], Dump]
) -> Target:
    codec, http, front = request.param
    return Target(dumps[codec, front], codec, http)


@pytest.fixture
async def client(target: Target) -> AsyncIterator[httpx.AsyncClient]:
    http2 = target.http == "2"  # h2c with prior knowledge
    async with httpx.AsyncClient(
        base_url=target.dump.url, http1=not http2, http2=http2, timeout=TIMEOUT
    ) as client:
        yield client


def raw(value: Any) -> bytes:
    """The bytes PHP had: the dump writes non-UTF-8 strings as base64."""
    if isinstance(value, dict):
        return base64.b64decode(value["base64"])
    assert isinstance(value, str), value
    return value.encode()


def as_php_sees(codec: str, sent: bytes) -> bytes:
    """Header and cookie bytes as PHP gets them. JSON carries text only:
    there, bytes that are not UTF-8 arrive as Latin-1 characters."""
    if codec == "proto":
        return sent
    try:
        sent.decode("utf-8")
    except UnicodeDecodeError:
        return sent.decode("latin-1").encode()
    return sent


def dump_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data: dict[str, Any] = response.json()
    return data


async def calls(client: httpx.AsyncClient) -> int:
    """How many requests the only worker has served, this one included."""
    data = dump_of(await client.get("/count"))
    return int(data["requests"])


async def wait_empty(directory: Path) -> None:
    """Wait up to a second for the server to delete the upload temp files."""
    with trio.fail_after(1):
        await wait_until_empty(directory)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            b"columns%5B%5Drow1=fullname&columns%5B%5Drow2=phone&columns%5B%5Drow3=0",
            {"columns": ["fullname", "phone", "0"]},
            id="text-after-bracket",
        ),
        pytest.param(
            b"a[]=1&a[]=2&b[x][y]=3&c=&d&e+f=g+h&i=%20j",
            {
                "a": ["1", "2"],
                "b": {"x": {"y": "3"}},
                "c": "",
                "d": "",
                "e_f": "g h",
                "i": " j",
            },
            id="lists-nesting-empties",
        ),
        pytest.param(
            b"a=1&a[b]=2&x[y]=1&x=&%5B%5D=z&k]=v&deep" + b"[d]" * 200 + b"=1",
            {"a": {"b": "2"}, "x": {"y": "1"}, "k]": "v"},
            id="odd-keys",
        ),
        pytest.param(b"", {}, id="empty"),
        # JSON carries no raw bytes: RoadRunner sends U+FFFD for each byte
        # that is not UTF-8, in names and values alike.
        pytest.param(
            b"name=caf%E9&ok=caf%C3%A9&k%FF=v",
            {"name": "caf\ufffd", "ok": "caf\u00e9", "k\ufffd": "v"},
            id="not-utf8",
        ),
    ],
)
async def test_dump_urlencoded_form_is_parsed_as_php_would(
    client: httpx.AsyncClient, body: bytes, expected: dict[str, Any]
) -> None:
    with trio.fail_after(TIMEOUT):
        response = await client.post(
            "/form",
            content=body,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        data = dump_of(response)
    assert data["parsed"] is True
    assert data["parsedBody"] == expected
    assert data["files"] is None


async def test_dump_query_is_raw_and_php_parses_it(
    client: httpx.AsyncClient,
) -> None:
    with trio.fail_after(TIMEOUT):
        data = dump_of(await client.get("/?expires=1695433210;sig=abc&x=1"))
    assert data["rawQuery"] == "expires=1695433210;sig=abc&x=1"
    assert data["query"] == {"expires": "1695433210;sig=abc", "x": "1"}
    assert data["uri"].endswith("/?expires=1695433210;sig=abc&x=1")


async def test_dump_binary_cookie_and_header_bytes_reach_php(
    client: httpx.AsyncClient, target: Target
) -> None:
    headers = [(b"cookie", b"name=%A7; ok=1"), (b"x-latin", b"caf\xe9")]
    with trio.fail_after(TIMEOUT):
        data = dump_of(await client.get("/", headers=headers))
    assert data["cookies"]["ok"] == "1"
    assert raw(data["cookies"]["name"]) == as_php_sees(target.codec, b"\xa7")
    assert [raw(v) for v in data["headers"]["X-Latin"]] == [
        as_php_sees(target.codec, b"caf\xe9")
    ]
    assert raw(data["headers"]["Cookie"][0]) == b"name=%A7; ok=1"


async def test_dump_headers_are_canonical_repeated_in_order_without_host(
    client: httpx.AsyncClient, target: Target
) -> None:
    headers = [
        (b"x-custom-header", b"a"),
        (b"x-multi", b"1"),
        (b"x-multi", b"2"),
        (b"x-multi", b"3"),
    ]
    with trio.fail_after(TIMEOUT):
        data = dump_of(await client.get("/h", headers=headers))
    assert data["headers"]["X-Custom-Header"] == ["a"]
    assert data["headers"]["X-Multi"] == ["1", "2", "3"]
    assert "Host" not in data["headers"]
    assert data["remoteAddr"] == "127.0.0.1"
    assert data["protocol"] == ("HTTP/1.1" if target.http == "1.1" else "HTTP/2.0")
    assert data["method"] == "GET"
    assert data["uri"] == f"{target.dump.url}/h"


async def test_dump_multipart_file_reaches_php_and_is_deleted_after(
    client: httpx.AsyncClient, target: Target
) -> None:
    content = os.urandom(200 * 1024)
    with trio.fail_after(TIMEOUT):
        response = await client.post(
            "/upload",
            data={"note": "hello"},
            files={"report": ("report.bin", content, "application/octet-stream")},
        )
        data = dump_of(response)
        await wait_empty(target.dump.uploads)
    assert data["parsedBody"] == {"note": "hello"}
    report = data["files"]["report"]
    assert report == {
        "name": "report.bin",
        "mime": "application/octet-stream",
        "size": 204800,
        "error": 0,
        "tmpName": report["tmpName"],
        "readable": True,
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    assert Path(report["tmpName"]).parent == target.dump.uploads


BOUNDARY = "dump-test-boundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"

Part = tuple[str, "str | None", bytes]  # name, filename (None: a field), data


def multipart(*parts: Part) -> bytes:
    """A multipart body with exactly these parts (httpx drops ``filename=""``)."""
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += (
            f"--{BOUNDARY}\r\ncontent-disposition: {disposition}\r\n"
            f"content-type: text/plain\r\n\r\n"
        ).encode()
        out += data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def shape(node: Any) -> Any:
    """The uploads tree with only name, error and size in each file."""
    if isinstance(node, list):
        return [shape(item) for item in node]
    if "tmpName" in node:
        return {key: node[key] for key in ("name", "error", "size")}
    return {key: shape(value) for key, value in node.items()}


@pytest.mark.parametrize(
    ("parts", "fields", "files"),
    [
        pytest.param(
            [("docs[]", "a.txt", b"A"), ("docs[]", "b.txt", b"BB")],
            {},
            {
                "docs": [
                    {"name": "a.txt", "error": 0, "size": 1},
                    {"name": "b.txt", "error": 0, "size": 2},
                ]
            },
            id="list",
        ),
        pytest.param(
            [("evil", "x.PHP", b"<?php"), ("ok", None, b"1")],
            {"ok": "1"},
            {"evil": {"name": "x.PHP", "error": 8, "size": 0}},
            id="forbidden-extension",
        ),
        pytest.param(
            [("empty", "", b"")],
            {},
            {"empty": {"name": "", "error": 4, "size": 0}},
            id="empty-file-input",
        ),
        pytest.param(
            [("a", None, b"1"), ("b[c]", None, b"2")],
            {"a": "1", "b": {"c": "2"}},
            {},
            id="no-files",
        ),
        pytest.param(
            [("u[x][y]", "C:\\docs\\r.txt", b"r")],
            {},
            {"u": {"x": {"y": {"name": "r.txt", "error": 0, "size": 1}}}},
            id="nested-windows-path",
        ),
    ],
)
async def test_dump_multipart_fields_and_files_follow_their_names(
    client: httpx.AsyncClient,
    target: Target,
    parts: list[Part],
    fields: dict[str, Any],
    files: dict[str, Any],
) -> None:
    with trio.fail_after(TIMEOUT):
        response = await client.post(
            "/", content=multipart(*parts), headers={"content-type": MULTIPART}
        )
        data = dump_of(response)
        await wait_empty(target.dump.uploads)
    assert data["parsedBody"] == fields
    assert shape(data["files"]) == files


async def test_dump_raw_body_has_no_files_and_is_not_parsed(
    client: httpx.AsyncClient,
) -> None:
    with trio.fail_after(TIMEOUT):
        data = dump_of(await client.post("/", content=b"{}"))
    assert data["files"] is None
    assert data["parsed"] is False
    assert data["parsedBody"] is None
    assert data["body"] == "{}"


def chunked(body: bytes) -> AsyncIterator[bytes]:
    """``body`` without a length: chunked on HTTP/1.1."""

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    return pieces()


@attrs.define
class H2Reply:
    status: int = 0
    body: bytes = b""
    reset: h2.errors.ErrorCodes | None = None


@attrs.define(eq=False)
class H2Client:
    """A bare HTTP/2 client that reads the response while it still sends the
    body, as browsers do: httpx fails when a response comes early."""

    stream: trio.SocketStream
    host: str
    conn: h2.connection.H2Connection = attrs.field(
        factory=lambda: h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
    )
    goaway: h2.events.ConnectionTerminated | None = None
    _lock: trio.Lock = attrs.field(factory=trio.Lock)
    _window: trio.Event = attrs.field(factory=trio.Event)

    async def flush(self) -> None:
        async with self._lock:
            await self.stream.send_all(self.conn.data_to_send())

    async def request(
        self, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> H2Reply:
        stream_id = self.conn.get_next_available_stream_id()
        method = b"POST" if body else b"GET"
        self.conn.send_headers(
            stream_id,
            [
                (b":method", method),
                (b":scheme", b"http"),
                (b":authority", self.host.encode()),
                (b":path", path.encode()),
                *headers,
            ],
            end_stream=not body,
        )
        await self.flush()
        reply = H2Reply()
        async with trio.open_nursery() as nursery:
            if body:
                nursery.start_soon(self._send_body, stream_id, body)
            await self._read(stream_id, reply)
            nursery.cancel_scope.cancel()
        return reply

    async def _send_body(self, stream_id: int, body: bytes) -> None:
        view = memoryview(body)
        try:
            while view:
                size = min(
                    len(view),
                    self.conn.local_flow_control_window(stream_id),
                    self.conn.max_outbound_frame_size,
                )
                if size <= 0:
                    self._window = trio.Event()
                    await self._window.wait()
                    continue
                self.conn.send_data(stream_id, view[:size].tobytes())
                view = view[size:]
                await self.flush()
            self.conn.end_stream(stream_id)
            await self.flush()
        except h2.exceptions.StreamClosedError:
            pass  # the server answered and reset the stream: stop sending

    async def _read(self, stream_id: int, reply: H2Reply) -> None:
        while True:
            data = await self.stream.receive_some()
            assert data, "the server closed the connection"
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.WindowUpdated):
                    self._window.set()
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.goaway = event
                    return
                elif getattr(event, "stream_id", None) != stream_id:
                    continue
                elif isinstance(event, h2.events.ResponseReceived):
                    reply.status = int(dict(event.headers)[b":status"])
                elif isinstance(event, h2.events.DataReceived):
                    reply.body += event.data
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, stream_id
                    )
                elif isinstance(event, h2.events.StreamReset):
                    reply.reset = event.error_code
                    return
                elif isinstance(event, h2.events.StreamEnded):
                    return
            await self.flush()


@asynccontextmanager
async def h2_connection(url: str) -> AsyncIterator[H2Client]:
    host = url.removeprefix("http://")
    address, _, port = host.rpartition(":")
    stream = await trio.open_tcp_stream(address, int(port))
    async with stream:
        client = H2Client(stream, host)
        client.conn.initiate_connection()
        await client.flush()
        yield client


def form_body(kind: str, size: int) -> tuple[bytes, bytes]:
    """A body of ``size`` bytes of the given kind, and its Content-Type."""
    if kind == "urlencoded":
        return b"a=" + b"x" * (size - 2), b"application/x-www-form-urlencoded"
    if kind == "multipart":
        head = multipart(("f", "f.bin", b""))
        data = b"x" * (size - len(head))
        return multipart(("f", "f.bin", data)), MULTIPART.encode()
    return b"x" * size, b"text/plain"


@pytest.mark.parametrize(
    ("kind", "declared", "size", "status"),
    [
        pytest.param("raw", True, MB, 200, id="exactly-1MiB"),
        pytest.param("raw", True, MB + 1, 413, id="1MiB-plus-1"),
        pytest.param("raw", False, MB, 200, id="no-length-1MiB"),
        pytest.param("raw", False, MB + 1, 413, id="no-length-1MiB-plus-1"),
        pytest.param("urlencoded", True, MB, 200, id="urlencoded-1MiB"),
        pytest.param("urlencoded", True, MB + 1, 413, id="urlencoded-1MiB-plus-1"),
        pytest.param("multipart", False, MB, 200, id="multipart-1MiB"),
        pytest.param("multipart", False, MB + 1, 413, id="multipart-1MiB-plus-1"),
        pytest.param("raw", True, 2 * MB, 413, id="2MiB"),
    ],
)
async def test_dump_max_request_size_is_exact_and_refuses_before_php(
    client: httpx.AsyncClient,
    target: Target,
    kind: str,
    declared: bool,
    size: int,
    status: int,
) -> None:
    body, content_type = form_body(kind, size)
    assert len(body) == size
    headers = [(b"content-type", content_type)]
    if declared:
        headers.append((b"content-length", str(size).encode()))
    with trio.fail_after(TIMEOUT):
        before = await calls(client)
        if target.http == "1.1":
            content = body if declared else chunked(body)
            response = await client.post("/", content=content, headers=headers)
            got, text = response.status_code, response.content
        else:
            async with h2_connection(target.dump.url) as h2c:
                reply = await h2c.request("/", headers, body)
                got, text = reply.status, reply.body
                # The refused stream ends cleanly and the connection serves on.
                assert reply.reset in (None, h2.errors.ErrorCodes.NO_ERROR)
                assert (await h2c.request("/after", [], b"")).status == 200
                assert h2c.goaway is None
        assert got == status, text
        after = await calls(client)
        await wait_empty(target.dump.uploads)
    # PHP served the second count, the body if it passed, and /after on h2.
    served = 1 + (status == 200) + (target.http == "2")
    assert after == before + served
    if status == 413:
        assert text == b"The request body is larger than the limit of 1 MB.\n"


async def test_dump_upload_under_the_limit_passes(
    client: httpx.AsyncClient, target: Target
) -> None:
    with trio.fail_after(TIMEOUT):
        response = await client.post(
            "/", files={"f": ("f.bin", b"y" * (16 * 1024), "text/plain")}
        )
        data = dump_of(response)
        await wait_empty(target.dump.uploads)
    assert data["files"]["f"]["size"] == 16 * 1024
    assert data["files"]["f"]["error"] == 0


def local_port(response: httpx.Response) -> int:
    """The client's port of the connection that carried ``response``."""
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


async def test_dump_head_then_get_on_one_connection(
    client: httpx.AsyncClient,
) -> None:
    # Bug input 8: PHP writes an 11-byte body for HEAD, without a
    # Content-Length. The client gets none of it, and no length that says
    # the body is empty; the GET after it on the same connection parses.
    with trio.fail_after(TIMEOUT):
        head = await client.head("/?text=hello+world")
        get = await client.get("/?text=hello+world")
        dump = await client.get("/after")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers.get_list("content-length") in ([], ["11"])
    assert (get.status_code, get.content) == (200, b"hello world")
    assert dump_of(dump)["method"] == "GET"
    assert local_port(head) == local_port(get) == local_port(dump)


SET_COOKIES = [
    b"a=1; Path=/; HttpOnly",
    b"b=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax",
]


async def test_dump_set_cookie_lines_are_byte_identical_in_order(
    client: httpx.AsyncClient,
) -> None:
    # Bug input 7: two Set-Cookie lines, never folded into one, never
    # reordered, an Expires date with its comma kept.
    query = "&".join(
        "set-cookie=" + quote(cookie.decode(), safe="") for cookie in SET_COOKIES
    )
    with trio.fail_after(TIMEOUT):
        response = await client.get(f"/?{query}")
    assert response.status_code == 200
    assert [v for n, v in response.headers.raw if n.lower() == b"set-cookie"] == (
        SET_COOKIES
    )


@pytest.mark.parametrize("status", [204, 304])
async def test_dump_bodyless_status_leaves_the_connection_clean(
    client: httpx.AsyncClient, status: int
) -> None:
    # PHP writes its JSON body anyway; the client must get none of it, and
    # the next request on the connection must not read it as its answer.
    with trio.fail_after(TIMEOUT):
        response = await client.get(f"/?status={status}")
        after = await client.get("/after")
    assert response.status_code == status
    assert response.content == b""
    if status == 204:
        assert "content-length" not in response.headers
    assert dump_of(after)["uri"].endswith("/after")
    assert local_port(response) == local_port(after)


async def test_dump_worker_death_during_an_upload_deletes_its_files(
    client: httpx.AsyncClient, target: Target
) -> None:
    with trio.fail_after(TIMEOUT):
        response = await client.post(
            "/?die=1",
            data={"note": "hello"},
            files={"report": ("report.bin", os.urandom(64 * 1024), "text/plain")},
        )
        await wait_empty(target.dump.uploads)
        after = await client.get("/after")  # a new worker serves it
    assert response.status_code == 500
    assert dump_of(after)["requests"] == 1


async def send_raw(
    target: Target, method: str, request_target: str, host: bytes
) -> tuple[int, bytes]:
    """One request with this Host (or ``:authority``), as bytes on the wire:
    httpx and h11 check what they send. Returns the status and the body."""
    address = target.dump.url.removeprefix("http://")
    if target.http == "2":
        async with open_h2(address) as h2c:
            h2c.authority = host.decode("latin-1")
            stream_id = await h2c.request(method, request_target)
            answer = await h2c.wait_ended(stream_id)
            return answer.status, answer.body
    name, _, port = address.rpartition(":")
    async with await trio.open_tcp_stream(name, int(port)) as stream:
        await stream.send_all(
            b"%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
            % (method.encode(), request_target.encode(), host)
        )
        data = b""
        while piece := await stream.receive_some(65536):
            data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower(), head
    return int(head.split(b" ", 2)[1]), body


# What a tester sent to move the path a PSR-7 app routes on, and more of
# the kind. Over HTTP/1.1 the lean server's parser refuses the control
# byte itself; every other one reaches the bridge, which answers 400.
INJECTING_HOSTS = [
    b"x/hello/injected#",
    b"x/admin?",
    b"x/y",
    b"x?",
    b"x#",
    b"user@host",
    b"a b",
    b"host:port",
    b"host:80:90",
    b"[::1",
    b"a\x01b",
]


async def test_dump_malformed_host_is_400_and_never_reaches_php(
    client: httpx.AsyncClient, target: Target
) -> None:
    with trio.fail_after(TIMEOUT):
        before = await calls(client)
        answers = {
            host: await send_raw(target, "GET", "/api/status", host)
            for host in INJECTING_HOSTS
        }
        after = await calls(client)
    assert {host: status for host, (status, _) in answers.items()} == dict.fromkeys(
        INJECTING_HOSTS, 400
    )
    assert answers[b"x/admin?"][1] == (
        b"The request is malformed: the Host header is not a valid host or host:port.\n"
    )
    assert after == before + 1  # PHP served only the second count


@pytest.mark.parametrize("host", [host for host in GOOD_HOSTS if host])
async def test_dump_valid_host_makes_the_uri(target: Target, host: bytes) -> None:
    with trio.fail_after(TIMEOUT):
        status, body = await send_raw(target, "GET", "/x?a=1", host)
    assert status == 200, body
    assert json.loads(body)["uri"] == f"http://{host.decode()}/x?a=1"


@pytest.mark.parametrize(
    ("method", "request_target", "uri", "raw_query"),
    [
        pytest.param("OPTIONS", "*", "http://h.example", "", id="asterisk"),
        pytest.param("GET", "/a#frag", "http://h.example/a", "", id="fragment"),
        pytest.param(
            "GET", "/a?b=1#frag", "http://h.example/a?b=1", "b=1", id="query-fragment"
        ),
    ],
)
async def test_dump_asterisk_and_fragment_make_a_sane_uri(
    target: Target, method: str, request_target: str, uri: str, raw_query: str
) -> None:
    with trio.fail_after(TIMEOUT):
        status, body = await send_raw(target, method, request_target, b"h.example")
    assert status == 200, body
    data = json.loads(body)
    assert (data["uri"], data["rawQuery"]) == (uri, raw_query)


async def test_dump_target_that_runs_into_the_host_is_400(
    client: httpx.AsyncClient, target: Target
) -> None:
    # "http://h.example" + "*.evil.example/x" would name another host.
    with trio.fail_after(TIMEOUT):
        before = await calls(client)
        status, _ = await send_raw(target, "GET", "*.evil.example/x", b"h.example")
        after = await calls(client)
    assert status == 400
    assert after == before + 1
