"""Websocket upgrades on the lean server: offered to the app, then refused.

The app gets a ``websocket`` scope and ``websocket.connect``; whatever it
answers, the upgrade is refused: ``websocket.close`` (the bridge's answer)
becomes 403, a denial response the app sends (the
``websocket.http.response`` extension) goes out as it is, and an accepted
websocket gets 501, since nothing here speaks the websocket protocol yet.
The connection closes afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from trio_runner.http.asgi import ASGIApp, Message
from trio_runner.http.h1.framing import ResponseFramer, simple_response

__all__ = ["Exchange", "WebsocketRefusal"]

logger = logging.getLogger(__name__)


class Exchange(Protocol):
    """What the refusal needs of the connection's request."""

    framer: ResponseFramer

    def scope(self) -> dict[str, Any]: ...


class WebsocketRefusal:
    """A websocket upgrade offered to the app and refused, whatever it says."""

    def __init__(
        self,
        app: ASGIApp,
        exchange: Exchange,
        write: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self._app = app
        self._exchange = exchange
        self._write = write
        self._connected = False
        self._answered = False

    async def run(self) -> None:
        exchange = self._exchange
        scope = exchange.scope()
        scope.update(
            type="websocket",
            scheme="ws",
            subprotocols=_subprotocols(scope["headers"]),
            extensions={"websocket.http.response": {}},
        )
        try:
            await self._app(scope, self.receive, self.send)
        except Exception:
            logger.error(
                "the ASGI app failed on a websocket upgrade to %s",
                scope["path"],
                exc_info=True,
                extra={"reason": "app_failed"},
            )
            await self._deny(500, "Internal Server Error\n")
            return
        await self._deny(403, "The websocket upgrade was refused.\n")

    async def receive(self) -> Message:
        if not self._connected:
            self._connected = True
            return {"type": "websocket.connect"}
        return {"type": "websocket.disconnect", "code": 1006}

    async def send(self, message: Message) -> None:
        if self._answered and not message["type"].startswith("websocket.http."):
            return
        kind = message["type"]
        if kind == "websocket.close":
            await self._deny(403, "The websocket upgrade was refused.\n")
        elif kind == "websocket.accept":
            logger.warning(
                "the app accepted a websocket, but websockets are not served "
                "yet; answering 501",
                extra={"reason": "websocket"},
            )
            await self._deny(501, "Websockets are not served here yet.\n")
        elif kind == "websocket.http.response.start":
            self._answered = True
            self._exchange.framer.start(
                int(message["status"]), message.get("headers", ())
            )
        elif kind == "websocket.http.response.body":
            framer = self._exchange.framer
            more = bool(message.get("more_body", False))
            data = framer.body(bytes(message.get("body", b"")), more=more)
            if data:
                await self._write(data)

    async def _deny(self, status: int, text: str) -> None:
        if self._answered:
            return
        self._answered = True
        if not self._exchange.framer.started:
            await self._write(simple_response(status, text))


def _subprotocols(headers: list[tuple[bytes, bytes]]) -> list[str]:
    return [
        token.strip()
        for name, value in headers
        if name == b"sec-websocket-protocol"
        for token in value.decode("latin-1").split(",")
        if token.strip()
    ]
