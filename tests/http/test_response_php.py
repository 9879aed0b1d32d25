"""Responses from real PHP workers, over HTTP/1.1 and HTTP/2, as clients see them.

Each worker in ``tests/php/`` is named for what it answers. Raw clients
(a socket with h11, ``tests/http/h2client.py``) show the exact header lines
and frames; bug inputs are from issue #3.
"""

from __future__ import annotations

import logging
from typing import Any

import h2.errors
import h11
import httpx
import pytest
import trio

from tests.http.h2client import open_h2
from tests.servers import PHP, half_close

pytestmark = pytest.mark.php

TIMEOUT = 10.0
MB = 1024 * 1024

COOKIES = [
    b"a=1; Path=/; HttpOnly",
    b"b=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax",
]


async def start(
    php_server: Any, script: str, *overrides: str, front: str = "hypercorn"
) -> Any:
    """Serve ``script``: on hypercorn with h2c, or HTTP/1.1 on the lean server."""
    h2c = "false" if front == "lean" else "true"
    return await php_server(
        script=PHP / script, overrides=[f"http.http2.h2c={h2c}", *overrides]
    )


# The HTTP/1.1 tests run on both servers.
fronts = pytest.mark.parametrize("front", ["lean", "hypercorn"])


class H11Client:
    """HTTP/1.1 over one raw connection, parsed by h11."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.connection = h11.Connection(h11.CLIENT)

    async def exchange(
        self, method: str, path: str, *, until: bytes = b""
    ) -> tuple[h11.Response, bytes]:
        """One request; its response and body, or the body so far once
        ``until`` shows in it."""
        request = h11.Request(method=method, target=path, headers=[("Host", "x")])
        await self.stream.send_all(
            self.connection.send(request) + self.connection.send(h11.EndOfMessage())
        )
        response: h11.Response | None = None
        body = b""
        while not (until and until in body):
            event = self.connection.next_event()
            if event is h11.NEED_DATA:
                self.connection.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.connection.start_next_cycle()
                break
        assert response is not None
        return response, body


async def open_h11(url: str) -> H11Client:
    host, _, port = url.removeprefix("http://").rpartition(":")
    return H11Client(await trio.open_tcp_stream(host, int(port)))


@fronts
async def test_php_cookies_stay_separate_lines_over_http11(
    php_server: Any, front: str
) -> None:
    # Bug input 7.
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_cookies.php", front=front)
        client = await open_h11(server.http_url)
        async with client.stream:
            response, body = await client.exchange("GET", "/")
    cookies = [value for name, value in response.headers if name == b"set-cookie"]
    assert (response.status_code, body) == (200, b"two cookies")
    assert cookies == COOKIES


@pytest.mark.parametrize(
    ("http", "front"), [("1.1", "lean"), ("1.1", "hypercorn"), ("2", "hypercorn")]
)
async def test_php_response_has_one_date_header_phps_own_first(
    php_server: Any, http: str, front: str
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_own_date.php", front=front)
        dates = {}
        for path in ("/", "/own"):
            if http == "2":
                async with open_h2(server.http_address) as client:
                    answer = await client.wait_ended(await client.request("GET", path))
                dates[path] = answer.header(b"date")
            else:
                client = await open_h11(server.http_url)
                async with client.stream:
                    response, _ = await client.exchange("GET", path)
                dates[path] = [v for n, v in response.headers if n == b"date"]
    assert dates["/own"] == [b"Thu, 01 Jan 2037 00:00:00 GMT"]
    assert len(dates["/"]) == 1 and dates["/"][0].endswith(b" GMT")
    assert b"2037" not in dates["/"][0]


async def test_php_cookies_stay_separate_lines_over_http2(php_server: Any) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_cookies.php")
        async with open_h2(server.http_address) as client:
            answer = await client.wait_ended(await client.request("GET", "/"))
    assert answer.header(b"set-cookie") == COOKIES


async def test_php_head_drops_the_body_and_the_connection_goes_on(
    php_server: Any,
) -> None:
    # Bug input 8: PHP writes 11 bytes without a Content-Length for HEAD.
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_body_for_head.php")
        client = await open_h11(server.http_url)
        async with client.stream:
            head, head_body = await client.exchange("HEAD", "/")
            get, get_body = await client.exchange("GET", "/")
        async with open_h2(server.http_address) as h2_client:
            answer = await h2_client.wait_ended(await h2_client.request("HEAD", "/"))
    assert (head.status_code, head_body) == (200, b"")
    assert dict(head.headers).get(b"content-length", b"11") == b"11"
    assert (get.status_code, get_body) == (200, b"hello world")
    assert (answer.status, answer.body) == (200, b"")
    assert answer.header(b"content-length") in ([], [b"11"])


async def test_php_early_hints_carry_only_their_own_links_over_http2(
    php_server: Any,
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_early_hints.php")
        async with open_h2(server.http_address) as client:
            answer = await client.wait_ended(await client.request("GET", "/"))
        async with httpx.AsyncClient() as http11:
            plain = await http11.get(f"{server.http_url}/")
    [hints] = answer.informational
    assert hints == [
        (b":status", b"103"),
        (b"link", b"</style.css>; rel=preload; as=style"),
        (b"link", b"</app.js>; rel=preload; as=script"),
    ]
    assert (answer.status, answer.body) == (200, b"final")
    assert answer.header(b"x-final") == [b"yes"]
    assert answer.header(b"link") == answer.header(b"x-hint") == []
    # HTTP/1.1 gets the final response only (no way to send a 103 there).
    assert (plain.status_code, plain.text) == (200, "final")
    assert "link" not in plain.headers and "x-hint" not in plain.headers


@pytest.mark.parametrize("te", [True, False], ids=["te-trailers", "no-te"])
async def test_php_trailer_comes_after_the_body_over_http2(
    php_server: Any, te: bool
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_trailer.php")
        async with open_h2(server.http_address) as client:
            headers = [("te", "trailers")] if te else []
            answer = await client.wait_ended(await client.request("GET", "/", headers))
    assert answer.body == b"part one, part two"
    assert answer.header(b"trailer") == []
    checksum = [(b"x-checksum", b"sha1=0123abcd")]
    if te:
        assert answer.trailers == checksum
        assert answer.header(b"x-checksum") == []
    else:  # the client said nothing of trailers: sent as a header instead
        assert answer.trailers is None
        assert answer.header(b"x-checksum") == [b"sha1=0123abcd"]


@fronts
async def test_php_trailer_is_a_header_over_http11(php_server: Any, front: str) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_trailer.php", front=front)
        async with httpx.AsyncClient() as client:
            response = await client.get(
                f"{server.http_url}/", headers={"TE": "trailers"}
            )
    assert response.text == "part one, part two"
    assert response.headers["x-checksum"] == "sha1=0123abcd"
    assert "trailer" not in response.headers


async def stopped(caplog: pytest.LogCaptureFixture) -> str:
    """Wait for the worker's "stream stopped" line; return it."""
    while True:
        for record in caplog.records:
            if "stream stopped after" in record.getMessage():
                return record.getMessage()
        await trio.sleep(0.01)


