"""HTTP middleware, each a plain ASGI app wrapping another, on trio only.

``build_app`` composes them from ``[http]`` (``stack`` shows the order):
``TrustedProxies`` (always), then ``http.middleware`` in the listed order:
``HeadersMiddleware`` (``headers``: fixed headers and CORS),
``GzipMiddleware`` (``gzip``) and ``StaticFiles`` (``static``). Each can
also wrap any ASGI app on its own.
"""

from __future__ import annotations

from trio_runner.http.middleware.cors import CorsPolicy
from trio_runner.http.middleware.docroot import DocumentRoot
from trio_runner.http.middleware.gzip import GzipMiddleware
from trio_runner.http.middleware.headers import HeadersMiddleware
from trio_runner.http.middleware.proxy import ProxyPolicy, TrustedProxies
from trio_runner.http.middleware.stack import AccessLog, DateHeader, build_app
from trio_runner.http.middleware.static import StaticFiles

__all__ = [
    "AccessLog",
    "CorsPolicy",
    "DateHeader",
    "DocumentRoot",
    "GzipMiddleware",
    "HeadersMiddleware",
    "ProxyPolicy",
    "StaticFiles",
    "TrustedProxies",
    "build_app",
]
