"""Form parsing without I/O: names, the data tree, url-encoded and multipart.

The name and tree cases were checked against PHP 8.2's own ``parse_str``;
where trio_runner differs on purpose (an empty value never replaces an
array) the case says so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from trio_runner.http.forms import (
    MAX_DEPTH,
    MAX_PARTS,
    FormError,
    FormKind,
    FormTree,
    MultipartReader,
    PartData,
    PartEnd,
    PartEvent,
    PartStart,
    decode_text,
    form_kind,
    parse_urlencoded,
    split_name,
)


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        (b"a", [b"a"]),
        (b"a[]", [b"a", None]),
        (b"a[b][c]", [b"a", b"b", b"c"]),
        (b"a[ ]", [b"a", None]),  # "[ ]" appends too
        (b"a[ b]", [b"a", b" b"]),
        (b"e f", [b"e_f"]),  # spaces and dots in the first key become _
        (b"a.b[c.d]", [b"a_b", b"c.d"]),
        (b"  a", [b"a"]),  # leading spaces go
        (b"columns[]row1", [b"columns", None]),  # text after "]" is ignored
        (b"a[b]c[d]", [b"a", b"b"]),
        (b"a[b.c d", [b"a_b_c_d"]),  # an unclosed first bracket is kept as _
        (b"a[b][c", [b"a", b"b"]),  # an unclosed later one is dropped
        (b"a[b[c]", [b"a", b"b[c"]),
        (b"a[[b]]", [b"a", b"[b"]),
        (b"a]b", [b"a]b"]),
        (b"a\0b[c]", [b"a"]),  # a NUL ends the name
        (b"", None),
        (b"[a]", None),
        (b" [a]", None),
        (b"a" + b"[x]" * (MAX_DEPTH - 1), [b"a"] + [b"x"] * (MAX_DEPTH - 1)),
        (b"a" + b"[x]" * MAX_DEPTH, None),
    ],
)
def test_split_name_cuts_keys_as_php(name: bytes, keys: list[bytes] | None) -> None:
    assert split_name(name) == keys


def tree_of(body: bytes) -> Any:
    tree = FormTree[str]()
    for name, value in parse_urlencoded(body):
        tree.add(name, decode_text(value))
    return json.loads(tree.to_json())


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            b"columns%5B%5Drow1=fullname&columns%5B%5Drow2=phone&columns%5B%5Drow3=0",
            {"columns": ["fullname", "phone", "0"]},
        ),
        (
            b"a[]=1&a[]=2&b[x][y]=3&c=&d&e+f=g+h&i=%20j",
            {
                "a": ["1", "2"],
                "b": {"x": {"y": "3"}},
                "c": "",
                "d": "",
                "e_f": "g h",
                "i": " j",
            },
        ),
        (b"a=1&a=2", {"a": "2"}),  # the last value wins
        (b"a=1&a=", {"a": ""}),  # ...even an empty one, over a value
        (b"a[5]=x&a[]=y", {"a": {"5": "x", "6": "y"}}),
        (b"a[-5]=x&a[]=y", {"a": {"-5": "x", "-4": "y"}}),
        (b"a[05]=x&a[]=y", {"a": {"05": "x", "0": "y"}}),  # "05" is no integer
        (b"a[1]=x&a[0]=y", {"a": {"1": "x", "0": "y"}}),  # out of order: a map
        (b"a[]=1&a[x]=2&a[]=3", {"a": {"0": "1", "x": "2", "1": "3"}}),
        (b"x[][y]=1&x[][y]=2", {"x": [{"y": "1"}, {"y": "2"}]}),
        (b"0=a&1=b", {"0": "a", "1": "b"}),  # the root is always a map
        (b"a=%zz&b=%4&c=%41", {"a": "%zz", "b": "%4", "c": "A"}),
        (b"a;b=1&c=2;d", {"a;b": "1", "c": "2;d"}),  # only & separates
        (b"&&a=1&&", {"a": "1"}),
        (b"=1&%5B%5D=2", {}),  # empty first keys: dropped
        # Not UTF-8: U+FFFD for each bad byte, as RoadRunner's JSON has it.
        (b"n=%E9t%C3%A9", {"n": "\ufffdt\u00e9"}),
        (b"n=%E2%82A", {"n": "\ufffd\ufffdA"}),  # a cut sequence: per byte
        (b"n=%ED%A0%80&o=%C0%80", {"n": "\ufffd" * 3, "o": "\ufffd" * 2}),
        (b"caf%E9[x]=1", {"caf\ufffd": {"x": "1"}}),
        (b"n=%C3%A9", {"n": "\u00e9"}),
        (b"", {}),
    ],
)
def test_form_tree_builds_what_php_parses(body: bytes, expected: Any) -> None:
    assert tree_of(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # A value and an array under one key: the later field wins, as in
        # PHP (RoadRunner fails the request with a 500)...
        (b"a=1&a[b]=2", {"a": {"b": "2"}}),
        (b"a[b]=2&a=1", {"a": "1"}),
        (b"a[b][c]=1&a[b]=2", {"a": {"b": "2"}}),
        (b"a=1&a[]=2", {"a": ["2"]}),
        # ...but an empty value never replaces an array (RoadRunner's rule;
        # PHP would give "" for the second one).
        (b"o=&o[0][id]=7", {"o": [{"id": "7"}]}),
        (b"o[0][id]=7&o=", {"o": [{"id": "7"}]}),
        (b"o[0][id]=7&o[0]=", {"o": [{"id": "7"}]}),
    ],
)
def test_form_tree_conflict_rule(body: bytes, expected: Any) -> None:
    assert tree_of(body) == expected


def test_form_tree_ignores_names_past_the_depth_limit() -> None:
    deep = b"a" + b"[b]" * (MAX_DEPTH - 1)
    too_deep = b"z" + b"[b]" * MAX_DEPTH
    tree = tree_of(deep + b"=1&" + too_deep + b"=2")
    assert list(tree) == ["a"]
    node = tree["a"]
    for _ in range(MAX_DEPTH - 2):
        node = node["b"]
    assert node == {"b": "1"}


def test_form_tree_keeps_field_order() -> None:
    assert list(tree_of(b"b=1&a=2&c=3")) == ["b", "a", "c"]


def test_form_tree_with_other_leaves() -> None:
    tree = FormTree[int](is_empty=lambda leaf: False)
    tree.add(b"f[]", 1)
    tree.add(b"f[]", 2)
    tree.add(b"g", 3)
    assert bool(tree)
    assert tree.to_data(lambda leaf: {"n": leaf}) == {
        "f": [{"n": 1}, {"n": 2}],
        "g": {"n": 3},
    }
    assert not FormTree[int]()


@pytest.mark.parametrize(
    ("content_type", "kind", "boundary"),
    [
        (b"application/x-www-form-urlencoded", FormKind.URLENCODED, b""),
        (b"Application/X-WWW-Form-Urlencoded; charset=UTF-8", FormKind.URLENCODED, b""),
        (b"multipart/form-data; boundary=abc", FormKind.MULTIPART, b"abc"),
        (b'multipart/form-data; boundary="a;b"', FormKind.MULTIPART, b"a;b"),
        (b"multipart/form-data", FormKind.MULTIPART, b""),
        (b"multipart/mixed; boundary=abc", None, b""),
        (b"application/json", None, b""),
        (b"", None, b""),
    ],
)
def test_form_kind_reads_the_media_type(
    content_type: bytes, kind: FormKind | None, boundary: bytes
) -> None:
    assert form_kind(content_type) == (kind, boundary)


BODY = (
    b"preamble\r\n"
    b"--xyz\r\n"
    b'Content-Disposition: form-data; name="note"\r\n'
    b"\r\n"
    b"hello\r\n"
    b"--xyz\r\n"
    b'content-disposition: form-data; name="f[]"; filename="C:\\dir\\a b.txt"\r\n'
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"line 1\r\nline 2\r\n"
    b"--xyz\r\n"
    b'Content-Disposition: attachment; name="skipped"\r\n'
    b"\r\n"
    b"ignored\r\n"
    b"--xyz\r\n"
    b'Content-Disposition: form-data; name="empty"; filename=""\r\n'
    b"\r\n"
    b"\r\n"
    b"--xyz--\r\n"
    b"epilogue"
)

EVENTS: list[PartEvent] = [
    PartStart(b"note", None, b""),
    PartData(b"hello"),
    PartEnd(),
    PartStart(b"f[]", b"a b.txt", b"text/plain"),
    PartData(b"line 1\r\nline 2"),
    PartEnd(),
    PartStart(b"empty", b"", b""),
    PartEnd(),
]


def merged(events: list[PartEvent]) -> list[PartEvent]:
    """Consecutive data events joined: how the body was cut does not matter."""
    out: list[PartEvent] = []
    for event in events:
        if isinstance(event, PartData) and out and isinstance(out[-1], PartData):
            out[-1] = PartData(out[-1].data + event.data)
        else:
            out.append(event)
    return out


@pytest.mark.parametrize("piece", [1, 3, 7, 64, len(BODY)])
def test_multipart_reader_yields_parts_however_the_body_is_cut(piece: int) -> None:
    reader = MultipartReader(b"xyz")
    events: list[PartEvent] = []
    for start in range(0, len(BODY), piece):
        events += reader.feed(BODY[start : start + piece])
    reader.close()
    assert merged(events) == EVENTS


def test_multipart_reader_accepts_an_empty_body() -> None:
    reader = MultipartReader(b"xyz")
    assert reader.feed(b"") == []
    reader.close()


@pytest.mark.parametrize(
    ("boundary", "body", "message"),
    [
        (b"", b"", "no boundary"),
        (b"x" * 300, b"", "bad multipart boundary"),
        (b"xyz", b"--xyz\r\nno colon here\r\n\r\n", "malformed"),
        (b"xyz", BODY[:60], "ends before its closing boundary"),
        (b"xyz", b"no boundary anywhere", "ends before its closing boundary"),
        (b"xyz", b"--xyz", "ends before its closing boundary"),
        (
            b"xyz",
            b"--xyz\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n"
            * (MAX_PARTS + 1),
            f"more than {MAX_PARTS} parts",
        ),
    ],
)
def test_multipart_reader_refuses_malformed_bodies(
    boundary: bytes, body: bytes, message: str
) -> None:
    def parse() -> None:
        reader = MultipartReader(boundary)
        reader.feed(body)
        reader.close()

    with pytest.raises(FormError, match=message):
        parse()
