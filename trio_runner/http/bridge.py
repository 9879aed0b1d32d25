"""The ASGI app that hands each HTTP request to a PHP worker.

One request, one exchange::

    receive() ──> body (bounded by max_request_size: 413 past it)
                    │
    scope ──────> request context ──> Payload ──> exchanger.stream()
                                                        │ chunks
    send() <── http.response.start / body <── response context + body

The bridge always streams: a plain PHP response is one chunk, a streamed
one (PROTOCOL.md 4.7) several, each carrying the whole context again. The
status and headers come from the first chunk whose status is not 1xx, and
every chunk body is sent as soon as it arrives. While PHP works, a task
watches ``receive()``: when the client goes away the exchange is cancelled,
and leaving ``stream()`` early is how the pool learns to stop the worker.

A failure before the response has started becomes a short text response
(``response.error_response``). After it has started the status is already
on the wire, so the bridge logs and returns without ending the body: the
server then closes the connection and the client sees a truncated
response, never one that looks complete.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

import attrs
import trio

from trio_runner.errors import (
    ConfigError,
    NoFreeWorkers,
    PoolClosed,
    QueueFull,
    RemoteProtocolError,
    SoftError,
    TrioRunnerError,
    WorkerCrashed,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.http.access import log_access
from trio_runner.http.asgi import Receive, Scope, Send
from trio_runner.http.request import ContextCodec, RequestContext
from trio_runner.http.response import (
    PlainResponse,
    ResponseHead,
    decode_response_context,
    error_response,
    http_date,
    plain_response,
    response_headers,
)
from trio_runner.protocol.events import Payload

__all__ = ["Exchanger", "HttpBridge", "HttpOptions"]

logger = logging.getLogger(__name__)

_MB = 1024 * 1024
_BODYLESS_METHODS = frozenset({"HEAD", "OPTIONS"})
_BODYLESS_STATUSES = frozenset({204, 304})


class ResponseChunks(Protocol):
    """The chunks of one response, as ``Exchanger.stream`` yields them.

    ``finished`` turns true as the last chunk is returned, so a response
    that fits in one chunk can be sent whole, with a Content-Length.
    """

    @property
    def finished(self) -> bool: ...

    def __aiter__(self) -> ResponseChunks: ...

    async def __anext__(self) -> Payload: ...


class Exchanger(Protocol):
    """The part of a worker pool the bridge needs (``trio_runner.pool``).

    Both methods raise the pool's errors (``SoftError``, ``WorkerCrashed``,
    ``WorkerTimeout``, ``NoFreeWorkers``, ``PoolClosed``,
    ``WorkerStartError``) bare, not inside an exception group.
    """

    async def exec(self, payload: Payload) -> Payload:
        """Send one request and return the whole response."""
        ...

    def stream(self, payload: Payload) -> AbstractAsyncContextManager[ResponseChunks]:
        """Send one request and yield its response chunk by chunk.

        Leaving the ``async with`` before the last chunk makes the pool
        cancel the stream on the worker.
        """
        ...


class _PoolOptions(Protocol):
    @property
    def debug(self) -> bool: ...


class HttpOptions(Protocol):
    """The ``[http]`` settings the bridge reads (``config.model.HttpConfig``)."""

    @property
    def codec(self) -> str: ...
    @property
    def max_request_size(self) -> int: ...
    @property
    def internal_error_code(self) -> int: ...
    @property
    def access_logs(self) -> bool: ...
    @property
    def pool(self) -> _PoolOptions: ...


def _to_codec(value: ContextCodec | str) -> ContextCodec:
    try:
        return ContextCodec(value)
    except ValueError:
        raise ConfigError(
            f'http codec must be "proto" (RoadRunner 2024.1+ PHP workers) or '
            f'"json" (roadrunner-http before 3.5), got {value!r}'
        ) from None


def _check_max_request_size(_bridge: object, _attribute: object, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ConfigError(
            "http max_request_size must be a whole number of MB (0 for no "
            f"limit), got {value!r}"
        )


def _check_error_code(_bridge: object, _attribute: object, value: object) -> None:
    if not isinstance(value, int) or not 400 <= value <= 599:
        raise ConfigError(
            "http internal_error_code must be an error status from 400 to 599, "
            f"got {value!r}"
        )


class _ClientGone(Exception):
    """The client disconnected before the request body was read."""


class _BodyTooLarge(Exception):
    """The request body is larger than max_request_size."""


@attrs.define(eq=False)
class HttpBridge:
    """An ASGI 3 app that serves HTTP requests with PHP workers.

    Handles ``http`` and ``lifespan`` scopes; ``websocket`` scopes are
    refused. It runs under trio only: it opens a nursery per request.

    Args:
        exchanger: the pool that runs requests on PHP workers.
        codec: ``"proto"`` (default) or ``"json"``, the request context
            encoding; responses are accepted in either.
        max_request_size: body limit in MB (RoadRunner's default 1000);
            0 means no limit. A larger body gets 413 and never reaches PHP.
        internal_error_code: the status sent when PHP answers with an
            error frame (RoadRunner's ``http.internal_error_code``).
        debug: show PHP's error text and worker start-up output to the
            client. Never in production: it can leak paths and secrets.
        access_logs: log one record per request on ``trio_runner.access``.
        date_header: add a ``Date`` header unless PHP sent one. For servers
            that add none themselves (``serve_http``); most ASGI servers
            add their own.

    Attributes:
        in_flight: HTTP requests being handled right now.

    Raises:
        ConfigError: an option has a value the bridge cannot use.
    """

    exchanger: Exchanger
    codec: ContextCodec = attrs.field(
        default=ContextCodec.PROTO, converter=_to_codec, kw_only=True
    )
    max_request_size: int = attrs.field(
        default=1000, validator=_check_max_request_size, kw_only=True
    )
    internal_error_code: int = attrs.field(
        default=500, validator=_check_error_code, kw_only=True
    )
    debug: bool = attrs.field(default=False, kw_only=True)
    access_logs: bool = attrs.field(default=False, kw_only=True)
    date_header: bool = attrs.field(default=False, kw_only=True)
    in_flight: int = attrs.field(default=0, init=False)

    @classmethod
    def from_config(
        cls, pool: Exchanger, http: HttpOptions, *, date_header: bool = False
    ) -> HttpBridge:
        """Build the bridge for ``pool`` from the ``[http]`` section."""
        return cls(
            pool,
            codec=http.codec,
            max_request_size=http.max_request_size,
            internal_error_code=http.internal_error_code,
            debug=http.pool.debug,
            access_logs=http.access_logs,
            date_header=date_header,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            self.in_flight += 1
            try:
                if self.access_logs:
                    await log_access(self._serve_http, scope, receive, send)
                else:
                    await self._serve_http(scope, receive, send)
            finally:
                self.in_flight -= 1
        elif kind == "lifespan":
            await _run_lifespan(receive, send)
        elif kind == "websocket":
            # TODO: #3 websockets reach PHP through their own front, a later
            # issue; until then the handshake is refused (403).
            await _refuse_websocket(receive, send)
        else:
            raise ValueError(f"HttpBridge cannot serve ASGI scope type {kind!r}")

    async def _serve_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = str(scope["method"])
        body = b""
        if method not in _BODYLESS_METHODS:
            limit = self.max_request_size * _MB
            try:
                body = await _read_body(scope, receive, limit)
            except _BodyTooLarge:
                text = (
                    "The request body is larger than the limit of "
                    f"{self.max_request_size} MB.\n"
                )
                response = plain_response(413, text)
                await _send_plain(send, response, method, self.date_header)
                return
            except _ClientGone:
                return

        context = RequestContext.from_scope(scope).encode(self.codec)
        payload = Payload(context, body, self.codec.flag)
        client = _Client()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.watch, receive)
            await self._exchange(payload, scope, send, client)
            nursery.cancel_scope.cancel()

    async def _exchange(
        self, payload: Payload, scope: Scope, send: Send, client: _Client
    ) -> None:
        writer = _ResponseWriter(
            send,
            str(scope["method"]),
            str(scope.get("http_version", "1.1")),
            self.debug,
            self.date_header,
        )
        try:
            async with contextlib.AsyncExitStack() as stack:
                with client.cancellable():
                    chunks = await stack.enter_async_context(
                        self.exchanger.stream(payload)
                    )
                while not client.gone:
                    chunk = None
                    with client.cancellable():
                        chunk = await anext(chunks, None)
                    if chunk is None:
                        break  # the last chunk was sent, or the client left
                    await writer.write(chunk, last=chunks.finished)
                    if writer.complete:
                        break  # the rest is not wanted; the pool stops it
        except TrioRunnerError as error:
            _log_failure(error, scope)
            # Once started, the body is left unended on purpose: the server
            # drops the connection and the client sees the truncation.
            if not writer.started:
                response = error_response(
                    error,
                    internal_error_code=self.internal_error_code,
                    debug=self.debug,
                )
                await writer.write_plain(response)
            return
        if not client.gone:
            await writer.finish()


class _Client:
    """Watches for the client going away while PHP works on its request.

    Only the waits on the pool run in ``cancellable`` scopes. Sending to the
    server never does: hypercorn runs its connection code inside the app's
    ``send``, and cancelling it there leaves the connection open for good.
    """

    def __init__(self) -> None:
        self.gone = False
        self._scope: trio.CancelScope | None = None

    @contextlib.contextmanager
    def cancellable(self) -> Iterator[None]:
        with trio.CancelScope() as scope:
            self._scope = scope
            if self.gone:
                scope.cancel()
            try:
                yield
            finally:
                self._scope = None

    async def watch(self, receive: Receive) -> None:
        # The body is read (or ignored, for HEAD and OPTIONS), so what is
        # left to receive is the disconnect, if it comes at all.
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self._scope is not None:
            logger.debug("the client went away; cancelling its request")
            self._scope.cancel()


@attrs.define(eq=False)
class _ResponseWriter:
    """Turns the response chunks of one request into ASGI messages."""

    send: Send
    method: str
    http_version: str
    debug: bool
    date_header: bool
    started: bool = False
    complete: bool = False
    _bodyless: bool = False

    async def write(self, chunk: Payload, *, last: bool = False) -> None:
        """Send one chunk; ``last`` ends the response with it."""
        if self.complete:
            return
        if not self.started:
            if not chunk.context and not chunk.body:
                return  # the empty frame that ends a cancelled stream
            try:
                head = decode_response_context(chunk.context)
            except RemoteProtocolError as error:
                logger.warning(
                    "%s; answering 500 (context starts with %r)",
                    error,
                    chunk.context[:64],
                    extra={"reason": "bad_response_context"},
                )
                await self._internal_error(str(error))
                return
            if 100 <= head.status < 200:
                # TODO: #3 103 Early Hints: pass 1xx chunks on through the
                # http.response.early_hint extension, each with only its
                # own headers (PROTOCOL.md 4.6, as RoadRunner v6 does).
                return
            if not 200 <= head.status <= 599:
                logger.warning(
                    "the PHP worker sent status %d, outside 100-599; answering 500",
                    head.status,
                    extra={"reason": "bad_status"},
                )
                await self._internal_error(
                    f"The PHP worker sent an invalid status: {head.status}"
                )
                return
            await self._start(head, length=len(chunk.body) if last else None)
        body = b"" if self._bodyless else chunk.body
        if last:
            await self.send({"type": "http.response.body", "body": body})
            self.complete = True
        elif body:
            await self.send(
                {"type": "http.response.body", "body": body, "more_body": True}
            )

    async def finish(self) -> None:
        """End the body. With no chunk but 1xx ones, the response is a bare 200."""
        if self.complete:
            return
        if not self.started:
            await self._start(ResponseHead())
        await self.send({"type": "http.response.body", "body": b""})
        self.complete = True

    async def write_plain(self, response: PlainResponse) -> None:
        await _send_plain(self.send, response, self.method, self.date_header)
        self.started = self.complete = True

    async def _internal_error(self, detail: str) -> None:
        text = f"{detail}\n" if self.debug else "Internal Server Error\n"
        await self.write_plain(plain_response(500, text))

    async def _start(self, head: ResponseHead, *, length: int | None = None) -> None:
        """Send the status and headers.

        ``length`` is the whole body's size when it is known: it becomes the
        Content-Length unless PHP set one. A HEAD answer announces the body
        PHP wrote for it, and nothing when it wrote none: a framework that
        drops the body of a HEAD response must not make it look empty.
        """
        lines, dropped = response_headers(head, http_version=self.http_version)
        if (
            length is not None
            and head.status not in _BODYLESS_STATUSES
            and not (self.method == "HEAD" and length == 0)
            and not any(name == b"content-length" for name, _ in lines)
        ):
            lines.append((b"content-length", b"%d" % length))
        if self.date_header and not any(name == b"date" for name, _ in lines):
            lines.append((b"date", http_date()))  # as Go: PHP's own Date wins
        for problem in dropped:
            logger.warning(
                "dropped a response header from PHP: %s",
                problem,
                extra={"reason": "bad_response_header"},
            )
        await self.send(
            {"type": "http.response.start", "status": head.status, "headers": lines}
        )
        self.started = True
        self._bodyless = self.method == "HEAD" or head.status in _BODYLESS_STATUSES


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read the whole request body, refusing it early if it is too large.

    Raises:
        _BodyTooLarge: the body (or its declared Content-Length) is over
            ``limit`` bytes; ``limit`` 0 means no limit.
        _ClientGone: the client disconnected first.
    """
    if limit:
        for name, value in scope.get("headers", ()):
            if bytes(name).lower() == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    continue  # the server rejects it; nothing to decide here
                if declared > limit:
                    raise _BodyTooLarge
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        if message["type"] != "http.request":
            continue
        part = bytes(message.get("body", b""))
        size += len(part)
        if limit and size > limit:
            raise _BodyTooLarge
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _send_plain(
    send: Send, response: PlainResponse, method: str, date_header: bool
) -> None:
    headers = list(response.headers)
    if date_header:
        headers.append((b"date", http_date()))
    await send(
        {"type": "http.response.start", "status": response.status, "headers": headers}
    )
    body = b"" if method == "HEAD" else response.body
    await send({"type": "http.response.body", "body": body})


_REASONS: tuple[tuple[type[TrioRunnerError], str, str], ...] = (
    (SoftError, "soft_error", "PHP answered with an error"),
    (WorkerTimeout, "exec_ttl", "the worker ran past exec_ttl and was killed"),
    (WorkerCrashed, "worker_crashed", "the worker died"),
    (WorkerStartError, "worker_start", "no worker could be started"),
    (QueueFull, "queue_full", "the pool's wait queue is full"),
    (NoFreeWorkers, "no_free_workers", "no worker was free in time"),
    (PoolClosed, "pool_closed", "the pool is closed"),
)


def _log_failure(error: TrioRunnerError, scope: Scope) -> None:
    reason, what = "internal", "unexpected pool failure"
    for kind, name, text in _REASONS:
        if isinstance(error, kind):
            reason, what = name, text
            break
    internal = reason == "internal"  # a bug in trio_runner: keep the traceback
    logger.log(
        logging.ERROR if internal else logging.WARNING,
        "%s %s failed: %s: %s",
        scope["method"],
        scope.get("path", ""),
        what,
        error,
        extra={"pid": getattr(error, "pid", None), "reason": reason},
        exc_info=internal,
    )


async def _run_lifespan(receive: Receive, send: Send) -> None:
    # The pools are started and stopped by the server, not by the app.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _refuse_websocket(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1000})
