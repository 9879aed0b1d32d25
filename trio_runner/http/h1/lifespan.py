"""The ASGI lifespan protocol, run around the lean server's connections.

``Lifespan.run_app`` runs the app's ``lifespan`` scope in a task of the
server's nursery. ``startup`` sends ``lifespan.startup`` and waits for the
answer before the server accepts anything; ``shutdown`` sends
``lifespan.shutdown`` once the connections are gone and waits for that
answer too. An app that does not speak lifespan (it raises at once, as the
ASGI specification allows) is served without it; one that reports
``lifespan.startup.failed`` stops the server from starting.

``state`` is the lifespan state of the specification: the app may fill it
at start-up, and each request scope gets a shallow copy.
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from trio_runner.errors import LifespanFailed
from trio_runner.http.asgi import ASGIApp, Message

__all__ = ["Lifespan"]

logger = logging.getLogger(__name__)


class Lifespan:
    """One app's lifespan: start ``run_app`` as a task, then ``startup``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.supported = True
        self._to_app, self._from_server = trio.open_memory_channel[Message](2)
        self._to_server, self._from_app = trio.open_memory_channel[Message](2)

    async def run_app(self) -> None:
        """The app's lifespan scope; returns when the app does."""
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._from_server.receive, self._to_server.send)
        except Exception as error:
            self.supported = False
            logger.debug("the app does not run a lifespan: %r", error)
        finally:
            self._to_server.close()

    async def startup(self) -> None:
        """Send ``lifespan.startup``; return once the app is ready.

        Raises:
            LifespanFailed: the app answered ``lifespan.startup.failed``.
        """
        await self._to_app.send({"type": "lifespan.startup"})
        answer = await self._answer()
        if answer is None:
            self.supported = False
        elif answer["type"] == "lifespan.startup.failed":
            self.supported = False
            raise LifespanFailed(
                f"the app failed its start-up: {answer.get('message', '')}"
            )

    async def shutdown(self) -> None:
        """Send ``lifespan.shutdown``; return once the app has answered."""
        if self.supported:
            await self._to_app.send({"type": "lifespan.shutdown"})
            await self._answer()

    async def _answer(self) -> Message | None:
        """The app's next message; None when it stopped speaking lifespan."""
        try:
            return await self._from_app.receive()
        except trio.EndOfChannel:
            return None
