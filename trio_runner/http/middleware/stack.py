"""``build_app``: the bridge wrapped in the middleware ``[http]`` asks for.

The request passes the layers top to bottom and the response comes back
bottom to top::

    trusted proxies      always, unless http.trusted_subnets = []
    Date                 when date_header: added where missing
    access log           when http.access_logs
    middleware[0]        http.middleware, in the order listed: the first
    middleware[1]        name sees the request first and the response last
    ...
    the bridge (PHP)

So ``middleware = ["headers", "gzip", "static"]`` serves static files
gzipped and with the configured headers, while with ``["static", "gzip"]``
static files are sent as they are and only PHP's responses are gzipped.
RoadRunner v6 reads the list this way too; earlier RoadRunner releases
read it the other way round (the last name saw the request first), so a
list copied from an older ``.rr.yaml`` may need reversing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs

from trio_runner.config.model import HttpConfig
from trio_runner.http.access import log_access
from trio_runner.http.asgi import ASGIApp, Message, Receive, Scope, Send
from trio_runner.http.middleware.gzip import GzipMiddleware
from trio_runner.http.middleware.headers import HeadersMiddleware
from trio_runner.http.middleware.proxy import ProxyPolicy, TrustedProxies
from trio_runner.http.middleware.static import StaticFiles
from trio_runner.http.response import http_date

__all__ = ["AccessLog", "DateHeader", "build_app"]

_Wrap = Callable[[ASGIApp, HttpConfig, Path], ASGIApp]

_MIDDLEWARE: dict[str, _Wrap] = {
    "headers": lambda app, http, _: HeadersMiddleware.from_config(app, http.headers),
    "gzip": lambda app, _http, _dir: GzipMiddleware(app),
    "static": lambda app, http, working_dir: StaticFiles.from_config(
        app, http.static, working_dir=working_dir
    ),
}


def build_app(
    bridge: ASGIApp,
    http: HttpConfig,
    *,
    working_dir: Path,
    date_header: bool = False,
) -> ASGIApp:
    """Wrap ``bridge`` in the middleware of ``http``, as the module shows.

    Args:
        bridge: the innermost app, usually an ``HttpBridge``.
        http: the ``[http]`` section: ``middleware``, ``headers``,
            ``static``, ``trusted_subnets`` and ``access_logs``.
        working_dir: what ``http.static.dir`` is relative to.
        date_header: add a ``Date`` header where the response has none, for
            servers that add none themselves.

    Returns:
        The ASGI app to serve. With ``http.access_logs`` it logs every
        request, those the middleware answers itself included, so build the
        bridge with ``access_logs=False`` or PHP's requests are logged twice.

    Raises:
        ConfigError: a middleware setting is unusable (a missing static
            directory, a CORS regex that does not compile, ...).
    """
    app = bridge
    for name in reversed(http.middleware):
        app = _MIDDLEWARE[name](app, http, working_dir)
    if http.access_logs:
        app = AccessLog(app)
    if date_header:
        app = DateHeader(app)
    if http.trusted_subnets:
        app = TrustedProxies(app, ProxyPolicy(http.trusted_subnets))
    return app


@attrs.frozen
class DateHeader:
    """ASGI middleware adding ``Date`` to responses that have none."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_date(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                if not any(bytes(name).lower() == b"date" for name, _ in headers):
                    message = dict(message, headers=[*headers, (b"date", http_date())])
            await send(message)

        await self.app(scope, receive, send_with_date)


@attrs.frozen
class AccessLog:
    """ASGI middleware writing the access log (``trio_runner.http.access``)."""

    app: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await log_access(self.app, scope, receive, send)
        else:
            await self.app(scope, receive, send)
