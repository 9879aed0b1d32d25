"""Reading the request body: the size limit, raw bodies, and forms."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from tests.http.fakes import Client, FakeExchanger, Reply, http_scope
from trio_runner.http import HttpBridge
from trio_runner.http.asgi import NO_BODY_EXTENSION
from trio_runner.http.body import (
    BodyTooLarge,
    ClientGone,
    MalformedBody,
    RequestBody,
    empty_request_body,
    read_request_body,
)
from trio_runner.http.proto import http_pb2
from trio_runner.http.uploads import TempFiles, UploadOptions, open_temp_files

MB = 1024 * 1024
URLENCODED = (b"content-type", b"application/x-www-form-urlencoded")
MULTIPART = (b"content-type", b"multipart/form-data; boundary=zz")
FORM = (
    b'--zz\r\ncontent-disposition: form-data; name="a[]"\r\n\r\n1\r\n'
    b'--zz\r\ncontent-disposition: form-data; name="up"; filename="u.txt"\r\n'
    b"content-type: text/plain\r\n\r\nfile body\r\n"
    b"--zz--\r\n"
)


@pytest.fixture
async def files(tmp_path: Path) -> AsyncIterator[TempFiles]:
    async with open_temp_files(UploadOptions(dir=str(tmp_path))) as store:
        yield store


async def read(
    files: TempFiles,
    body: list[bytes],
    *headers: tuple[bytes, bytes],
    method: str = "POST",
    limit: int = 0,
    raw_body: bool = False,
    empty_form: bytes = b"",
    client: Client | None = None,
) -> RequestBody:
    scope = http_scope(method, headers=[(b"host", b"h"), *headers])
    client = client or Client(body)
    with trio.fail_after(5):
        return await read_request_body(
            scope,
            client.receive,
            files,
            limit=limit,
            raw_body=raw_body,
            empty_form=empty_form,
        )


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS"])
async def test_body_of_head_and_options_is_not_read(
    files: TempFiles, method: str
) -> None:
    client = Client([b"a=1"])
    body = await read(files, [], URLENCODED, method=method, client=client)
    assert body == RequestBody()
    assert client.received == 0


async def test_body_is_not_waited_for_when_the_server_says_there_is_none(
    files: TempFiles,
) -> None:
    # The lean server marks requests without a body (trio_runner.no_body):
    # nothing is received for them, and an empty form is still a form.
    for headers, expected in [
        ((), RequestBody()),
        ((URLENCODED,), RequestBody(b"{}", parsed=True)),
    ]:
        scope = http_scope("POST", headers=[(b"host", b"h"), *headers])
        scope["extensions"] = {NO_BODY_EXTENSION: {}}
        client = Client([b"never read"])
        with trio.fail_after(5):
            body = await read_request_body(
                scope, client.receive, files, empty_form=b"{}"
            )
        assert body == expected
        assert client.received == 0


@pytest.mark.parametrize(
    ("method", "headers", "raw_body", "expected"),
    [
        ("GET", [], False, RequestBody()),
        ("HEAD", [URLENCODED], False, RequestBody()),
        ("POST", [URLENCODED], False, RequestBody(b"{}", parsed=True)),
        ("POST", [URLENCODED], True, RequestBody()),
        ("POST", [(b"content-type", b"application/json")], False, RequestBody()),
        ("PUT", [(b"content-length", b"0")], False, RequestBody()),
        # Left to read_request_body: a multipart form without its body
        # is malformed, and a length says a body comes after all.
        ("POST", [MULTIPART], False, None),
        ("POST", [(b"content-length", b"5")], False, None),
    ],
)
async def test_empty_body_is_worked_out_without_reading_as_reading_would(
    files: TempFiles,
    method: str,
    headers: list[tuple[bytes, bytes]],
    raw_body: bool,
    expected: RequestBody | None,
) -> None:
    scope = http_scope(method, headers=[(b"host", b"h"), *headers])
    scope["extensions"] = {NO_BODY_EXTENSION: {}}
    assert empty_request_body(scope, raw_body, b"{}") == expected
    if expected is not None:
        client = Client([b"never read"])
        read = await read_request_body(
            scope, client.receive, files, raw_body=raw_body, empty_form=b"{}"
        )
        assert read == expected


async def test_body_without_framing_headers_is_still_read(files: TempFiles) -> None:
    # No Content-Length in the scope is not taken to mean no body: an ASGI
    # server (or a test client) that does not say so is read as before.
    assert await read(files, [b"a=", b"1"]) == RequestBody(b"a=1")


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"content-type", b"application/json")],
        [(b"content-type", b"text/plain; x=application/x-www-form-urlencoded")],
        [(b"content-type", b"multipart/mixed; boundary=zz")],
    ],
)
async def test_body_other_than_a_form_passes_raw(
    files: TempFiles, headers: list[tuple[bytes, bytes]]
) -> None:
    body = await read(files, [b"a=", b"1"], *headers)
    assert body == RequestBody(b"a=1")


async def test_body_raw_body_option_passes_forms_raw(files: TempFiles) -> None:
    assert await read(files, [b"a=1"], URLENCODED, raw_body=True) == RequestBody(b"a=1")
    assert await read(files, [FORM], MULTIPART, raw_body=True) == RequestBody(FORM)
    assert files.paths == []


async def test_body_urlencoded_form_becomes_the_data_tree(files: TempFiles) -> None:
    body = await read(files, [b"a[]=1&a[]=", b"2&b[c]=%41"], URLENCODED)
    assert body.parsed
    assert body.uploads is None
    assert json.loads(body.body) == {"a": ["1", "2"], "b": {"c": "A"}}


@pytest.mark.parametrize(("empty_form", "expected"), [(b"", b""), (b"{}", b"{}")])
async def test_body_empty_form_is_empty_or_braces(
    files: TempFiles, empty_form: bytes, expected: bytes
) -> None:
    body = await read(files, [b""], URLENCODED, empty_form=empty_form)
    assert body == RequestBody(expected, parsed=True)


async def test_body_multipart_fields_and_files_are_split(files: TempFiles) -> None:
    pieces = [FORM[start : start + 5] for start in range(0, len(FORM), 5)]
    body = await read(files, pieces, MULTIPART)
    assert body.parsed
    assert json.loads(body.body) == {"a": ["1"]}
    assert body.uploads is not None
    uploads = json.loads(body.uploads)
    assert uploads == {
        "up": {
            "name": "u.txt",
            "mime": "text/plain",
            "size": 9,
            "error": 0,
            "tmpName": files.paths[0],
        }
    }
    assert await trio.Path(files.paths[0]).read_bytes() == b"file body"


async def test_body_multipart_without_files_has_an_empty_uploads_tree(
    files: TempFiles,
) -> None:
    form = b"--zz\r\ncontent-disposition: form-data; name=a\r\n\r\n1\r\n--zz--\r\n"
    body = await read(files, [form], MULTIPART)
    assert body == RequestBody(b'{"a":"1"}', parsed=True, uploads=b"{}")
    empty = await read(files, [b""], MULTIPART, empty_form=b"{}")
    assert empty == RequestBody(b"{}", parsed=True, uploads=b"{}")


async def test_body_malformed_multipart_is_refused(files: TempFiles) -> None:
    with pytest.raises(MalformedBody, match="closing boundary") as refused:
        await read(files, [FORM[:-10]], MULTIPART)
    assert refused.value.read_all
    with pytest.raises(MalformedBody, match="no boundary") as refused:
        await read(files, [FORM], (b"content-type", b"multipart/form-data"))
    assert not refused.value.read_all  # refused before reading


@pytest.mark.parametrize(
    "headers",
    [[], [URLENCODED], [MULTIPART]],
    ids=["raw", "urlencoded", "multipart"],
)
async def test_body_limit_counts_every_piece_as_it_arrives(
    files: TempFiles, headers: list[tuple[bytes, bytes]]
) -> None:
    at_limit = [b"-" * (MB // 4)] * 4
    if headers == [MULTIPART]:
        at_limit = [FORM, b"-" * (MB - len(FORM))]  # an epilogue, ignored
    assert (await read(files, at_limit, *headers, limit=MB)).body is not None
    client = Client([*at_limit, b"-", b"never read"])
    with pytest.raises(BodyTooLarge) as refused:
        await read(files, [], *headers, limit=MB, client=client)
    assert client.received == len(at_limit) + 1
    assert not refused.value.read_all
    with pytest.raises(BodyTooLarge) as refused:
        await read(files, [*at_limit, b"-"], *headers, limit=MB)
    assert refused.value.read_all  # the piece over the limit was the last


async def test_body_declared_over_the_limit_is_refused_unread(
    files: TempFiles,
) -> None:
    client = Client([b"x"])
    length = (b"content-length", str(MB + 1).encode())
    with pytest.raises(BodyTooLarge):
        await read(files, [], length, limit=MB, client=client)
    assert client.received == 0
    body = await read(files, [b"x"], (b"content-length", b"1"), limit=MB)
    assert body.body == b"x"
    body = await read(files, [b"x"], (b"content-length", b"bad"), limit=MB)
    assert body.body == b"x"


async def test_body_without_a_limit_takes_anything(files: TempFiles) -> None:
    body = await read(files, [b"x" * MB] * 3, (b"content-length", b"99999999999"))
    assert len(body.body) == 3 * MB


async def test_body_client_gone_midway(files: TempFiles) -> None:
    client = Client([b"a=1"], finished=False)
    client.disconnect()
    with pytest.raises(ClientGone):
        await read(files, [], URLENCODED, client=client)


async def test_bridge_sends_the_json_codec_an_object_for_an_empty_form() -> None:
    fake = FakeExchanger()
    bridge = HttpBridge(fake, codec="json")
    scope = http_scope("POST", headers=[(b"host", b"h"), URLENCODED])
    with trio.fail_after(5):
        await bridge(scope, Client([b""]).receive, Reply().send)
    [sent] = fake.requests
    assert sent.body == b"{}"
    context = json.loads(sent.context)
    assert (context["parsed"], context["uploads"]) == (True, None)


async def test_bridge_sends_form_bodies_raw_when_told() -> None:
    fake = FakeExchanger()
    bridge = HttpBridge(fake, raw_body=True)
    scope = http_scope("POST", headers=[(b"host", b"h"), URLENCODED])
    with trio.fail_after(5):
        await bridge(scope, Client([b"a=1"]).receive, Reply().send)
    [sent] = fake.requests
    assert sent.body == b"a=1"
    assert not http_pb2.Request.FromString(sent.context).parsed
