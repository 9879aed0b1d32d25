"""The request body: read within the size limit, forms parsed on the way.

How a body flows, by its Content-Type (PROTOCOL.md 4.3)::

    receive() -- counted against the limit --+-- other ---> raw bytes
                                             +-- urlencoded --> FormTree
                                             +-- multipart --> MultipartReader
                                                   fields --> FormTree
                                                   files ---> TempFiles

    FormTree --> JSON body, parsed=true; TempFiles --> uploads tree JSON

Every piece is counted as it arrives, chunked bodies included; past the
limit ``BodyTooLarge`` is raised at once, so PHP is never called (a
declared Content-Length over it is refused before anything is read). A raw
or url-encoded body is kept whole in memory, as PHP gets it in one frame;
file parts never are: they stream into ``TempFiles`` as they arrive. HEAD
and OPTIONS bodies are not read, as in RoadRunner. Forms are parsed
whatever the method (Go parses only POST, PUT and PATCH bodies and gives
PHP an empty form for the others).

A body that stops arriving is bounded by ``receive_within``: the bridge
wraps ``receive()`` in it, so that no single wait for the next piece lasts
longer than ``http.idle_timeout`` (a slow upload that keeps moving is never
cut; one that stalls is).

The exceptions here never leave the bridge, which answers 413 for
``BodyTooLarge``, 400 for ``MalformedBody`` and 408 for ``BodyStalled``.
"""

from __future__ import annotations

from typing import Final

import attrs
import trio

from trio_runner.http.asgi import NO_BODY_EXTENSION, Message, Receive, Scope
from trio_runner.http.forms import (
    FormError,
    FormKind,
    FormTree,
    MultipartReader,
    PartData,
    PartEnd,
    PartStart,
    decode_text,
    form_kind,
    parse_urlencoded,
)
from trio_runner.http.uploads import FileReceiver, TempFiles, UploadedFile

__all__ = [
    "BodyRefused",
    "BodyStalled",
    "BodyTooLarge",
    "ClientGone",
    "MalformedBody",
    "RequestBody",
    "empty_request_body",
    "read_request_body",
    "receive_within",
]

_BODYLESS_METHODS = frozenset({"HEAD", "OPTIONS"})


class ClientGone(Exception):
    """The client disconnected before the request body was read."""


class BodyRefused(Exception):
    """The body cannot go to PHP.

    ``read_all`` says whether it was read to its end: if not, an HTTP/1
    connection cannot carry another request.
    """

    def __init__(self, message: str = "", *, read_all: bool = False) -> None:
        super().__init__(message)
        self.read_all = read_all


class BodyTooLarge(BodyRefused):
    """The request body is larger than the limit."""


class MalformedBody(BodyRefused):
    """A form body that cannot be parsed (the message says why)."""


class BodyStalled(BodyRefused):
    """No piece of the body arrived within the time allowed for one."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"nothing came for {seconds:g} s")
        self.seconds = seconds


def receive_within(receive: Receive, seconds: float) -> Receive:
    """``receive``, but a call that waits over ``seconds`` raises ``BodyStalled``.

    For reading a body only: once it is read, what is left to receive (a
    disconnect) may take as long as the response does.
    """

    async def receive_in_time() -> Message:
        with trio.move_on_after(seconds):
            return await receive()
        raise BodyStalled(seconds)

    return receive_in_time


@attrs.frozen
class RequestBody:
    """What PHP gets of a request's body.

    Attributes:
        body: the raw body, or the JSON data tree of a form when ``parsed``
            (``b""`` for a form without fields, unless ``empty_form`` asked
            for ``{}``).
        parsed: the body is a form's data tree.
        uploads: the JSON of the uploads tree for a multipart form (``{}``
            without files), None for any other body.
    """

    body: bytes = b""
    parsed: bool = False
    uploads: bytes | None = None


@attrs.define(eq=False)
class _Chunks:
    """The body's pieces from ``receive()``, counted against ``limit``."""

    receive: Receive
    limit: int
    size: int = 0
    done: bool = False

    async def next(self) -> bytes | None:
        """The next piece, or None at the end of the body."""
        while not self.done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            if message["type"] != "http.request":
                continue
            self.done = not message.get("more_body", False)
            piece = bytes(message.get("body", b""))
            self.size += len(piece)
            if self.limit and self.size > self.limit:
                raise BodyTooLarge(read_all=self.done)
            if piece:
                return piece
        return None

    async def read_to_end(self) -> bytes:
        pieces = []
        while (piece := await self.next()) is not None:
            pieces.append(piece)
        return b"".join(pieces)


_NO_BODY: Final = RequestBody()


