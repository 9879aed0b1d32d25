"""The middleware from ``[http]`` config, end to end with a real PHP worker.

The worker is ``tests/php/http_report.php``, copied next to a stylesheet
into a temporary app directory that is also the static root: the worker's
own source is then one request away, and must never be served.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.servers import PHP
from trio_runner.server import Server
from trio_runner.testing.plugin import ServerFactory

pytestmark = pytest.mark.php

TIMEOUT = 10.0
CSS = b"body { color: #333; margin: 0 auto; }\n" * 60  # over 1 KiB


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_text("outside the root")
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(PHP / "http_report.php", app / "worker.php")
    (app / "style.css").write_bytes(CSS)
    return app


async def start(
    php_server: ServerFactory, app_dir: Path, overrides: Sequence[str]
) -> Server:
    return await php_server(script=app_dir / "worker.php", overrides=overrides)


def report(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    data: dict[str, Any] = json.loads(response.content)
    return data


async def raw_get(server: Server, target: str) -> tuple[int, bytes]:
    """GET ``target`` byte for byte, without a client normalising the path."""
    assert server.http_address is not None
    host, _, port = server.http_address.rpartition(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(
            f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        received = b""
        while chunk := await stream.receive_some():
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_middleware_php_static_never_serves_the_workers_source(
    php_server: ServerFactory, app_dir: Path
) -> None:
    source = (app_dir / "worker.php").read_bytes()
    with trio.fail_after(TIMEOUT):
        server = await start(
            php_server,
            app_dir,
            ['http.middleware=["static"]', 'http.static.forbid=[".php"]'],
        )
        async with httpx.AsyncClient(base_url=str(server.http_url)) as client:
            styled = await client.get("/style.css")
            assert styled.status_code == 200
            assert styled.content == CSS
            assert styled.headers["content-type"] == "text/css; charset=utf-8"

            # PHP answers what static does not serve.
            php = report(await client.get("/worker.php"))
            assert php["uri"].endswith("/worker.php")

        for target in [
            "/worker.php",
            "/WORKER.PHP",
            "/worker.php%00.css",
            "/./worker.php",
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2Fsecret.txt",
            "/..%5csecret.txt",
            "/",
        ]:
            status, body = await raw_get(server, target)
            assert source not in body, target
            assert b"outside the root" not in body, target
            assert status == 200, target
            assert json.loads(body)["pid"] > 0, target  # PHP's answer


async def test_middleware_php_cors_preflight_never_reaches_php(
    php_server: ServerFactory, app_dir: Path
) -> None:
    origin = "https://app.example"
    with trio.fail_after(TIMEOUT):
        server = await start(
            php_server,
            app_dir,
            [
                'http.middleware=["headers"]',
                f"http.headers.cors.allowed_origin={origin}",
                "http.headers.cors.allowed_methods=GET,PUT",
                "http.headers.cors.max_age=600",
                'http.headers.response={"X-Powered-By"="trio_runner"}',
                'http.headers.request={"X-Via"="middleware"}',
            ],
        )
        async with httpx.AsyncClient(base_url=str(server.http_url)) as client:
            for _ in range(3):
                preflight = await client.options(
                    "/api",
                    headers={
                        "Origin": origin,
                        "Access-Control-Request-Method": "PUT",
                    },
                )
                assert preflight.status_code == 200
                assert preflight.headers["access-control-allow-origin"] == origin
                assert preflight.headers["access-control-allow-methods"] == "GET, PUT"
                assert preflight.headers["access-control-max-age"] == "600"
                assert preflight.headers["x-powered-by"] == "trio_runner"
                assert preflight.content == b""

            actual = await client.put("/api", headers={"Origin": origin})
            data = report(actual)
            assert data["served"] == 1  # the preflights never reached PHP
            assert data["headers"]["X-Via"] == ["middleware"]
            assert actual.headers["access-control-allow-origin"] == origin
            assert actual.headers["x-powered-by"] == "trio_runner"
            assert "Origin" in actual.headers["vary"]

            refused = await client.get("/api", headers={"Origin": "https://evil"})
            assert "access-control-allow-origin" not in refused.headers


async def test_middleware_php_gzip_decodes_to_phps_body(
    php_server: ServerFactory, app_dir: Path
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, app_dir, ['http.middleware=["gzip"]'])
        async with httpx.AsyncClient(base_url=str(server.http_url)) as client:
            async with client.stream(
                "GET", "/?pad=20000", headers={"Accept-Encoding": "gzip"}
            ) as compressed:
                wire = b"".join([part async for part in compressed.aiter_raw()])
            assert compressed.headers["content-encoding"] == "gzip"
            assert compressed.headers["vary"] == "Accept-Encoding"
            assert int(compressed.headers["content-length"]) == len(wire)
            assert len(wire) < 20000

            plain = await client.get("/?pad=20000", headers={"Accept-Encoding": "br"})
            assert "content-encoding" not in plain.headers
            zipped = json.loads(gzip.decompress(wire))
            unzipped = report(plain)
            assert zipped["padding"] == unzipped["padding"] == "x" * 20000
            assert zipped["uri"] == unzipped["uri"]


async def test_middleware_php_listed_order_applies_to_static_files(
    php_server: ServerFactory, app_dir: Path
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await start(
            php_server,
            app_dir,
            [
                'http.middleware=["headers", "gzip", "static"]',
                'http.static.forbid=[".php"]',
                'http.headers.response={"X-Powered-By"="trio_runner"}',
            ],
        )
        async with httpx.AsyncClient(base_url=str(server.http_url)) as client:
            styled = await client.get("/style.css", headers={"Accept-Encoding": "gzip"})
            assert styled.headers["content-encoding"] == "gzip"
            assert styled.headers["x-powered-by"] == "trio_runner"
            assert "date" in styled.headers
            assert styled.content == CSS  # httpx decoded it


async def test_middleware_php_trusted_proxy_sets_remote_addr_and_scheme(
    php_server: ServerFactory, app_dir: Path
) -> None:
    proxied = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    with trio.fail_after(TIMEOUT):
        server = await start(php_server, app_dir, [])
        async with httpx.AsyncClient(base_url=str(server.http_url)) as client:
            data = report(
                await client.get(
                    "/who", headers={**proxied, "X-Forwarded-Proto": "https"}
                )
            )
        # The test client connects from 127.0.0.1, a default trusted subnet.
        assert data["remote_addr"] == "198.51.100.7"
        assert data["uri"].startswith("https://")

        untrusting = await start(
            php_server, app_dir, ['http.trusted_subnets=["10.0.0.0/8"]']
        )
        async with httpx.AsyncClient(base_url=str(untrusting.http_url)) as client:
            data = report(
                await client.get(
                    "/who", headers={**proxied, "X-Forwarded-Proto": "https"}
                )
            )
        assert data["remote_addr"] == "127.0.0.1"
        assert data["uri"].startswith("http://")
