"""Form bodies as PHP parses them: field names to keys, fields to a tree.

RoadRunner hands PHP the fields of a url-encoded or multipart form as a JSON
"data tree" that becomes the parsed body (PROTOCOL.md 4.3). This module
builds that tree the way PHP's own parser builds ``$_POST`` (and
``parse_str``), so an app sees the same array as under php-fpm:

- A name is cut into keys at brackets: ``a[b][]`` is ``a``, ``b``, append.
  In the first key, spaces and dots become ``_`` and leading spaces go
  (``e f`` is ``e_f``). Text after a closing bracket that opens no other is
  ignored (``columns[]row1`` is ``columns[]``). An unclosed first bracket
  is kept as ``_`` (``a[b.c`` is ``a_b_c``); a NUL ends the name; a name
  with an empty first key is dropped.
- Canonical integer keys are integers: ``a[5]`` then ``a[]`` gives 5 and 6.
- The last value of a repeated name wins; ``[]`` appends.
- Names of more than ``MAX_DEPTH`` keys (RoadRunner's 127) are ignored.
- Where a value and an array meet under one key (``a=1&a[b]=2``), the later
  field wins, as in PHP, where RoadRunner fails the request. One exception,
  RoadRunner's: an empty value never replaces an array, so a form with an
  empty ``options`` field beside ``options[0][id]`` keeps the array,
  whatever the order of the fields.

Names and values are text, as in RoadRunner: JSON cannot carry raw bytes,
and Go's JSON encoder puts U+FFFD for each byte that is not part of valid
UTF-8, so ``caf%E9`` reaches PHP as ``caf\ufffd`` (php-fpm would give the
raw byte; no JSON form can). The uploads tree of PROTOCOL.md 4.5 is built
by the same rules, with files as its leaves.

``MultipartReader`` turns a multipart body, fed in pieces, into part
events. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar
from urllib.parse import unquote_to_bytes

import attrs
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import (
    MultipartParser,
    MultipartState,
    parse_options_header,
)

__all__ = [
    "MAX_DEPTH",
    "MAX_PARTS",
    "FormError",
    "FormKind",
    "FormTree",
    "MultipartReader",
    "PartData",
    "PartEnd",
    "PartStart",
    "decode_text",
    "form_kind",
    "parse_urlencoded",
    "split_name",
]

MAX_DEPTH = 127
"""The most keys a field name may have; deeper names are ignored."""

MAX_PARTS = 1000
"""The most parts a multipart body may have (Go's limit, so RoadRunner's)."""

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # PHP_INT_MIN, PHP_INT_MAX
_INTEGER = re.compile(rb"0|-?[1-9][0-9]*")
_FIRST_KEY = bytes.maketrans(b" .", b"__")
_UNCLOSED = bytes.maketrans(b" .[", b"___")

Key = int | str
LeafT = TypeVar("LeafT")


class FormError(ValueError):
    """A form body that cannot be parsed; the client's fault (400)."""


# surrogateescape turns each byte that is not part of valid UTF-8 into one
# lone surrogate, U+DC80 to U+DCFF; these become U+FFFD.
_BAD_BYTES = dict.fromkeys(range(0xDC80, 0xDD00), "\ufffd")


