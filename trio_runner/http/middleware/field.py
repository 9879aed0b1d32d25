"""Header fields as ASGI carries them: lists of ``(name, value)`` byte pairs.

Names in ASGI scopes are lower-case; names in an app's
``http.response.start`` need not be, so every lookup here folds case.
Nothing here does I/O; the middleware modules share these helpers so each
header rule (list syntax, ``Vary`` merging, HTTP dates) is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from email.utils import formatdate, parsedate_to_datetime

__all__ = [
    "Headers",
    "add_vary",
    "encode_table",
    "format_http_date",
    "header_values",
    "parse_http_date",
    "replace_headers",
    "single_header",
    "split_list",
    "without",
]

Headers = list[tuple[bytes, bytes]]


def header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every value of ``name`` (lower-case), in order."""
    return [bytes(value) for key, value in headers if bytes(key).lower() == name]


def single_header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The value of ``name`` when it appears exactly once, else None.

    A field that may hold one value only and arrives twice is ambiguous;
    callers treat that as absent rather than guess which line counts.
    """
    values = header_values(headers, name)
    return values[0] if len(values) == 1 else None


def split_list(values: Iterable[bytes]) -> list[bytes]:
    """The elements of a comma-separated list field, spread over any lines.

    Empty elements are dropped (RFC 9110 section 5.6.1). Quoted strings
    are not treated specially: no list field read through here has them.
    """
    return [
        stripped
        for value in values
        for item in value.split(b",")
        if (stripped := item.strip(b" \t"))
    ]


def without(headers: Iterable[tuple[bytes, bytes]], names: Iterable[bytes]) -> Headers:
    """``headers`` less every line whose name is in ``names`` (lower-case)."""
    dropped = frozenset(names)
    return [
        (bytes(key), bytes(value))
        for key, value in headers
        if bytes(key).lower() not in dropped
    ]


def replace_headers(
    headers: Iterable[tuple[bytes, bytes]], added: Iterable[tuple[bytes, bytes]]
) -> Headers:
    """``headers`` with each name in ``added`` replaced by the added lines."""
    added = list(added)
    return without(headers, (key for key, _ in added)) + added


def encode_table(table: Mapping[str, str]) -> Headers:
    """A config header table (``{X-Powered-By = "..."}``) as ASGI lines.

    Names are tokens (the config checked them); values are sent as UTF-8.
    """
    return [
        (name.lower().encode("ascii"), value.encode("utf-8"))
        for name, value in table.items()
    ]


def add_vary(headers: Headers, *tokens: bytes) -> Headers:
    """``headers`` whose ``Vary`` names each of ``tokens``, merged into one line.

    ``Vary: *`` already says everything and is left alone.
    """
    current = split_list(header_values(headers, b"vary"))
    if any(token == b"*" for token in current):
        return headers
    known = {token.lower() for token in current}
    merged = current + [token for token in tokens if token.lower() not in known]
    if merged == current and len(header_values(headers, b"vary")) <= 1:
        return headers
    return [*without(headers, [b"vary"]), (b"vary", b", ".join(merged))]


def format_http_date(timestamp: float) -> bytes:
    """An IMF-fixdate such as ``Sun, 06 Nov 1994 08:49:37 GMT``."""
    return formatdate(int(timestamp), usegmt=True).encode("ascii")


def parse_http_date(value: bytes) -> float | None:
    """Seconds since the epoch of an HTTP date, None when it is not one."""
    try:
        moment = parsedate_to_datetime(value.decode("latin-1"))
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None  # an HTTP date is always GMT; a naive one is malformed
    return moment.timestamp()
