"""The ASGI app that hands each HTTP request to a PHP worker.

One request, one exchange::

    scope ──────> Host and target checked (request.py: else 400)
    receive() ──> body (body.py: 413 past max_request_size, forms parsed,
                    │  file parts streamed to temp files)
    scope ──────> request context ──> Payload ──> exchanger.stream()
                                                        │ chunks
    send() <── http.response.start / body <── response context + body

The bridge always streams: a plain PHP response is one chunk, a streamed
one (PROTOCOL.md 4.7) several, each carrying the whole context again. The
status and headers come from the first chunk whose status is not 1xx, and
every chunk body is sent as soon as it arrives (``writer.ResponseWriter``
decides what goes on the wire). While PHP works, a task
watches ``receive()`` (or, where the server offers the
``trio_runner.disconnect`` extension, as the lean HTTP/1.1 server does, the
server calls back and cancels the call itself: no task and no cancel scope
are needed): when the client goes away the exchange is cancelled, and
leaving ``stream()`` early is how the pool learns to stop the worker.

A failure before the response has started becomes a short text response
(``response.error_response``). After it has started the status is already
on the wire, so the bridge logs and returns without ending the body: the
server then closes the connection (over HTTP/2 it resets the stream) and
the client sees a truncated response, never one that looks complete.

This module is past 600 lines because one request's path through it (the
checks, the body, the exchange, the relay, the refusals and the failure
log) shares the scope, the writer and the client watcher at every step;
split apart, each piece would take all three as arguments.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from functools import partial
from typing import Final, Protocol

import attrs
import trio

from trio_runner.errors import (
    ConfigError,
    NoFreeWorkers,
    PoolClosed,
    QueueFull,
    SoftError,
    TrioRunnerError,
    WorkerCrashed,
    WorkerCutAtStop,
    WorkerStartError,
    WorkerTimeout,
)
from trio_runner.http.access import log_access
from trio_runner.http.asgi import (
    DISCONNECT_EXTENSION,
    NO_BODY_EXTENSION,
    Receive,
    Scope,
    Send,
    acknowledge_lifespan,
)
from trio_runner.http.body import (
    BodyRefused,
    BodyStalled,
    BodyTooLarge,
    ClientGone,
    RequestBody,
    empty_request_body,
    read_request_body,
    receive_within,
)
from trio_runner.http.request import (
    ContextCodec,
    encode_request_context,
    target_problem,
)
from trio_runner.http.response import (
    PlainResponse,
    error_response,
    plain_response,
)
from trio_runner.http.uploads import TempFiles, UploadOptions, open_temp_files
from trio_runner.http.writer import ResponseWriter, send_plain
from trio_runner.protocol.events import Payload

__all__ = ["Exchanger", "HttpBridge", "HttpOptions"]

logger = logging.getLogger(__name__)

_MB = 1024 * 1024

# Methods RFC 9110 (9.2.2) lets a client, or a proxy, send twice. POST and
# PATCH never are: PHP may have acted on them before it died.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


class ResponseChunks(Protocol):
    """The chunks of one response, as ``Exchanger.stream`` yields them.

    ``finished`` turns true as the last chunk is returned, so a response
    that fits in one chunk can be sent whole, with a Content-Length. It
    may turn true earlier, once the last frame has been read: the chunks
    left are then returned without waiting on the worker.
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

    def stream(
        self, payload: Payload, *, idempotent: bool = False
    ) -> AbstractAsyncContextManager[ResponseChunks]:
        """Send one request and yield its response chunk by chunk.

        Leaving the ``async with`` before the last chunk makes the pool
        cancel the stream on the worker. ``idempotent`` allows the pool to
        re-run the request once if its worker dies before answering.
        """
        ...


class _PoolOptions(Protocol):
    @property
    def debug(self) -> bool: ...


class _UploadsOptions(Protocol):
    @property
    def dir(self) -> str: ...
    @property
    def forbid(self) -> tuple[str, ...]: ...
    @property
    def allow(self) -> tuple[str, ...]: ...
    @property
    def max_file_size(self) -> int: ...


class HttpOptions(Protocol):
    """The ``[http]`` settings the bridge reads (``config.model.HttpConfig``)."""

    @property
    def codec(self) -> str: ...
    @property
    def max_request_size(self) -> int: ...
    @property
    def idle_timeout(self) -> float: ...
    @property
    def raw_body(self) -> bool: ...
    @property
    def uploads(self) -> _UploadsOptions: ...
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


