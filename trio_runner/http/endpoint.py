"""Small ASGI apps for the services' own endpoints (``/metrics``, ``/health``).

An ``Endpoint`` turns a plain function of the request line into an ASGI app:
the function gets the method, the path and the query (each name with all
its values, in order) and returns a ``Reply``, which is sent whole with a
Content-Length (no body for HEAD). Lifespan scopes are acknowledged, so
hypercorn logs nothing about them; websockets are refused.

These endpoints never touch PHP and never block: they read statistics
that are already in memory. ``serve_endpoint`` serves one on its address.
"""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import Callable, Mapping, Sequence

import attrs
import trio

from trio_runner.errors import BindError
from trio_runner.http.asgi import ASGIApp, Receive, Scope, Send, acknowledge_lifespan
from trio_runner.http.serve import serve_http

__all__ = ["Endpoint", "Handler", "Reply", "allow_methods", "serve_endpoint"]

# How long a request in flight (a scrape, a probe) may take to finish once
# the service stops.
_GRACE = 1.0


@attrs.frozen
class Reply:
    """A whole response: status, body, its Content-Type and other headers."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[bytes, bytes], ...] = ()


Handler = Callable[[str, str, Mapping[str, Sequence[str]]], Reply]


@attrs.frozen
class Endpoint:
    """An ASGI app answering each HTTP request with ``handler(method, path,
    query)``."""

    handler: Handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await acknowledge_lifespan(receive, send)
        elif kind == "http":
            query = urllib.parse.parse_qs(
                bytes(scope.get("query_string", b"")).decode("latin-1"),
                keep_blank_values=True,
            )
            method = str(scope["method"])
            reply = self.handler(method, str(scope.get("path", "/")), query)
            await send(
                {
                    "type": "http.response.start",
                    "status": reply.status,
                    "headers": [
                        (b"content-type", reply.content_type.encode("latin-1")),
                        (b"content-length", str(len(reply.body)).encode()),
                        (b"cache-control", b"no-store"),
                        *reply.headers,
                    ],
                }
            )
            body = b"" if method == "HEAD" else reply.body
            await send({"type": "http.response.body", "body": body})
        elif kind == "websocket" and (await receive())["type"] == "websocket.connect":
            await send({"type": "websocket.close", "code": 1000})


def allow_methods(method: str, reply: Callable[[], Reply]) -> Reply:
    """``reply()`` for GET and HEAD; 405 for any other method."""
    if method in ("GET", "HEAD"):
        return reply()
    text = f"{method} is not allowed here: use GET.\n"
    return Reply(405, text.encode(), headers=((b"allow", b"GET, HEAD"),))


async def serve_endpoint(
    app: ASGIApp,
    address: str,
    section: str,
    ready: Callable[[str], None],
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve a service's ``app`` on ``address`` until cancelled.

    ``ready`` gets the bound address once it listens (to keep and log it),
    then ``task_status`` does.

    Raises:
        BindError: ``address`` cannot be listened on; the message names the
            ``[section]`` and its ``address`` key.
    """
    # Not raised inside the nursery: it would arrive in an exception group.
    failure: BindError | None = None
    async with trio.open_nursery() as nursery:
        try:
            bound = await nursery.start(
                functools.partial(serve_http, grace_period=_GRACE), app, address
            )
        except BindError as exc:
            hint = f"set {section}.address to a free host:port"
            failure = BindError(f"{section}: {exc} ({hint})")
            failure.__cause__ = exc
        else:
            ready(bound)
            task_status.started(bound)
    if failure is not None:
        raise failure
