"""The access log: one record per HTTP request, on its own logger.

``trio_runner.access`` is separate from the server's loggers so operators
can route, silence or ship it on its own. Each record's message reads
``GET /path?q 200 512B 3.1ms 127.0.0.1`` (499 when the client left before
an answer started, as nginx logs it); the same facts ride along as
``extra`` fields (``method``, ``uri``, ``status``, ``bytes``, ``elapsed``
in milliseconds, ``remote_address``), which JSON logs show as keys.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from trio_runner.http.asgi import Message, Receive, Scope, Send

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
            sent += len(message.get("body", b""))
        await send(message)

    try:
        await app(scope, receive, counting_send)
    except BaseException:
        status = status or 500
        raise
    else:
        # Nothing was answered: the client left first. 499 is what nginx
        # logs for that, and what log readers expect.
        status = status or 499
    finally:
        elapsed = (trio.current_time() - start) * 1000
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
            elapsed,
            remote,
            extra={
                "method": scope["method"],
                "uri": uri,
                "status": status,
                "bytes": sent,
                "elapsed": round(elapsed, 3),
                "remote_address": remote,
            },
        )