def _check_body_timeout(_bridge: object, _attribute: object, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(
            "http body_timeout must be a positive number of seconds (math.inf "
            f"for no limit), got {value!r}"
        )


def _check_error_code(_bridge: object, _attribute: object, value: object) -> None:
    if not isinstance(value, int) or not 400 <= value <= 599:
        raise ConfigError(
            "http internal_error_code must be an error status from 400 to 599, "
            f"got {value!r}"
        )


# Validated when made, not on every assignment: attrs would otherwise give
# the class a __setattr__ that runs on each in_flight count, twice a request.
@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class HttpBridge:
    """An ASGI 3 app that serves HTTP requests with PHP workers.

    Handles ``http`` and ``lifespan`` scopes; ``websocket`` scopes are
    refused. It runs under trio only: it opens a nursery per request. A
    request whose Host header or target cannot make the URI PHP gets (two
    Hosts, ``Host: x/admin?``, a target that is not a path) is answered 400
    and never reaches PHP (``request.target_problem``).

    Args:
        exchanger: the pool that runs requests on PHP workers.
        codec: ``"proto"`` (default) or ``"json"``, the request context
            encoding; responses are accepted in either.
        max_request_size: body limit in MB (RoadRunner's default 1000);
            0 means no limit. A larger body gets 413 and never reaches PHP.
        body_timeout: seconds the body may go without a piece arriving
            (``http.idle_timeout``); then 408, and over HTTP/1 the
            connection closes. A slow body that keeps coming is not cut.
        raw_body: pass form bodies to PHP raw instead of as a parsed data
            tree (``http.raw_body``).
        uploads: where multipart file parts go and which are taken; each
            temp file is deleted once its request is over.
        internal_error_code: the status sent when PHP answers with an
            error frame (RoadRunner's ``http.internal_error_code``).
        debug: show PHP's error text and worker start-up output to the
            client. Never in production: it can leak paths and secrets.
        access_logs: log one record per request on ``trio_runner.access``.
        date_header: add a ``Date`` header unless PHP sent one. For servers
            that add none themselves (``serve_http``); most ASGI servers
            add their own.

    Attributes:
        in_flight: HTTP requests being handled right now, their body still
            arriving or not.
        cut: HTTP requests that ended cancelled (the server stopped while
            they ran), since the bridge was made.

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
    body_timeout: float = attrs.field(
        default=60.0, validator=_check_body_timeout, kw_only=True
    )
    raw_body: bool = attrs.field(default=False, kw_only=True)
    uploads: UploadOptions = attrs.field(factory=UploadOptions, kw_only=True)
    internal_error_code: int = attrs.field(
        default=500, validator=_check_error_code, kw_only=True
    )
    debug: bool = attrs.field(default=False, kw_only=True)
    access_logs: bool = attrs.field(default=False, kw_only=True)
    date_header: bool = attrs.field(default=False, kw_only=True)
    in_flight: int = attrs.field(default=0, init=False)
    cut: int = attrs.field(default=0, init=False)
    # Of the codec, worked out once rather than per request.
    _flag: int = attrs.field(init=False)
    _empty_form: bytes = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._flag = self.codec.flag
        self._empty_form = b"{}" if self.codec is ContextCodec.JSON else b""

    @classmethod
    def from_config(
        cls,
        pool: Exchanger,
        http: HttpOptions,
        *,
        date_header: bool = False,
        working_dir: str | os.PathLike[str] | None = None,
        user: str = "",
    ) -> HttpBridge:
        """Build the bridge for ``pool`` from the ``[http]`` section.

        A relative ``http.uploads.dir`` is under ``working_dir``; temp
        files are given to ``user`` (``server.user``) when one is set.
        """
        uploads = UploadOptions.from_config(
            http.uploads, working_dir=working_dir, user=user
        )
        return cls(
            pool,
            codec=http.codec,
            max_request_size=http.max_request_size,
            body_timeout=http.idle_timeout,
            raw_body=http.raw_body,
            uploads=uploads,
            internal_error_code=http.internal_error_code,
            debug=http.pool.debug,
            access_logs=http.access_logs,
            date_header=date_header,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            self.in_flight += 1
            client = _Client()
            try:
                if self.access_logs:
                    await log_access(
                        partial(self._serve_http, client=client),
                        scope,
                        receive,
                        send,
                    )
                else:
                    await self._serve_http(scope, receive, send, client)
            except BaseException:
                # Cancelled, maybe inside a group from the watcher's nursery:
                # by the server because the client left, or by a stop.
                if not client.gone and trio.current_effective_deadline() == -math.inf:
                    self.cut += 1
                raise
            finally:
                self.in_flight -= 1
        elif kind == "lifespan":
            # The pools are started and stopped by the server, not the app.
            await acknowledge_lifespan(receive, send)
        elif kind == "websocket":
            # TODO: #6 websockets reach PHP through their own front, a later
            # issue; until then the handshake is refused (403).
            await _refuse_websocket(receive, send)
        else:
            raise ValueError(f"HttpBridge cannot serve ASGI scope type {kind!r}")

    async def _serve_http(
        self, scope: Scope, receive: Receive, send: Send, client: _Client
    ) -> None:
        problem = target_problem(scope)
        if problem is not None:
            await self._refuse_target(scope, send, problem)
            return
        if NO_BODY_EXTENSION in (scope.get("extensions") or ()):
            # The server says no body follows: most such requests need no
            # read at all, and no upload can make a temp file, so there is
            # no store to open and clean up on the way out.
            body = empty_request_body(scope, self.raw_body, self._empty_form)
            if body is None:
                body = await self._read_body(
                    scope, receive, send, TempFiles(self.uploads)
                )
            if body is not None:
                await self._exchange(scope, receive, send, client, body)
            return
        # Leaving this block, however it ends, deletes the request's upload
        # temp files: after the response is written, or once it failed.
        async with open_temp_files(self.uploads) as files:
            body = await self._read_body(scope, receive, send, files)
            if body is not None:
                await self._exchange(scope, receive, send, client, body)

    async def _read_body(
        self, scope: Scope, receive: Receive, send: Send, files: TempFiles
    ) -> RequestBody | None:
        """Read the body into ``files``; None if it was refused or the
        client left (a refusal is answered here)."""
        try:
            return await read_request_body(
                scope,
                receive_within(receive, self.body_timeout),
                files,
                limit=self.max_request_size * _MB,
                raw_body=self.raw_body,
                empty_form=self._empty_form,
            )
        except BodyRefused as refusal:
            await self._refuse(scope, send, refusal)
        except ClientGone:
            pass
        return None

    async def _refuse(self, scope: Scope, send: Send, refusal: BodyRefused) -> None:
        """Answer 413, 408 or 400 for a body that never reaches PHP."""
        if isinstance(refusal, BodyStalled):
            logger.debug(
                "%s %s: the request body stalled (%s); answered 408",
                scope["method"],
                scope.get("path", ""),
                refusal,
                extra={"reason": "body_stalled"},
            )
            text = f"The request body stopped arriving: {refusal}.\n"
            response = plain_response(408, text)
        elif isinstance(refusal, BodyTooLarge):
            text = (
                "The request body is larger than the limit of "
                f"{self.max_request_size} MB.\n"
            )
            response = plain_response(413, text)
        else:
            text = f"The form in the request body is malformed: {refusal}.\n"
            response = plain_response(400, text)
        # The rest of the body is still on its way: this HTTP/1 connection
        # cannot carry another request, so say it will close.
        await self._refuse_with(scope, send, response, close=not refusal.read_all)

    async def _refuse_target(self, scope: Scope, send: Send, problem: str) -> None:
        """Answer 400 for a Host or request target PHP must never see."""
        logger.debug(
            "%s %r (Host %r): %s; answered 400",
            scope["method"],
            scope.get("raw_path", scope.get("path", "")),
            [value for name, value in scope.get("headers", ()) if name == b"host"],
            problem,
            extra={"reason": "bad_target"},
        )
        response = plain_response(400, f"The request is malformed: {problem}.\n")
        # The body, if any, is left unread, and a client that sends such a
        # head is not one to keep a connection open for.
        await self._refuse_with(scope, send, response, close=True)

    async def _refuse_with(
        self, scope: Scope, send: Send, response: PlainResponse, *, close: bool
    ) -> None:
        """Send a refusal; with ``close``, over HTTP/1 it says the
        connection closes after it (HTTP/2 ends only the stream)."""
        if close and str(scope.get("http_version", "1.1")).startswith("1."):
            closing = (b"connection", b"close")
            response = attrs.evolve(response, headers=(*response.headers, closing))
        await send_plain(send, response, str(scope["method"]), self.date_header)

    def _exchange(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        client: _Client,
        body: RequestBody,
    ) -> Awaitable[None]:
        """Hand the request to PHP and relay its answer (``_relay``).

        Not a coroutine of its own: one frame less on the stack that every
        wait of the request resumes through.
        """
        context = encode_request_context(
            scope, self.codec, parsed=body.parsed, uploads=body.uploads
        )
        payload = Payload(context, body.body, self._flag)
        extension = (scope.get("extensions") or {}).get(DISCONNECT_EXTENSION)
        if extension is not None:
            # The server cancels this call when the client leaves: no
            # watcher task, and no cancel scope per wait on the pool.
            extension["subscribe"](client.leave, cancel=True)
            client.scoped = False
            return self._relay(payload, scope, send, client)
        return self._relay_watched(payload, scope, receive, send, client)

    async def _relay_watched(
        self,
        payload: Payload,
        scope: Scope,
        receive: Receive,
        send: Send,
        client: _Client,
    ) -> None:
        """``_relay`` with a task that watches for the client leaving."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.watch, receive)
            await self._relay(payload, scope, send, client)
            nursery.cancel_scope.cancel()

    async def _relay(
        self, payload: Payload, scope: Scope, send: Send, client: _Client
    ) -> None:
        """Write PHP's chunks as they come, until the last or the client
        leaves."""
        writer = ResponseWriter.for_request(
            send, scope, debug=self.debug, date_header=self.date_header
        )
        stream = self.exchanger.stream(
            payload, idempotent=scope["method"] in _IDEMPOTENT
        )
        try:
            # async with, written out: only entering may be cancelled.
            chunks = None
            with client.cancellable():
                chunks = await stream.__aenter__()
            if chunks is not None:
                try:
                    while not client.gone:
                        chunk = None
                        if chunks.finished:
                            # The last frame is read: nothing left to wait for.
                            chunk = await anext(chunks, None)
                        else:
                            with client.cancellable():
                                chunk = await anext(chunks, None)
                        if chunk is None:
                            break  # the last chunk was sent, or the client left
                        await writer.write(chunk, last=chunks.finished)
                        if writer.complete:
                            break  # the rest is not wanted; the pool stops it
                except BaseException as exc:
                    if not await stream.__aexit__(type(exc), exc, exc.__traceback__):
                        raise
                else:
                    await stream.__aexit__(None, None, None)
        except TrioRunnerError as error:
            _log_failure(error, scope, started=writer.started)
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

    Under a server that cancels the request's call itself when the client
    leaves (the lean HTTP/1.1 server, through ``DISCONNECT_EXTENSION``),
    ``scoped`` is False and the waits on the pool run in no scope of their
    own: one scope per request costs as much as parsing it. Elsewhere only
    the waits on the pool run in ``cancellable`` scopes. Sending to the
    server never does: hypercorn runs its connection code inside the app's
    ``send``, and cancelling it there leaves the connection open for good.
    """

    __slots__ = ("_scope", "gone", "scoped")

    def __init__(self) -> None:
        self.gone = False
        self.scoped = True
        self._scope: trio.CancelScope | None = None

    def cancellable(self) -> AbstractContextManager[object]:
        """A scope to wait on the pool in; cancelled once the client leaves.

        ``leave`` may cancel it after the block ended, which does nothing.
        """
        if not self.scoped:
            return _NO_SCOPE
        scope = trio.CancelScope()
        if self.gone:
            scope.cancel()
        self._scope = scope
        return scope

    async def watch(self, receive: Receive) -> None:
        # The body is read (or ignored, for HEAD and OPTIONS), so what is
        # left to receive is the disconnect, if it comes at all.
        while (await receive())["type"] != "http.disconnect":
            pass
        self.leave()

    def leave(self) -> None:
        """The client is gone: cancel the wait on the pool, if there is one."""
        self.gone = True
        logger.debug("the client went away; cancelling its request")
        if self._scope is not None:
            self._scope.cancel()


_NO_SCOPE: Final = nullcontext()


_REASONS: tuple[tuple[type[TrioRunnerError], str, str], ...] = (
    (SoftError, "soft_error", "PHP answered with an error"),
    (WorkerTimeout, "exec_ttl", "the worker ran past exec_ttl and was killed"),
    (WorkerCutAtStop, "shutdown", "the server stopped at once"),
    (WorkerCrashed, "worker_crashed", "the worker failed"),
    (WorkerStartError, "worker_start", "no worker could be started"),
    (QueueFull, "queue_full", "the pool's wait queue is full"),
    (NoFreeWorkers, "no_free_workers", "no worker was free in time"),
    (PoolClosed, "pool_closed", "the pool is closed"),
)


def _log_failure(error: TrioRunnerError, scope: Scope, *, started: bool) -> None:
    reason, what = "internal", "unexpected pool failure"
    for kind, name, text in _REASONS:
        if isinstance(error, kind):
            reason, what = name, text
            break
    internal = reason == "internal"  # a bug in trio_runner: keep the traceback
    # The worker's stderr is in the log already, line by line.
    detail = error.summary if isinstance(error, WorkerStartError) else error
    logger.log(
        logging.ERROR if internal else logging.WARNING,
        "%s %s failed: %s: %s%s",
        scope["method"],
        scope.get("path", ""),
        what,
        detail,
        " (mid-response: the client gets it cut short)" if started else "",
        extra={"pid": getattr(error, "pid", None), "reason": reason},
        exc_info=internal,
    )


async def _refuse_websocket(receive: Receive, send: Send) -> None:
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "code": 1000})
