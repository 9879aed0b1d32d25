"""CORS decisions for ``[http.headers.cors]``: which origin may do what.

A policy only decides; ``headers.HeadersMiddleware`` sends. Two kinds of
request matter (the Fetch standard's terms):

- a *preflight*, ``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``: answered here, PHP never sees it;
- an *actual* request with ``Origin``: PHP answers, and the response gets
  ``Access-Control-Allow-Origin`` and its companions.

An origin that is not allowed gets no ``Access-Control-*`` header at all,
and a preflight asking for a method or header that is not allowed gets
none either: the browser then refuses the request, which is the point.
Every answer varies with ``Origin`` (and a preflight's with the two
request headers too), so ``Vary`` names them whether or not CORS headers
were sent, and a cache never hands one origin's answer to another.

Settings follow RoadRunner's (which uses the rs/cors package):
``allowed_origin`` is ``*`` or a comma-separated list whose entries may
hold one ``*`` wildcard (``https://*.example.com``); when
``allowed_origin_regex`` is set the list is ignored and the expression is
*searched* for in the origin, so anchor it (``^https://app\\.example\\.com$``).
With ``allow_credentials`` the origin is echoed instead of ``*``, which
browsers refuse next to credentials.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import attrs

from trio_runner.config.model import CorsConfig
from trio_runner.errors import ConfigError
from trio_runner.http.middleware.field import (
    Headers,
    header_values,
    single_header,
    split_list,
)

__all__ = ["ACCESS_CONTROL_HEADERS", "CorsPolicy"]

# Every response header a CORS policy owns; the app's own are replaced.
ACCESS_CONTROL_HEADERS = (
    b"access-control-allow-origin",
    b"access-control-allow-credentials",
    b"access-control-allow-methods",
    b"access-control-allow-headers",
    b"access-control-expose-headers",
    b"access-control-max-age",
)

PREFLIGHT_VARY = (
    b"Origin",
    b"Access-Control-Request-Method",
    b"Access-Control-Request-Headers",
)

# Browsers send these methods cross-origin without asking first, so a
# preflight for one is always granted.
_SIMPLE_METHODS = ("GET", "HEAD", "POST")
# The request headers allowed when allowed_headers is empty (rs/cors's).
_DEFAULT_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-language",
        "content-type",
        "x-requested-with",
    }
)


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@attrs.frozen
class CorsPolicy:
    """Which origins, methods and headers a cross-origin request may use.

    Build it with ``from_config``; the fields hold the parsed settings.
    """

    any_origin: bool = False
    origins: frozenset[str] = frozenset()
    wildcards: tuple[tuple[str, str], ...] = ()
    origin_regex: re.Pattern[str] | None = None
    methods: tuple[str, ...] = _SIMPLE_METHODS
    any_method: bool = False
    headers: frozenset[str] = _DEFAULT_HEADERS
    any_header: bool = False
    allow_credentials: bool = False
    exposed_headers: tuple[str, ...] = ()
    max_age: int = 0
    preflight_status: int = 200

    @classmethod
    def from_config(cls, config: CorsConfig) -> CorsPolicy:
        """Parse ``[http.headers.cors]``.

        Raises:
            ConfigError: ``allowed_origin_regex`` is not a regular expression,
                or an ``allowed_origin`` entry has more than one ``*``.
        """
        regex = None
        if config.allowed_origin_regex:
            try:
                regex = re.compile(config.allowed_origin_regex)
            except re.error as exc:
                raise ConfigError(
                    "http.headers.cors.allowed_origin_regex must be a regular "
                    f"expression, got {config.allowed_origin_regex!r} ({exc})"
                ) from None
        origins: set[str] = set()
        wildcards: list[tuple[str, str]] = []
        for origin in _items(config.allowed_origin.lower()):
            if origin == "*":
                continue
            stars = origin.count("*")
            if stars > 1:
                raise ConfigError(
                    "http.headers.cors.allowed_origin entries may hold one * "
                    f"wildcard (https://*.example.com), got {origin!r}"
                )
            if stars:
                prefix, _, suffix = origin.partition("*")
                wildcards.append((prefix, suffix))
            else:
                origins.add(origin)
        methods = [method.upper() for method in _items(config.allowed_methods)]
        headers = [name.lower() for name in _items(config.allowed_headers)]
        return cls(
            any_origin="*" in _items(config.allowed_origin),
            origins=frozenset(origins),
            wildcards=tuple(wildcards),
            origin_regex=regex,
            methods=tuple(methods) or _SIMPLE_METHODS,
            any_method="*" in methods,
            headers=frozenset(headers) if headers else _DEFAULT_HEADERS,
            any_header="*" in headers,
            allow_credentials=config.allow_credentials,
            exposed_headers=tuple(_items(config.exposed_headers)),
            max_age=config.max_age,
            preflight_status=config.options_success_status,
        )

    @property
    def allows_no_origin(self) -> bool:
        """True when no origin can ever match: a configuration mistake."""
        return not (
            self.any_origin or self.origins or self.wildcards or self.origin_regex
        )

    def allows_origin(self, origin: str) -> bool:
        if self.origin_regex is not None:
            return self.origin_regex.search(origin) is not None
        if self.any_origin:
            return True
        origin = origin.lower()
        if origin in self.origins:
            return True
        return any(
            len(origin) >= len(prefix) + len(suffix)
            and origin.startswith(prefix)
            and origin.endswith(suffix)
            for prefix, suffix in self.wildcards
        )

    @staticmethod
    def is_preflight(method: str, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        """OPTIONS with ``Origin`` and ``Access-Control-Request-Method``."""
        return (
            method == "OPTIONS"
            and bool(header_values(headers, b"origin"))
            and bool(header_values(headers, b"access-control-request-method"))
        )

    def preflight(self, headers: Sequence[tuple[bytes, bytes]]) -> Headers:
        """The CORS lines answering a preflight; empty when it is refused."""
        origin = self._allowed_origin(headers)
        method = single_header(headers, b"access-control-request-method")
        if origin is None or method is None:
            return []
        wanted = method.strip().decode("latin-1").upper()
        if not (self.any_method or wanted in self.methods or wanted in _SIMPLE_METHODS):
            return []
        asked = split_list(header_values(headers, b"access-control-request-headers"))
        names = [name.decode("latin-1").lower() for name in asked]
        if not self.any_header and not all(name in self.headers for name in names):
            return []

        lines = self._origin_lines(origin)
        methods = wanted if self.any_method else ", ".join(self.methods)
        lines.append((b"access-control-allow-methods", methods.encode("latin-1")))
        if names:
            lines.append((b"access-control-allow-headers", b", ".join(asked)))
        if self.max_age > 0:
            lines.append((b"access-control-max-age", b"%d" % self.max_age))
        return lines

    def actual(self, headers: Sequence[tuple[bytes, bytes]]) -> Headers:
        """The CORS lines for the response to a non-preflight request."""
        origin = self._allowed_origin(headers)
        if origin is None:
            return []
        lines = self._origin_lines(origin)
        if self.exposed_headers:
            exposed = ", ".join(self.exposed_headers).encode("latin-1")
            lines.append((b"access-control-expose-headers", exposed))
        return lines

    def _allowed_origin(self, headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
        origin = single_header(headers, b"origin")
        if origin is None:
            return None
        origin = origin.strip()
        if not origin or not self.allows_origin(origin.decode("latin-1")):
            return None
        return origin

    def _origin_lines(self, origin: bytes) -> Headers:
        echo = self.allow_credentials or not self.any_origin
        if self.origin_regex is not None:
            echo = True  # the list, "*" included, is ignored then
        lines = [(b"access-control-allow-origin", origin if echo else b"*")]
        if self.allow_credentials:
            lines.append((b"access-control-allow-credentials", b"true"))
        return lines