@pytest.mark.parametrize(
    ("http", "front"), [("1.1", "lean"), ("1.1", "hypercorn"), ("2", "hypercorn")]
)
async def test_php_stream_stopped_by_a_leaving_client_keeps_the_worker(
    php_server: Any, caplog: pytest.LogCaptureFixture, http: str, front: str
) -> None:
    caplog.set_level(logging.INFO, "trio_runner.worker")
    with trio.fail_after(TIMEOUT):
        server = await start(
            php_server, "http_stream.php", "http.pool.num_workers=1", front=front
        )
        if http == "1.1":
            client = await open_h11(server.http_url)
            async with client.stream:
                # Past two PINGs (every 5th chunk), each chunk on its own.
                _, body = await client.exchange("GET", "/stream", until=b"chunk 12\n")
            first = body.decode().splitlines()[0]
        else:
            async with open_h2(server.http_address) as h2_client:
                stream_id = await h2_client.request("GET", "/stream")
                answer = h2_client.answer(stream_id)
                await h2_client.wait_for(lambda _: b"chunk 12\n" in answer.body)
                first = answer.body.decode().splitlines()[0]
                h2_client.connection.reset_stream(
                    stream_id, h2.errors.ErrorCodes.CANCEL
                )
                await h2_client.flush()
        line = await stopped(caplog)
        async with httpx.AsyncClient() as client:
            after = await client.get(f"{server.http_url}/pid")
    assert first.startswith("pid ")
    assert after.text == first  # the same worker, stopped and reused
    sent = int(line.rpartition("after ")[2].split()[0])
    assert 12 <= sent < 200


