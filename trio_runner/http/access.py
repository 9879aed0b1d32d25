"""The access log: one record per HTTP request, on its own logger.

``trio_runner.access`` is separate from the server's loggers so operators
can route, silence or ship it on its own. Each record's message reads
``GET /path?q 200 512B 3.1ms 127.0.0.1`` (499 when the client left before
an answer started, as nginx logs it; the lean server's own answer, such
as 400 for a malformed chunk, when it answered for the app; the bytes
are those of body pieces written before the client left); the same facts ride along as
``extra`` fields named as RoadRunner's access log names them (``method``,
``status``, ``URI``, ``elapsed`` as a Go duration string such as
``"3.1ms"``, ``remote_address``, and ``bytes``), which JSON logs show as
keys under ``msg`` ``"http log"``: what Laravel Octane parses.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from trio_runner.http.asgi import (
    Message,
    Receive,
    Scope,
    Send,
    client_left,
    server_refusal,
)
from trio_runner.log import go_duration

__all__ = ["ACCESS_LOGGER", "log_access"]

ACCESS_LOGGER = "trio_runner.access"

logger = logging.getLogger(ACCESS_LOGGER)


async def log_access(
    app: Callable[[Scope, Receive, Send], Awaitable[None]],
    scope: Scope,
    receive: Receive,
    send: Send,
) -> None:
    """Run ``app`` for one request and log what it answered."""
    start = trio.current_time()
    status = 0
    sent = 0

    async def counting_send(message: Message) -> None:
        nonlocal status, sent
        if message["type"] == "http.response.start":
            status = int(message["status"])
        elif message["type"] == "http.response.body":
            await send(message)
            if not left():  # else the server dropped it: nobody to send to
                sent += len(message.get("body", b""))
            return
        await send(message)

    left = client_left(scope)  # cancelled for a leaving client: 499
    refused = server_refusal(scope)
    failed = False
    try:
        await app(scope, receive, counting_send)
    except BaseException:
        failed = True
        raise
    finally:
        if not status:
            # Nothing was answered: the server answered for the app, or
            # else the app failed, or the client left first (499 is what
            # nginx logs for that, and what log readers expect).
            status = refused() or (500 if failed and not left() else 499)
        elapsed = trio.current_time() - start
        path = scope.get("raw_path") or str(scope.get("path", "")).encode()
        query = scope.get("query_string", b"")
        uri = bytes(path).decode("latin-1")
        if query:
            uri += "?" + bytes(query).decode("latin-1")
        client = scope.get("client")
        remote = client[0] if client else ""
        logger.info(
            "%s %s %d %dB %.1fms %s",
            scope["method"],
            uri,
            status,
            sent,
            elapsed * 1000,
            remote,
            extra={
                "method": scope["method"],
                "status": status,
                "URI": uri,
                "elapsed": go_duration(elapsed),
                "remote_address": remote,
                "bytes": sent,
            },
        )
