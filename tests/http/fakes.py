"""A fake pool for the HTTP bridge, and an ASGI driver that records replies.

``FakeExchanger`` runs a *script* per request: an async generator that
receives the request payload and yields response chunks, or raises one of
the pool's errors, before or between chunks. ``refuse`` makes ``stream``
itself raise, as the pool does when no worker can be had.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

from trio_runner.errors import TrioRunnerError
from trio_runner.http.asgi import Message, Scope
from trio_runner.http.proto import http_pb2
from trio_runner.protocol import Flag, Payload

Script = Callable[[Payload], AsyncGenerator["Payload | Last", None]]


def proto_head(status: int, headers: dict[str, list[bytes]] | None = None) -> bytes:
    message = http_pb2.Response(status=status)
    for name, values in (headers or {}).items():
        message.headers[name].value.extend(values)
    return message.SerializeToString()


def chunk(status: int = 200, body: bytes = b"", **headers: list[bytes]) -> Payload:
    """A proto response chunk; header names use ``_`` for ``-``."""
    named = {name.replace("_", "-"): values for name, values in headers.items()}
    return Payload(proto_head(status, named), body, int(Flag.CODEC_PROTO))


def replying(*chunks: Payload) -> Script:
    """Answer with ``chunks``; the last one ends the response, as a plain
    PHP response (one chunk) or the final frame of a stream does."""

    async def script(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
        for item in chunks[:-1]:
            yield item
        if chunks:
            yield Last(chunks[-1])

    return script


def failing(error: TrioRunnerError, *before: Payload) -> Script:
    async def script(payload: Payload) -> AsyncGenerator[Payload | Last, None]:
        for item in before:
            yield item
        raise error

    return script


@attrs.define(eq=False)
class FakeExchanger:
    """Implements the bridge's ``Exchanger`` with canned behaviour."""

    script: Script = attrs.field(factory=lambda: replying(chunk(200, b"ok")))
    refuse: TrioRunnerError | None = None
    requests: list[Payload] = attrs.field(factory=list)
    idempotent: list[bool] = attrs.field(factory=list)
    left_early: bool = False
    cancelled: bool = False

    async def exec(self, payload: Payload) -> Payload:
        async with self.stream(payload) as chunks:
            items = [item async for item in chunks]
        return attrs.evolve(items[0], body=b"".join(c.body for c in items))

    @asynccontextmanager
    async def stream(
        self, payload: Payload, *, idempotent: bool = False
    ) -> AsyncIterator[_Chunks]:
        self.requests.append(payload)
        self.idempotent.append(idempotent)
        if self.refuse is not None:
            raise self.refuse
        chunks = self.script(payload)
        done = False

        async def tracked() -> AsyncGenerator[Payload | Last, None]:
            nonlocal done
            async for item in chunks:
                yield item
            done = True

        iterator = _Chunks(tracked())
        try:
            yield iterator
        except trio.Cancelled:
            self.cancelled = True
            raise
        finally:
            if not done and not iterator.finished:
                self.left_early = True
            await iterator.inner.aclose()
            await chunks.aclose()


@attrs.frozen
class Last:
    """Yielded by a script for the chunk that ends the response."""

    payload: Payload


class _Chunks:
    """The script's chunks, with ``finished`` set by a ``Last`` chunk."""

    def __init__(self, inner: AsyncGenerator[Payload | Last, None]) -> None:
        self.inner = inner
        self.finished = False

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> Payload:
        item = await self.inner.__anext__()
        if isinstance(item, Last):
            self.finished = True
            return item.payload
        return item


def http_scope(
    method: str = "GET",
    path: str = "/",
    *,
    query: bytes = b"",
    headers: Iterable[tuple[bytes, bytes]] = ((b"host", b"localhost"),),
    http_version: str = "1.1",
    scheme: str = "http",
    client: tuple[str, int] | None = ("127.0.0.1", 50000),
    server: tuple[str, int | None] | None = ("127.0.0.1", 80),
    raw_path: bytes | None = None,
) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": http_version,
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode() if raw_path is None else raw_path,
        "query_string": query,
        "root_path": "",
        "headers": [(bytes(n), bytes(v)) for n, v in headers],
        "client": client,
        "server": server,
    }


@attrs.define(eq=False)
class Reply:
    """What an ASGI app sent for one request."""

    messages: list[Message] = attrs.field(factory=list)
    on_send: Callable[[Message], None] | None = None

    async def send(self, message: Message) -> None:
        self.messages.append(dict(message))
        if self.on_send is not None:
            self.on_send(message)

    @property
    def status(self) -> int:
        starts = [m for m in self.messages if m["type"] == "http.response.start"]
        assert len(starts) == 1, self.messages
        return int(starts[0]["status"])

    @property
    def all_headers(self) -> list[tuple[bytes, bytes]]:
        start = self.messages[0]
        assert start["type"] == "http.response.start"
        return list(start["headers"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The header lines but ``date`` (the bridge adds one to every reply)."""
        return [(n, v) for n, v in self.all_headers if n != b"date"]

    def header(self, name: bytes) -> list[bytes]:
        return [v for n, v in self.all_headers if n == name]

    @property
    def bodies(self) -> list[bytes]:
        return [
            m.get("body", b"")
            for m in self.messages
            if m["type"] == "http.response.body"
        ]

    @property
    def body(self) -> bytes:
        return b"".join(self.bodies)

    @property
    def complete(self) -> bool:
        last = self.messages[-1] if self.messages else {}
        return last.get("type") == "http.response.body" and not last.get(
            "more_body", False
        )


@attrs.define(eq=False)
class Client:
    """Feeds request messages to an app; ``disconnect()`` hangs up."""

    body: list[bytes] = attrs.field(factory=lambda: [b""])
    finished: bool = True  # False: the last part says more_body=True
    received: int = 0
    _gone: trio.Event = attrs.field(factory=trio.Event)

    def disconnect(self) -> None:
        self._gone.set()

    async def receive(self) -> dict[str, Any]:
        if self.received < len(self.body):
            part = self.body[self.received]
            self.received += 1
            more = self.received < len(self.body) or not self.finished
            return {"type": "http.request", "body": part, "more_body": more}
        await self._gone.wait()
        return {"type": "http.disconnect"}
