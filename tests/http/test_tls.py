"""HTTPS: the TLS context from ``[http.ssl]``, mTLS, the redirect, the server.

Certificates come from a throwaway CA (``trustme``). Server tests run real
PHP (``tests/php/http_sleep_on_path.php`` answers ``done <path>``).
"""

from __future__ import annotations

import logging
import ssl
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import h2.settings
import httpx
import pytest
import trio
import trustme

from tests.http.fakes import FakeExchanger, Reply, chunk, http_scope, replying
from tests.http.h2client import open_h2
from tests.servers import PHP, write_config
from trio_runner.config import config_from_mapping
from trio_runner.config.model import SslConfig
from trio_runner.errors import ConfigError
from trio_runner.http import HttpBridge, serve_http
from trio_runner.http.tls import CLIENT_AUTH, HttpsRedirect, server_context

TIMEOUT = 10.0


@attrs.frozen
class Pki:
    ca: trustme.CA
    directory: Path

    @property
    def cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def key(self) -> Path:
        return self.directory / "server.key"

    @property
    def root_ca(self) -> Path:
        return self.directory / "ca.crt"

    def client(self, *, with_cert: bool = False) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        if with_cert:
            self.ca.issue_cert("client@example.org").configure_cert(context)
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    pki = Pki(ca, directory)
    issued.cert_chain_pems[0].write_to_path(str(pki.cert))
    issued.private_key_pem.write_to_path(str(pki.key))
    ca.cert_pem.write_to_path(str(pki.root_ca))
    return pki


def ssl_config(pki: Pki, **settings: Any) -> SslConfig:
    settings = {"cert": str(pki.cert), "key": str(pki.key), **settings}
    config = config_from_mapping(
        {"server": {"command": "php x.php"}, "http": {"ssl": settings}}
    )
    assert config.http is not None and config.http.ssl is not None
    return config.http.ssl


def test_server_context_offers_h2_then_http11_over_tls12_or_later(pki: Pki) -> None:
    context = server_context(ssl_config(pki), pki.directory)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    assert context.options & ssl.OP_NO_COMPRESSION


def test_server_context_reads_paths_relative_to_working_dir(pki: Pki) -> None:
    config = ssl_config(pki, cert="server.crt", key="server.key")
    server_context(config, pki.directory)
    with pytest.raises(ConfigError, match=r"^http\.ssl\.cert: .*server\.crt cannot"):
        server_context(config, pki.directory / "elsewhere")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"cert": "missing.crt"}, r"^http\.ssl\.cert: \S+missing\.crt cannot be read"),
        ({"key": "missing.key"}, r"^http\.ssl\.key: \S+missing\.key cannot be read"),
        ({"cert": "server.key"}, r"^http\.ssl\.cert: \S+ holds no PEM certificate"),
        ({"key": "server.crt"}, r"^http\.ssl\.key: \S+ holds no PEM private key"),
        ({"cert": "broken.crt"}, r"^http\.ssl\.cert: \S+ is not a valid PEM cert"),
        ({"key": "other.key"}, r"^http\.ssl\.key: \S+ is not a valid PEM private key"),
        (
            {"root_ca": "missing.pem", "client_auth_type": "request_client_cert"},
            r"^http\.ssl\.root_ca: \S+missing\.pem cannot be read",
        ),
    ],
    ids=[
        "no-cert",
        "no-key",
        "cert-is-key",
        "key-is-cert",
        "bad-cert",
        "other-key",
        "no-ca",
    ],
)
def test_server_context_names_the_bad_key(
    pki: Pki, settings: dict[str, str], message: str
) -> None:
    (pki.directory / "broken.crt").write_text(
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
    )
    trustme.CA().issue_cert("x").private_key_pem.write_to_path(
        str(pki.directory / "other.key")
    )
    config = ssl_config(pki, **{"cert": "server.crt", "key": "server.key", **settings})
    with pytest.raises(ConfigError, match=message):
        server_context(config, pki.directory)


@pytest.mark.parametrize(("kind", "mode"), list(CLIENT_AUTH.items()))
def test_server_context_maps_client_auth_types(
    pki: Pki, kind: str, mode: ssl.VerifyMode
) -> None:
    config = ssl_config(pki, root_ca=str(pki.root_ca), client_auth_type=kind)
    assert server_context(config, pki.directory).verify_mode == mode


