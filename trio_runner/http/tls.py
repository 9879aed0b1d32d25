"""HTTPS: the server's TLS context from ``[http.ssl]``, and the redirect to it.

``server_context`` reads the certificate and key (PEM, relative to
``working_dir``) and offers HTTP/2 and HTTP/1.1 through ALPN. A file that
is missing or unreadable, or does not hold what its key says, fails with a
``ConfigError`` naming that key, so ``serve`` exits with one line.

Client certificates (mTLS): RoadRunner takes Go's five ``ClientAuthType``
values; Python's ``ssl`` has three verify modes and always verifies a
certificate it asks for. The mapping, stricter where it cannot be equal:

==================================  ===============  ======================
``client_auth_type``                verify mode      difference from Go
==================================  ===============  ======================
``no_client_certs``                 CERT_NONE        none
``request_client_cert``             CERT_OPTIONAL    a certificate that is
                                                     sent must verify
``require_any_client_cert``         CERT_REQUIRED    the certificate must
                                                     verify
``verify_client_cert_if_given``     CERT_OPTIONAL    none
``require_and_verify_client_cert``  CERT_REQUIRED    none
==================================  ===============  ======================

Certificates are verified against ``root_ca``, or the system's CAs when it
is empty, as Go does.

``HttpsRedirect`` is the app the plain address serves when ``redirect`` is
on: every request gets 308 to the same host, path and query on the HTTPS
port (RoadRunner's status, which keeps the method and body).
"""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path
from typing import Final

import attrs

from trio_runner.config.model import SslConfig
from trio_runner.errors import ConfigError
from trio_runner.http.asgi import Receive, Scope, Send

__all__ = ["CLIENT_AUTH", "HttpsRedirect", "server_context"]

logger = logging.getLogger(__name__)

CLIENT_AUTH: Final = {
    "no_client_certs": ssl.CERT_NONE,
    "request_client_cert": ssl.CERT_OPTIONAL,
    "require_any_client_cert": ssl.CERT_REQUIRED,
    "verify_client_cert_if_given": ssl.CERT_OPTIONAL,
    "require_and_verify_client_cert": ssl.CERT_REQUIRED,
}

# A host name or an IP literal, as a Host header may hold one (RFC 3986 3.2.2).
_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+")

_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_KEY = b"PRIVATE KEY-----"  # PKCS#8, RSA and EC keys alike


def server_context(config: SslConfig, working_dir: Path) -> ssl.SSLContext:
    """A server TLS context for ``[http.ssl]``, ALPN ``h2`` then ``http/1.1``.

    Raises:
        ConfigError: ``cert``, ``key`` or ``root_ca`` cannot be read or do
            not hold a PEM certificate or key, or the key does not match
            the certificate; the message names the key and the file.
    """
    cert = _pem_file("cert", config.cert, working_dir, _PEM_CERTIFICATE)
    key = _pem_file("key", config.key, working_dir, _PEM_KEY)

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 9113 9.2
    context.options |= ssl.OP_NO_COMPRESSION  # RFC 9113 9.2.1
    context.set_alpn_protocols(["h2", "http/1.1"])
    try:
        # Loading the certificate alone first tells a bad certificate from
        # a bad key, which load_cert_chain reports alike.
        ssl.create_default_context(cafile=str(cert))
    except ssl.SSLError as exc:
        raise _refuse("cert", cert, f"is not a valid PEM certificate ({exc})") from None
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise _refuse(
            "key",
            key,
            f"is not a valid PEM private key for the certificate in {cert} ({exc})",
        ) from None

    context.verify_mode = CLIENT_AUTH[config.client_auth_type]
    if context.verify_mode != ssl.CERT_NONE:
        if config.root_ca:
            root_ca = _pem_file(
                "root_ca", config.root_ca, working_dir, _PEM_CERTIFICATE
            )
            try:
                context.load_verify_locations(cafile=root_ca)
            except ssl.SSLError as exc:
                raise _refuse(
                    "root_ca", root_ca, f"is not a valid PEM certificate ({exc})"
                ) from None
        else:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    elif config.root_ca:
        logger.warning(
            "http.ssl.root_ca is set but client_auth_type is no_client_certs: "
            "client certificates are not asked for (set client_auth_type to "
            "use them)"
        )
    return context


def _pem_file(name: str, value: str, working_dir: Path, marker: bytes) -> Path:
    path = working_dir / value
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _refuse(name, path, f"cannot be read: {exc.strerror or exc}") from None
    if marker not in data:
        what = "certificate" if marker == _PEM_CERTIFICATE else "private key"
        raise _refuse(name, path, f"holds no PEM {what} ({marker.decode()} missing)")
    return path


def _refuse(name: str, path: Path, problem: str) -> ConfigError:
    return ConfigError(f"http.ssl.{name}: {path} {problem}")


@attrs.frozen
class HttpsRedirect:
    """An ASGI app that sends every HTTP request to HTTPS on ``port``.

    The host is the one the client asked for (``Host`` or ``:authority``),
    else the address the request came in on; the port is left out when it
    is 443.
    """

    port: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = str(message["type"]).removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":  # a websocket: refused (403)
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        location = self.location(scope)
        body = f"Moved to {location}\n".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 308,
                "headers": [
                    (b"location", location.encode()),
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def location(self, scope: Scope) -> str:
        """The HTTPS URL for the request in ``scope``."""
        host = ""
        for name, value in scope.get("headers", ()):
            if bytes(name).lower() == b"host":
                host = bytes(value).decode("latin-1")
                break
        host = _without_port(host)
        if _HOST.fullmatch(host) is None:
            host = _server_host(scope)
        port = "" if self.port == 443 else f":{self.port}"
        path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        return f"https://{host}{port}{path}{'?' + query if query else ''}"


def _without_port(host: str) -> str:
    """``example.com:80`` -> ``example.com``; ``[::1]:80`` -> ``[::1]``."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]


def _server_host(scope: Scope) -> str:
    server = scope.get("server")
    host = str(server[0]) if server else "localhost"
    return f"[{host}]" if ":" in host else host