def empty_request_body(
    scope: Scope, raw_body: bool = False, empty_form: bytes = b""
) -> RequestBody | None:
    """What PHP gets of a request its server says has no body
    (``NO_BODY_EXTENSION``), without reading; None when it must be read
    after all with ``read_request_body``: a multipart form (malformed
    without a body, which that says), or a Content-Length that is not 0.

    The arguments are ``read_request_body``'s.
    """
    if str(scope["method"]) in _BODYLESS_METHODS:
        return _NO_BODY
    declared, kind, _ = _announced(scope, raw_body)
    return None if declared else _bodiless(kind, empty_form)


def _bodiless(kind: FormKind | None, empty_form: bytes) -> RequestBody | None:
    """What PHP gets of a body of ``kind`` that is empty; None for a
    multipart form, which must have one."""
    if kind is None:
        return _NO_BODY
    if kind is FormKind.URLENCODED:
        return RequestBody(empty_form, parsed=True)
    return None


def _announced(scope: Scope, raw_body: bool) -> tuple[int, FormKind | None, bytes]:
    """What the headers say of the body: its largest Content-Length (0
    if none can be read), its form kind if it is a form PHP gets parsed,
    and a multipart form's boundary."""
    declared = 0
    content_type = b""
    for name, value in scope.get("headers", ()):
        name = bytes(name).lower()
        if name == b"content-length":
            try:
                declared = max(declared, int(value))
            except ValueError:
                continue  # the server rejects it; nothing to decide here
        elif name == b"content-type" and not content_type:
            content_type = bytes(value)
    if content_type and not raw_body:
        kind, boundary = form_kind(content_type)
        return declared, kind, boundary
    return declared, None, b""


async def read_request_body(
    scope: Scope,
    receive: Receive,
    files: TempFiles,
    *,
    limit: int = 0,
    raw_body: bool = False,
    empty_form: bytes = b"",
) -> RequestBody:
    """Read the body of an ASGI ``http`` request.

    Args:
        scope: the request's scope (its method and headers are read).
        receive: the ASGI receive callable.
        files: where file parts go; the caller deletes them.
        limit: the most bytes the body may have; 0 is no limit.
        raw_body: pass form bodies raw, unparsed (``http.raw_body``).
        empty_form: the body of a form without fields: ``b""``, or ``b"{}"``
            for the legacy JSON codec.

    Raises:
        BodyTooLarge: the body, or its declared Content-Length, is over
            ``limit``.
        ClientGone: the client disconnected first.
        MalformedBody: a multipart body is malformed.
    """
    if str(scope["method"]) in _BODYLESS_METHODS:
        return _NO_BODY
    declared, kind, boundary = _announced(scope, raw_body)
    if limit and declared > limit:
        raise BodyTooLarge
    if NO_BODY_EXTENSION in (scope.get("extensions") or ()):
        # The server says no body follows: nothing to wait for. (A
        # multipart form without one is malformed, which is said below.)
        empty = _bodiless(kind, empty_form)
        if empty is not None:
            return empty
    chunks = _Chunks(receive, limit)
    if kind is FormKind.MULTIPART:
        try:
            fields, uploads = await _read_multipart(chunks, boundary, files)
        except FormError as error:
            raise MalformedBody(str(error), read_all=chunks.done) from error
        body = fields.to_json() if fields else empty_form
        return RequestBody(
            body, parsed=True, uploads=uploads.to_json(UploadedFile.to_data)
        )
    body = await chunks.read_to_end()
    if kind is FormKind.URLENCODED:
        tree = FormTree[str]()
        for name, value in parse_urlencoded(body):
            tree.add(name, decode_text(value))
        return RequestBody(tree.to_json() if tree else empty_form, parsed=True)
    return RequestBody(body)


async def _read_multipart(
    chunks: _Chunks, boundary: bytes, files: TempFiles
) -> tuple[FormTree[str], FormTree[UploadedFile]]:
    reader = MultipartReader(boundary)
    fields = FormTree[str]()
    uploads = FormTree[UploadedFile](is_empty=lambda file: False)
    name = b""
    value = bytearray()
    receiver: FileReceiver | None = None
    while (piece := await chunks.next()) is not None:
        for event in reader.feed(piece):
            if isinstance(event, PartStart):
                name = event.name
                if event.filename is not None:
                    receiver = await files.receive(event.filename, event.content_type)
            elif isinstance(event, PartData):
                if receiver is not None:
                    await receiver.write(event.data)
                else:
                    value += event.data
            elif isinstance(event, PartEnd):
                if receiver is not None:
                    uploads.add(name, await receiver.finish())
                    receiver = None
                else:
                    fields.add(name, decode_text(bytes(value)))
                    value.clear()
    reader.close()
    return fields, uploads