async def test_server_context_mtls_requires_a_certificate_from_the_ca(
    pki: Pki,
) -> None:
    config = ssl_config(
        pki, root_ca=str(pki.root_ca), client_auth_type="require_and_verify_client_cert"
    )
    bridge = HttpBridge(FakeExchanger(replying(chunk(200, b"hi"))))
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(
                partial(
                    serve_http,
                    bridge,
                    "127.0.0.1:0",
                    tls=server_context(config, pki.directory),
                )
            )
            url = f"https://{bound}/".replace("127.0.0.1", "localhost")
            async with httpx.AsyncClient(verify=pki.client(with_cert=True)) as client:
                assert (await client.get(url)).text == "hi"
            async with httpx.AsyncClient(verify=pki.client()) as client:
                with pytest.raises(httpx.TransportError):
                    await client.get(url)
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("port", "headers", "server", "location"),
    [
        (
            8443,
            [(b"host", b"example.org:8080")],
            None,
            "https://example.org:8443/p?q=1",
        ),
        (443, [(b"host", b"example.org")], None, "https://example.org/p?q=1"),
        (443, [(b"host", b"[::1]:80")], None, "https://[::1]/p?q=1"),
        (8443, [], ("10.0.0.1", 80), "https://10.0.0.1:8443/p?q=1"),
        (8443, [(b"host", b"a/b@c")], ("10.0.0.1", 80), "https://10.0.0.1:8443/p?q=1"),
    ],
    ids=["host-with-port", "default-port", "ipv6", "no-host", "odd-host"],
)
async def test_https_redirect_keeps_host_path_and_query(
    port: int,
    headers: list[tuple[bytes, bytes]],
    server: tuple[str, int] | None,
    location: str,
) -> None:
    scope = http_scope("POST", "/p", query=b"q=1", headers=headers, server=server)
    reply = Reply()

    async def receive() -> dict[str, Any]:
        raise AssertionError("the redirect reads no body")

    await HttpsRedirect(port)(scope, receive, reply.send)
    assert reply.status == 308
    assert reply.header(b"location") == [location.encode()]


def server_overrides(pki: Pki, *more: str) -> list[str]:
    return [
        "http.ssl.address=127.0.0.1:0",
        f"http.ssl.cert={pki.cert}",
        f"http.ssl.key={pki.key}",
        *more,
    ]


@pytest.mark.php
async def test_server_serves_https_with_h2_and_http11(
    php_server: Any, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "trio_runner.server")
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP / "http_sleep_on_path.php", overrides=server_overrides(pki)
        )
        https = server.https_url.replace("127.0.0.1", "localhost")
        for http2 in (True, False):
            async with httpx.AsyncClient(verify=pki.client(), http2=http2) as client:
                response = await client.get(f"{https}/tls")
            assert response.text == "done /tls"
            assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{server.http_url}/plain")).text == "done /plain"
    [ready] = [r.getMessage() for r in caplog.records if "serving on" in r.getMessage()]
    assert f"serving on {server.http_url} and {server.https_url} (workers: " in ready


@pytest.mark.php
async def test_server_redirects_plain_http_to_https(php_server: Any, pki: Pki) -> None:
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP / "http_sleep_on_path.php",
            overrides=server_overrides(pki, "http.ssl.redirect=true"),
        )
        port = server.https_address.rpartition(":")[2]
        async with httpx.AsyncClient(verify=pki.client(), http2=True) as client:
            moved = await client.post(f"{server.http_url}/a/b?c=1", content=b"x")
            assert moved.status_code == 308
            location = f"https://127.0.0.1:{port}/a/b?c=1"
            assert moved.headers["location"] == location
            final = await client.get(location.replace("127.0.0.1", "localhost"))
    assert final.text == "done /a/b"


@pytest.mark.php
@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "tls"])
async def test_server_applies_http2_settings(
    php_server: Any, pki: Pki, tls: bool
) -> None:
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP / "http_sleep_on_path.php",
            overrides=server_overrides(
                pki, "http.http2.h2c=true", "http.http2.max_concurrent_streams=7"
            ),
        )
        address = server.https_address if tls else server.http_address
        async with open_h2(address, tls=pki.client() if tls else None) as client:
            answer = await client.wait_ended(await client.request("GET", "/h2"))
    assert answer.body == b"done /h2"
    assert client.settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 7


@pytest.mark.php
async def test_server_holds_every_protocol_to_max_header_size(
    php_server: Any, pki: Pki
) -> None:
    # Only the lean server and HTTPS HTTP/1.1 heads over 16 KiB got 431.
    with trio.fail_after(TIMEOUT):
        server = await php_server(
            script=PHP / "http_sleep_on_path.php",
            overrides=server_overrides(
                pki, "http.http2.h2c=true", "http.max_header_size=8192"
            ),
        )
        https = server.https_url.replace("127.0.0.1", "localhost")
        answers: dict[str, tuple[int, int]] = {}
        for name, url, http1, http2 in [
            ("h1-with-h2c", server.http_url, True, False),
            ("h2c", server.http_url, False, True),
            ("https-h1", https, True, False),
            ("https-h2", https, False, True),
        ]:
            async with httpx.AsyncClient(
                verify=pki.client(), http1=http1, http2=http2
            ) as client:
                refused = await client.get(url, headers={"x-big": "a" * 20_000})
                served = await client.get(f"{url}/after")
                assert served.text == "done /after"
            answers[name] = (refused.status_code, served.status_code)
    assert answers == dict.fromkeys(answers, (431, 200))


@pytest.mark.php
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("http.ssl.cert=missing.crt", "http.ssl.cert"),
        ("http.ssl.key=missing.key", "http.ssl.key"),
    ],
)
def test_serve_exits_with_one_line_for_bad_tls_files(
    tmp_path: Path, pki: Pki, override: str, key: str
) -> None:
    config = write_config(tmp_path, "http_sleep_on_path.php")
    args = [f"-o{item}" for item in server_overrides(pki, override)]
    result = subprocess.run(
        [sys.executable, "-m", "trio_runner", "serve", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert f"{key}: {tmp_path}" in errors[0]
    assert "cannot be read" in errors[0]
    assert "Traceback" not in result.stderr
