"""RPC framing (PROTOCOL.md 5.1): requests, replies, codec echo, bad calls."""

from __future__ import annotations

import pytest

from trio_runner.errors import BadRpcCall
from trio_runner.protocol import (
    Codec,
    FrameDecoder,
    encode_error,
    encode_frame,
    encode_reply,
    encode_request,
    parse_reply,
    parse_request,
    reply_codec,
)
from trio_runner.protocol.frame import Frame
from trio_runner.protocol.rpc import OPTIONS_ERROR


def frame_of(data: bytes) -> Frame:
    decoder = FrameDecoder()
    decoder.feed(data)
    frame = decoder.next_frame()
    assert frame is not None
    assert decoder.buffered == b""
    return frame


def test_rpc_request_matches_the_golden_frame(golden_frames) -> None:
    golden = golden_frames["i_rpc_request"]
    wire = encode_request(1, "informer.Workers", Codec.JSON, b'"http"')
    assert wire.hex() == golden["frame"]
    request = parse_request(frame_of(bytes.fromhex(golden["frame"])))
    assert request.seq == 1
    assert request.method == "informer.Workers"
    assert request.codec is Codec.JSON
    assert request.body == b'"http"'


def test_rpc_reply_echoes_seq_method_and_codec() -> None:
    wire = encode_reply(7, "informer.Workers", Codec.JSON, b'{"workers":[]}')
    frame = frame_of(wire)
    assert frame.flags == 0x08
    assert frame.options == (7, 16)
    assert frame.payload == b'informer.Workers{"workers":[]}'
    reply = parse_reply(frame)
    assert (reply.seq, reply.method, reply.body, reply.error) == (
        7,
        "informer.Workers",
        b'{"workers":[]}',
        None,
    )


def test_rpc_error_reply_adds_the_error_bit_and_keeps_the_method() -> None:
    frame = frame_of(encode_error(3, "a.B", Codec.PROTO, "boom"))
    assert frame.flags == 0x80 | 0x40
    assert frame.options == (3, 3)
    assert frame.payload == b"a.Bboom"
    reply = parse_reply(frame)
    assert reply.error == "boom"
    assert reply.codec is Codec.PROTO


@pytest.mark.parametrize(
    ("flags", "codec"),
    [
        (0x08, Codec.JSON),
        (0x80, Codec.PROTO),
        (0x04, Codec.RAW),
        (0x10, Codec.MSGPACK),
        (0x20, Codec.GOB),
        (0x00, Codec.GOB),
        (0x08 | 0x80, Codec.PROTO),
        (0x04 | 0x08, Codec.JSON),
        (0x10 | 0x04, Codec.RAW),
        (0x20 | 0x10, Codec.MSGPACK),
    ],
)
def test_rpc_reply_codec_precedence(flags: int, codec: Codec) -> None:
    assert reply_codec(flags) is codec


@pytest.mark.parametrize("options", [(), (5,), (5, 1, 2)])
def test_rpc_request_needs_exactly_two_options(options: tuple[int, ...]) -> None:
    frame = frame_of(encode_frame(0x08, b"a.B", options))
    with pytest.raises(BadRpcCall) as info:
        parse_request(frame)
    assert (
        info.value.text
        == OPTIONS_ERROR
        == ("should be 2 options. SEQ_ID and METHOD_LEN")
    )
    assert info.value.seq == (options[0] if options else 0)


def test_rpc_request_method_length_past_the_payload_is_a_bad_call() -> None:
    frame = frame_of(encode_frame(0x08, b"a.B", (1, 50)))
    with pytest.raises(BadRpcCall, match="method name length 50 is longer"):
        parse_request(frame)


def test_rpc_reply_without_two_options_is_refused() -> None:
    with pytest.raises(ValueError, match="2 options"):
        parse_reply(frame_of(encode_frame(0x08, b"x", (1,))))
