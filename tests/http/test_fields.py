"""The header field checks, against RFC 9110's grammar byte by byte."""

from __future__ import annotations

import re

import pytest

from trio_runner.http.fields import invalid_value_bytes, is_token

# RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-"
# / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TCHAR = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]")
# RFC 9110 5.5: field-vchar = VCHAR / obs-text, plus SP and HTAB inside.
VALUE_BYTE = re.compile(rb"[\t -~\x80-\xff]")


@pytest.mark.parametrize("byte", [bytes([b]) for b in range(256)])
def test_every_byte_is_judged_as_the_rfc_says(byte: bytes) -> None:
    assert is_token(b"a" + byte) == bool(TCHAR.fullmatch(byte))
    is_valid = bool(VALUE_BYTE.fullmatch(byte))
    assert invalid_value_bytes(b"v" + byte + b"v") == (b"" if is_valid else byte)


def test_a_token_is_not_empty() -> None:
    assert not is_token(b"")
    assert is_token(b"X-Request-Id")
    assert not is_token(b"Bad Name")


def test_invalid_value_bytes_keeps_each_bad_byte_in_order() -> None:
    cookie = b"session=" + b"A" * 4000 + b"; path=/"
    assert invalid_value_bytes(cookie) == b""
    assert invalid_value_bytes(b"a\r\nb\x00c\r") == b"\r\n\x00\r"
