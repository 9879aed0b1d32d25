"""``http.v1.Request`` as ``proto/wire.py`` writes it, read back by protobuf."""

from __future__ import annotations

import random
import string

from trio_runner.http.proto import http_pb2, wire
from trio_runner.http.request import RequestContext


def _protobuf_message(context: RequestContext) -> http_pb2.Request:
    """The same context, built with protobuf's own message API."""
    message = http_pb2.Request(
        remote_addr=context.remote_addr,
        protocol=context.protocol,
        method=context.method,
        uri=context.uri,
        raw_query=context.raw_query,
        parsed=context.parsed,
        uploads=context.uploads or b"",
    )
    for name, values in context.headers:
        message.header[name].value.extend(values)
    for name, value in context.cookies:
        message.cookies[name].value.append(value)
    return message


def _wire_fields(encoded: bytes) -> list[tuple[int, bytes | int]]:
    """The (field number, value) pairs of a protobuf message, in wire order."""

    def varint(position: int) -> tuple[int, int]:
        number = shift = 0
        while True:
            byte = encoded[position]
            number |= (byte & 0x7F) << shift
            shift += 7
            position += 1
            if byte < 0x80:
                return number, position

    fields: list[tuple[int, bytes | int]] = []
    position = 0
    while position < len(encoded):
        key, position = varint(position)
        value, position = varint(position)
        if key & 7 == 2:  # length-delimited: the varint was the length
            fields.append((key >> 3, encoded[position : position + value]))
            position += value
        else:
            fields.append((key >> 3, value))
    return fields


def _random_contexts(count: int) -> list[RequestContext]:
    rng = random.Random(6)
    letters = string.ascii_letters + "-é€ /:%?"

    def text(longest: int) -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randint(0, longest)))

    def raw(longest: int) -> bytes:
        return rng.randbytes(rng.randint(0, longest))

    contexts = []
    for i in range(count):
        # Values past 127 bytes take varints of two bytes and more; names
        # that begin other names ("Accept", "Accept-Encoding") test the
        # order of map entries.
        names = {text(10) or "X" for _ in range(rng.randint(0, 6))}
        names |= {name + "-Encoding" for name in names if rng.random() < 0.4}
        contexts.append(
            RequestContext(
                remote_addr=text(40),
                protocol=text(8),
                method=text(7),
                uri=text(300 if i % 2 else 20),
                headers=tuple(
                    (name, tuple(raw(300 if i % 3 == 0 else 12) for _ in range(3)))
                    for name in rng.sample(sorted(names), len(names))
                ),
                cookies=tuple((name, raw(20)) for name in {text(6) for _ in range(3)}),
                raw_query=text(200),
                parsed=rng.random() < 0.5,
                uploads=rng.choice([None, b"", b"{}", raw(400)]),
            )
        )
    return contexts


def test_proto_context_is_the_message_protobuf_builds_in_field_order() -> None:
    # to_proto writes the wire format itself: protobuf must read back what
    # its own API builds, fields in number order, map entries by name.
    for context in _random_contexts(400):
        encoded = context.to_proto()
        assert http_pb2.Request.FromString(encoded) == _protobuf_message(context)
        fields = _wire_fields(encoded)
        numbers = [number for number, _ in fields]
        assert numbers == sorted(numbers)
        for table in (5, 6):
            names = [
                bytes(_wire_fields(value)[0][1])  # type: ignore[arg-type]
                for number, value in fields
                if number == table
            ]
            assert names == sorted(names)


def test_proto_context_of_a_plain_request_is_protobufs_bytes() -> None:
    # No name begins another: every protobuf encoder orders these alike.
    context = RequestContext(
        remote_addr="::1",
        protocol="HTTP/1.1",
        method="POST",
        uri="http://localhost/" + "x" * 200,
        headers=(("User-Agent", (b"curl",)), ("Accept", (b"*/*", b"\xff" * 300))),
        cookies=(("sid", b"a b"),),
        raw_query="q=%C3%A9",
        parsed=True,
        uploads=b"{}",
    )
    expected = _protobuf_message(context).SerializeToString(deterministic=True)
    assert context.to_proto() == expected


def test_first_fields_are_remembered_boundedly_and_written_alike() -> None:
    for number in range(2 * wire._KNOWN_FIRSTS_MAX):
        context = RequestContext(
            f"10.0.{number // 256}.{number % 256}", "HTTP/1.1", "GET", "/"
        )
        again = RequestContext(context.remote_addr, "HTTP/1.1", "GET", "/")
        assert again.to_proto() == context.to_proto()
        assert http_pb2.Request.FromString(again.to_proto()).remote_addr == (
            context.remote_addr
        )
        assert len(wire._known_firsts) <= wire._KNOWN_FIRSTS_MAX