def decode_text(raw: bytes) -> str:
    """``raw`` as UTF-8, each byte that is not part of valid UTF-8 replaced
    by U+FFFD, as RoadRunner's JSON encoding of form trees does.

    One U+FFFD per byte, as Go reads them (``utf8.DecodeRune`` returns an
    error of size 1), where Python's ``"replace"`` puts one for a whole
    broken sequence.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("utf-8", "surrogateescape").translate(_BAD_BYTES)


def split_name(name: bytes) -> list[bytes | None] | None:
    """Cut a field name into its keys, ``None`` standing for ``[]``.

    Returns None for a name PHP drops: an empty first key, or more than
    ``MAX_DEPTH`` keys.
    """
    name = name.partition(b"\0")[0].lstrip(b" ")
    bracket = name.find(b"[")
    if bracket < 0:
        return [name.translate(_FIRST_KEY)] if name else None
    first = name[:bracket].translate(_FIRST_KEY)
    if not first:
        return None

    keys: list[bytes | None] = [first]
    while True:
        start = bracket + 1
        # "[ ]" appends like "[]"; "[ b]" keeps its space.
        after_space = start + 1 if name[start : start + 1] == b" " else start
        if name[after_space : after_space + 1] == b"]":
            keys.append(None)
            close = after_space
        else:
            close = name.find(b"]", start)
            if close < 0:
                if len(keys) == 1:
                    keys[0] = first + b"_" + name[start:].translate(_UNCLOSED)
                return keys
            keys.append(name[start:close])
        if len(keys) > MAX_DEPTH:
            return None
        bracket = close + 1
        if name[bracket : bracket + 1] != b"[":
            return keys  # PHP ignores anything after the last "]"


def _php_key(raw: bytes) -> Key:
    if _INTEGER.fullmatch(raw) and _INT_MIN <= (number := int(raw)) <= _INT_MAX:
        return number
    return decode_text(raw)


@attrs.define(eq=False)
class _Branch:
    """A PHP array: ordered keys, and the next index ``[]`` appends at."""

    items: dict[Key, Any] = attrs.field(factory=dict)
    next_index: int | None = None

    def put(self, key: Key | None, node: Any) -> None:
        if key is None:
            key = 0 if self.next_index is None else self.next_index
            if key > _INT_MAX:
                return  # PHP: "Cannot add element to the array"
        self.items[key] = node
        if isinstance(key, int) and (self.next_index is None or key >= self.next_index):
            self.next_index = key + 1


@attrs.define(eq=False)
class FormTree(Generic[LeafT]):
    """Fields under their names, as PHP nests them.

    ``is_empty`` tells which leaves an array may not be replaced by (the
    empty string, for form values).
    """

    is_empty: Callable[[LeafT], bool] = lambda leaf: leaf == ""
    _root: _Branch = attrs.field(factory=_Branch, init=False)

    def __bool__(self) -> bool:
        return bool(self._root.items)

    def add(self, name: bytes, leaf: LeafT) -> None:
        """Put ``leaf`` where ``name`` says; a name PHP drops is ignored."""
        raw_keys = split_name(name)
        if raw_keys is None:
            return
        keys = [None if key is None else _php_key(key) for key in raw_keys]
        branch = self._root
        for key in keys[:-1]:
            child = None if key is None else branch.items.get(key)
            if not isinstance(child, _Branch):
                child = _Branch()
                branch.put(key, child)
            branch = child
        last = keys[-1]
        if (
            last is not None
            and isinstance(branch.items.get(last), _Branch)
            and self.is_empty(leaf)
        ):
            return
        branch.put(last, leaf)

    def to_data(self, leaf: Callable[[LeafT], Any] = lambda value: value) -> Any:
        """The tree as JSON-ready values: a dict at the root, then a list
        for each array indexed 0, 1, 2... in order, a dict for the others."""
        return _to_data(self._root, leaf, root=True)

    def to_json(self, leaf: Callable[[LeafT], Any] = lambda value: value) -> bytes:
        return json.dumps(
            self.to_data(leaf), ensure_ascii=False, separators=(",", ":")
        ).encode()


def _to_data(node: Any, leaf: Callable[[Any], Any], *, root: bool = False) -> Any:
    if not isinstance(node, _Branch):
        return leaf(node)
    items = node.items
    if not root and all(key == index for index, key in enumerate(items)):
        return [_to_data(child, leaf) for child in items.values()]
    return {str(key): _to_data(child, leaf) for key, child in items.items()}


def parse_urlencoded(body: bytes) -> Iterator[tuple[bytes, bytes]]:
    """The ``(name, value)`` pairs of a url-encoded body, unescaped.

    As PHP: pairs are split on ``&`` only, empty pairs are skipped, a pair
    without ``=`` has the value ``""``, ``+`` is a space, and a ``%`` not
    followed by two hex digits stays as it is.
    """
    for pair in body.split(b"&"):
        if pair:
            name, _, value = pair.partition(b"=")
            yield _unquote(name), _unquote(value)


def _unquote(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.replace(b"+", b" ")) if raw else b""


class FormKind(enum.Enum):
    """The media types whose bodies become a data tree."""

    URLENCODED = b"application/x-www-form-urlencoded"
    MULTIPART = b"multipart/form-data"


def form_kind(content_type: bytes) -> tuple[FormKind | None, bytes]:
    """The form kind of a Content-Type value (None if it is no form) and
    its boundary parameter (``b""`` if it has none)."""
    media_type, params = parse_options_header(content_type)
    try:
        kind = FormKind(media_type)
    except ValueError:
        return None, b""
    return kind, params.get(b"boundary", b"")


@attrs.frozen
class PartStart:
    """A part begins. ``filename`` is None for a plain field, else the
    client's file name without directories (``b""`` for an empty file
    input). ``content_type`` is the part's own, ``b""`` if it has none."""

    name: bytes
    filename: bytes | None
    content_type: bytes


