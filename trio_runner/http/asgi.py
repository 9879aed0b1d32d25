"""The ASGI 3 interface, typed loosely enough for any ASGI server.

The bridge must run under hypercorn, under the project's own HTTP/1.1
server and inside a Python program's ASGI stack, so it depends on no
server's own type definitions: scopes and messages are plain mappings, as
the ASGI specification defines them.

Two extensions of our own, which the lean HTTP/1.1 server offers:

- a server that puts ``DISCONNECT_EXTENSION`` in a scope's ``extensions``
  offers ``{"subscribe": subscribe}``, and ``subscribe(callback)`` has
  ``callback()`` called once, as soon as the client is gone (at once if it
  already is). An app can then react to a client leaving without a task
  blocked in ``receive()``. With ``subscribe(callback, cancel=True)`` the
  server also cancels the app's call for that request then (the app sees
  ``trio.Cancelled`` where it waits, and the connection closes), so the
  app needs no cancel scope of its own around its waits. A request body
  that turns out malformed is not the client leaving in that sense: the
  callback runs, nothing is cancelled, and the server answers 400. The
  same dict's ``"refusal"`` is a callable that returns the status the
  server answers in the app's place (400, 408, 413), or None;
- ``NO_BODY_EXTENSION`` (value ``{}``) is there when the request has no
  body at all (HTTP/1 without Content-Length and Transfer-Encoding, or a
  Content-Length of 0): the app need not call ``receive()`` for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any, Final, Protocol

__all__ = [
    "DISCONNECT_EXTENSION",
    "NO_BODY_EXTENSION",
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "acknowledge_lifespan",
    "client_left",
    "server_refusal",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class ASGIApp(Protocol):
    """Anything callable as an ASGI 3 application."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one connection scope."""


DISCONNECT_EXTENSION: Final = "trio_runner.disconnect"
NO_BODY_EXTENSION: Final = "trio_runner.no_body"


async def acknowledge_lifespan(receive: Receive, send: Send) -> None:
    """Answer a lifespan scope's startup and shutdown, doing nothing else:
    for apps with nothing to start (the server starts the pools)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def client_left(scope: Scope) -> Callable[[], bool]:
    """A callable telling whether the request's client has left so far.

    For middleware that must tell a call the server cancelled because its
    client left (``subscribe(..., cancel=True)``: a 499) from one that
    failed (a 500). Always False under a server without
    ``DISCONNECT_EXTENSION``.
    """
    extension = (scope.get("extensions") or {}).get(DISCONNECT_EXTENSION)
    if extension is None:
        return _never
    left: list[bool] = []
    extension["subscribe"](partial(left.append, True))
    return partial(bool, left)


def server_refusal(scope: Scope) -> Callable[[], int | None]:
    """A callable giving the status the server answers in the app's place
    (a malformed body: 400), or None. Always None under a server without
    ``DISCONNECT_EXTENSION``'s ``"refusal"``."""
    extension = (scope.get("extensions") or {}).get(DISCONNECT_EXTENSION) or {}
    refusal: Callable[[], int | None] = extension.get("refusal", _none)
    return refusal


def _never() -> bool:
    return False


def _none() -> None:
    return None
