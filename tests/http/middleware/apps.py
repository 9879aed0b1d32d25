"""Small ASGI apps for testing middleware, and a driver that runs one request.

``Answer`` stands in for PHP: it records the scope each request reached it
with and replies with canned status, headers and body chunks (several
chunks make a streamed response).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import trio

from tests.http.fakes import Client, Reply, http_scope
from trio_runner.http.asgi import ASGIApp, Receive, Scope, Send

__all__ = ["Answer", "call", "http_scope"]


@attrs.define(eq=False)
class Answer:
    """An ASGI app that answers every request the same way."""

    status: int = 200
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"text/plain"),)
    chunks: Sequence[bytes] = (b"from the app",)
    scopes: list[Scope] = attrs.field(factory=list)

    @property
    def called(self) -> bool:
        return bool(self.scopes)

    @property
    def scope(self) -> Scope:
        [scope] = self.scopes
        return scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scopes.append(scope)
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": list(self.headers),
            }
        )
        if not self.chunks:
            await send({"type": "http.response.body", "body": b""})
        for index, chunk in enumerate(self.chunks):
            more = index < len(self.chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})


async def call(
    app: ASGIApp, scope: Scope | None = None, client: Client | None = None
) -> Reply:
    """Run one request through ``app`` and return what it sent."""
    reply = Reply()
    client = client or Client()
    with trio.fail_after(5):
        await app(scope or http_scope(), client.receive, reply.send)
    return reply