@attrs.frozen
class PartData:
    """Some bytes of the current part's content."""

    data: bytes


@attrs.frozen
class PartEnd:
    """The current part is complete."""


PartEvent = PartStart | PartData | PartEnd


class MultipartReader:
    """Turns a ``multipart/form-data`` body into part events, piece by piece.

    A preamble before the first boundary is skipped, as is the epilogue,
    and so are parts without a form-data name, as Go and PHP skip them.
    ``feed`` and ``close`` raise ``FormError`` for a malformed body: no or
    a bad boundary, broken part headers, more than ``MAX_PARTS`` parts, or
    a body that ends before its closing boundary.
    """

    def __init__(self, boundary: bytes) -> None:
        if not boundary:
            raise FormError("the multipart Content-Type has no boundary")
        try:
            self._parser = MultipartParser(
                boundary,
                {
                    "on_part_begin": self._on_part_begin,
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": self._on_headers_finished,
                    "on_part_data": self._on_part_data,
                    "on_part_end": self._on_part_end,
                },
            )
        except (MultipartParseError, ValueError) as error:
            raise FormError(f"bad multipart boundary: {error}") from error
        self._events: list[PartEvent] = []
        self._headers: dict[bytes, bytes] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._parts = 0
        self._in_part = False  # inside a part that is not skipped
        self._fed = False
        self._delimiter = b"--" + boundary
        self._preamble: bytes | None = b""  # None once the first boundary is found
        self._skipped = False

    def feed(self, data: bytes) -> list[PartEvent]:
        """Parse the next piece of the body; return the events it completes."""
        self._fed = self._fed or bool(data)
        if data and self._preamble is not None:
            data = self._skip_preamble(data)
        if data:
            try:
                self._parser.write(data)
            except MultipartParseError as error:
                raise FormError(f"malformed multipart body: {error}") from error
        events, self._events = self._events, []
        return events

    def close(self) -> None:
        """Check that the body ended where it should (an empty one may)."""
        if self._fed and self._parser.state != MultipartState.END:
            raise FormError("the multipart body ends before its closing boundary")

    def _skip_preamble(self, data: bytes) -> bytes:
        """``data`` from the first boundary on; b"" while it is not in sight."""
        assert self._preamble is not None
        data = self._preamble + data
        if not self._skipped and data.startswith(self._delimiter):
            self._preamble = None
            return data
        found = data.find(b"\r\n" + self._delimiter)
        if found >= 0:
            self._preamble = None
            return data[found + 2 :]
        # Keep what may be the start of a split "\r\n--boundary".
        keep = len(self._delimiter) + 1
        self._skipped = self._skipped or len(data) > keep
        self._preamble = data[-keep:]
        return b""

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            raise MultipartParseError(f"more than {MAX_PARTS} parts")
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        name = bytes(self._field).strip().lower()
        self._headers[name] = bytes(self._value).strip(b" \t")
        self._field.clear()
        self._value.clear()

    def _on_headers_finished(self) -> None:
        disposition, params = parse_options_header(
            self._headers.get(b"content-disposition", b"")
        )
        name = params.get(b"name", b"")
        self._in_part = disposition == b"form-data" and bool(name)
        if self._in_part:
            filename = params.get(b"filename")
            if filename is not None:
                # The base name, as PHP takes it: after the last / or \.
                filename = re.split(rb"[/\\]", filename)[-1]
            content_type = self._headers.get(b"content-type", b"")
            self._events.append(PartStart(name, filename, content_type))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_part and end > start:
            self._events.append(PartData(data[start:end]))

    def _on_part_end(self) -> None:
        if self._in_part:
            self._events.append(PartEnd())
        self._in_part = False