@fronts
async def test_php_answers_a_client_that_half_closed_after_its_requests(
    php_server: Any, front: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The lean server took the end of input for the client leaving: the
    # slow request (watched from the first second on) was cancelled and
    # nothing came back (499).
    caplog.set_level(logging.INFO, "trio_runner.worker")
    with trio.fail_after(TIMEOUT):
        server = await start(
            php_server, "http_sleep.php", "http.pool.num_workers=1", front=front
        )
        answer = await half_close(
            server.http_address,
            b"GET /?s=2 HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /pid HTTP/1.1\r\nHost: x\r\n\r\n",
        )
        async with httpx.AsyncClient() as client:
            after = await client.get(f"{server.http_url}/pid")
    first, _, second = answer.partition(b"HTTP/1.1 200 OK\r\n")[2].partition(
        b"HTTP/1.1 200 OK\r\n"
    )
    assert first.endswith(b"\r\n\r\n" + after.text.encode())  # the same worker
    assert second.endswith(b"\r\n\r\n" + after.text.encode())
    assert "http_sleep: sleeping 2 s" in caplog.text  # as the next test expects not


@fronts
async def test_php_half_close_mid_body_never_reaches_php(
    php_server: Any, front: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trio_runner.worker")
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_sleep.php", front=front)
        answer = await half_close(
            server.http_address,
            b"POST /?s=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
        )
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.http_url}/pid")).status_code == 200
    if front == "lean":
        assert answer == b""  # the client left
    else:
        assert answer.startswith(b"HTTP/1.1 400 ")  # h11 answers the cut body
    assert "http_sleep: sleeping" not in caplog.text


@fronts
async def test_php_never_gets_a_body_in_an_unknown_transfer_coding(
    php_server: Any, front: str
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_sleep.php", front=front)
        answer = await half_close(
            server.http_address,
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n"
            b"\r\n3\r\nabc\r\n0\r\n\r\n",
        )
    assert answer.startswith(b"HTTP/1.1 501 Not Implemented\r\n")


async def test_php_h2c_body_refused_early_then_the_connection_serves_on(
    php_server: Any,
) -> None:
    # Bug input 6.
    with trio.fail_after(TIMEOUT):
        server = await start(
            php_server, "http_sleep_on_path.php", "http.max_request_size=1"
        )
        async with open_h2(server.http_address) as client:
            body = b"x" * (2 * MB)
            post = await client.request(
                "POST", "/up", [("content-length", str(len(body)))], end_stream=False
            )
            await client.send_body(post, body)
            refused = await client.wait_ended(post)
            after = await client.wait_ended(await client.request("GET", "/after"))
    assert refused.status == 413
    assert refused.reset in (None, h2.errors.ErrorCodes.NO_ERROR)
    assert (after.status, after.body) == (200, b"done /after")
    assert client.goaway is None


async def read_raw(response: httpx.Response, into: list[bytes]) -> None:
    """Read the body into ``into``, which keeps what came before a failure."""
    async for data in response.aiter_raw():
        into.append(data)


@pytest.mark.parametrize("path", ["/throw", "/psr7"])
@fronts
async def test_php_stream_that_throws_is_cut_short_over_http11(
    php_server: Any, caplog: pytest.LogCaptureFixture, front: str, path: str
) -> None:
    caplog.set_level(logging.WARNING, "trio_runner.http")
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_stream_fails.php", front=front)
        async with httpx.AsyncClient() as client:
            before = await client.get(f"{server.http_url}/pid")
            received: list[bytes] = []
            async with client.stream("GET", f"{server.http_url}{path}") as response:
                # No last chunk: the server closed the connection instead.
                with pytest.raises(httpx.RemoteProtocolError, match="incomplete"):
                    await read_raw(response, received)
            after = await client.get(f"{server.http_url}/pid")
    assert (response.status_code, b"".join(received)) == (200, b"part1\n")
    assert after.text == before.text  # an error frame: the worker stays
    [failure] = [r for r in caplog.records if r.name == "trio_runner.http.bridge"]
    assert "PHP answered with an error" in failure.getMessage()


@pytest.mark.parametrize("path", ["/throw", "/psr7", "/fatal"])
async def test_php_stream_that_fails_is_reset_over_http2(
    php_server: Any, path: str
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, "http_stream_fails.php")
        async with open_h2(server.http_address) as client:
            before = await client.wait_ended(await client.request("GET", "/pid"))
            cut = await client.wait_ended(await client.request("GET", path))
            # The connection serves on; only the failed stream was reset.
            after = await client.wait_ended(await client.request("GET", "/pid"))
    assert (cut.status, cut.body) == (200, b"part1\n")
    assert not cut.ended
    assert cut.reset == h2.errors.ErrorCodes.INTERNAL_ERROR
    assert (after.status, client.goaway) == (200, None)
    # A fatal error ends the process: a replacement answers next.
    assert (after.body == before.body) is (path != "/fatal")
