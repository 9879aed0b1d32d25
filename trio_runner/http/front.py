"""Which server serves each address of the HTTP front, as ``[http]`` says.

==========================  ==================  ==========================
address                     http.server="auto"  http.server="hypercorn"
==========================  ==================  ==========================
``http.address``            ``serve_h1``        ``serve_http``
``http.address``, h2c on    ``serve_http``      ``serve_http``
``http.ssl.address``        ``serve_http``      ``serve_http``
==========================  ==================  ==========================

h2c needs hypercorn on the plain address: the lean server speaks HTTP/1.1
only. Both functions return the server with its settings bound, to be
started as ``await nursery.start(server, app, address)``.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from trio_runner.config.model import HttpConfig
from trio_runner.http.h1 import H1Limits, serve_h1
from trio_runner.http.serve import serve_http

__all__ = ["plain_server", "tls_server", "uses_lean_server"]

HttpServer = Callable[..., Awaitable[None]]


def uses_lean_server(http: HttpConfig) -> bool:
    """Whether ``http.address`` is served by the lean HTTP/1.1 server."""
    return http.server == "auto" and not http.http2.h2c


def plain_server(
    http: HttpConfig, *, grace_period: float, date_header: bool
) -> HttpServer:
    """The server for ``http.address``."""
    if uses_lean_server(http):
        limits = H1Limits(
            max_header_size=http.max_header_size,
            read_header_timeout=http.read_header_timeout,
            idle_timeout=http.idle_timeout,
        )
        return partial(
            serve_h1, grace_period=grace_period, date_header=date_header, limits=limits
        )
    return partial(
        serve_http,
        grace_period=grace_period,
        date_header=date_header,
        h2c=http.http2.h2c,
        **_hypercorn_options(http),
    )


def tls_server(
    http: HttpConfig, tls: ssl.SSLContext, *, grace_period: float
) -> HttpServer:
    """The server for ``http.ssl.address`` (HTTPS, HTTP/2 through ALPN)."""
    return partial(
        serve_http,
        grace_period=grace_period,
        date_header=False,  # build_app adds it, PHP's own first
        tls=tls,
        **_hypercorn_options(http),
    )


def _hypercorn_options(http: HttpConfig) -> dict[str, Any]:
    # max_header_size holds on both protocols: HTTP/1.1 counts the head as
    # sent, HTTP/2 as SETTINGS_MAX_HEADER_LIST_SIZE does (connection.py).
    return {
        "h2_max_concurrent_streams": http.http2.max_concurrent_streams,
        "keep_alive_timeout": http.idle_timeout,
        "h11_max_incomplete_size": http.max_header_size,
        "h2_max_header_list_size": http.max_header_size,
    }
