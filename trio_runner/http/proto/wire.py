"""RoadRunner's ``http.v1.Request`` in protobuf's wire format, written by hand.

The request context goes to PHP with every request, and building it
through protobuf's message API cost more than all the rest of the
context: ``encode_request`` writes the same wire bytes field by field
(the tests read them back with protobuf and compare the messages), and
``map_entry`` one entry of its ``header`` or ``cookies`` map, which the
caller may keep and reuse. Nothing here knows HTTP; ``request.py`` decides
what goes in each field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

__all__ = ["COOKIE", "HEADER", "encode_request", "map_entry"]

# Field keys of http.v1.Request (field number << 3 | wire type).
_REMOTE_ADDR: Final = b"\x0a"
_PROTOCOL: Final = b"\x12"
_METHOD: Final = b"\x1a"
_URI: Final = b"\x22"
HEADER: Final = b"\x2a"
COOKIE: Final = b"\x32"
_RAW_QUERY: Final = b"\x3a"
_PARSED: Final = b"\x40\x01"
_UPLOADS: Final = b"\x4a"
_VALUE: Final = b"\x0a"  # HeaderValue.value, and a map entry's key
_ENTRY_VALUE: Final = b"\x12"  # a map entry's value

_SHORT_VARINTS: Final = [bytes([number]) for number in range(0x80)]


# The first three fields (client address, protocol, method) written for
# the clients and methods seen lately: the same few come again and again.
# Emptied when full.
_known_firsts: dict[tuple[str, str, str], bytes] = {}
_KNOWN_FIRSTS_MAX = 256
_KNOWN_FIRST_SIZE = 256


def _first_fields(first: tuple[str, str, str]) -> bytes:
    written = b"".join(
        [
            _string_field(key, text.encode())
            for key, text in zip((_REMOTE_ADDR, _PROTOCOL, _METHOD), first, strict=True)
            if text
        ]
    )
    if len(written) <= _KNOWN_FIRST_SIZE:
        if len(_known_firsts) >= _KNOWN_FIRSTS_MAX:
            _known_firsts.clear()
        _known_firsts[first] = written
    return written


def _varint(number: int) -> bytes:
    """A protobuf varint; here always a length, never negative."""
    if number < 0x80:
        return _SHORT_VARINTS[number]
    out = bytearray()
    while number >= 0x80:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _string_field(key: bytes, data: bytes) -> bytes:
    return b"%s%s%s" % (key, _varint(len(data)), data)


def map_entry(key: bytes, name: str, values: Iterable[bytes]) -> bytes:
    """One ``map<string, HeaderValue>`` entry of field ``key``, whole."""
    value = b"".join([_string_field(_VALUE, item) for item in values])
    entry = _string_field(_VALUE, name.encode()) + _string_field(_ENTRY_VALUE, value)
    return _string_field(key, entry)


def encode_request(
    remote_addr: str,
    protocol: str,
    method: str,
    uri: str,
    headers: Iterable[tuple[str, bytes]],
    cookies: Iterable[tuple[str, bytes]],
    raw_query: str,
    parsed: bool,
    uploads: bytes | None,
) -> bytes:
    """``http.v1.Request`` with its fields in number order, as protobuf
    writes them. ``headers`` are (name, ``map_entry``) pairs, ``cookies``
    (name, value) pairs; both are written sorted by name, as Go's
    deterministic encoding sorts them (upb would put "Accept-Encoding"
    before "Accept"). PHP reads maps: the order only makes one request's
    bytes always the same.
    """
    first = (remote_addr, protocol, method)
    parts = [_known_firsts.get(first) or _first_fields(first)]
    if uri:
        parts.append(_string_field(_URI, uri.encode()))
    parts += [entry for _, entry in sorted(headers)]
    parts += [map_entry(COOKIE, name, (value,)) for name, value in sorted(cookies)]
    if raw_query:
        parts.append(_string_field(_RAW_QUERY, raw_query.encode()))
    if parsed:
        parts.append(_PARSED)
    if uploads:
        parts.append(_string_field(_UPLOADS, uploads))
    return b"".join(parts)
