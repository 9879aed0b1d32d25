"""The ``headers`` middleware: fixed request and response headers, and CORS.

- ``[http.headers.request]``: each header is set on every request before
  it goes on, replacing one of the same name the client sent, so PHP can
  rely on the configured value.
- ``[http.headers.response]``: each header is set on every response that
  passes back through, replacing one of the same name from the app.
- ``[http.headers.cors]`` (see ``cors``): preflights are answered here with
  ``options_success_status`` and an empty body; other responses get the
  CORS headers the origin is entitled to, which replace any
  ``Access-Control-*`` header the app sent.
"""

from __future__ import annotations

import attrs

from trio_runner.config.model import HeadersConfig
from trio_runner.http.asgi import ASGIApp, Message, Receive, Scope, Send
from trio_runner.http.middleware.cors import (
    ACCESS_CONTROL_HEADERS,
    PREFLIGHT_VARY,
    CorsPolicy,
)
from trio_runner.http.middleware.field import (
    Headers,
    add_vary,
    encode_table,
    replace_headers,
    without,
)

__all__ = ["HeadersMiddleware"]


@attrs.frozen
class HeadersMiddleware:
    """ASGI middleware for ``[http.headers]``; other scopes pass untouched.

    Args:
        app: the app behind it.
        request: header lines set on every request.
        response: header lines set on every response.
        cors: the CORS policy, None for no CORS handling.
    """

    app: ASGIApp
    request: Headers = attrs.field(factory=list)
    response: Headers = attrs.field(factory=list)
    cors: CorsPolicy | None = None

    @classmethod
    def from_config(cls, app: ASGIApp, config: HeadersConfig) -> HeadersMiddleware:
        """Raises: ConfigError: a CORS setting is unusable (``CorsPolicy``)."""
        return cls(
            app,
            request=encode_table(config.request),
            response=encode_table(config.response),
            cors=None if config.cors is None else CorsPolicy.from_config(config.cors),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = list(scope.get("headers", ()))
        cors = self.cors
        if cors is not None and CorsPolicy.is_preflight(scope["method"], received):
            await self._answer_preflight(cors, received, send)
            return

        if self.request:
            scope = dict(scope, headers=replace_headers(received, self.request))
        cors_lines = None if cors is None else cors.actual(received)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: Headers = list(message.get("headers", ()))
                if self.response:
                    headers = replace_headers(headers, self.response)
                if cors_lines is not None:
                    headers = without(headers, ACCESS_CONTROL_HEADERS) + cors_lines
                    headers = add_vary(headers, b"Origin")
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _answer_preflight(
        self, cors: CorsPolicy, received: Headers, send: Send
    ) -> None:
        headers = without(self.response, ACCESS_CONTROL_HEADERS)
        headers = add_vary(headers + cors.preflight(received), *PREFLIGHT_VARY)
        headers.append((b"content-length", b"0"))
        await send(
            {
                "type": "http.response.start",
                "status": cors.preflight_status,
                "headers": headers,
            }
        )
        await send({"type": "http.response.body", "body": b""})
