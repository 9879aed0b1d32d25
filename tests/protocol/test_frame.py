from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trio_runner.errors import FrameCorrupted, RemoteProtocolError, ScriptNotFound
from trio_runner.protocol import FrameDecoder, encode_frame

GOLDEN = json.loads(
    (Path(__file__).parent.parent / "golden" / "frames.json").read_text()
)["frames"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_encode_frame_matches_golden_bytes(name: str) -> None:
    spec = GOLDEN[name]
    encoded = encode_frame(
        spec["flags"],
        bytes.fromhex(spec["payload"]),
        tuple(spec["options"]),
        spec["stream"],
    )
    assert encoded.hex() == spec["frame"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_decoder_reads_golden_frame_fed_byte_by_byte(name: str) -> None:
    spec = GOLDEN[name]
    wire = bytes.fromhex(spec["frame"])
    decoder = FrameDecoder()
    for i, byte in enumerate(wire):
        assert decoder.next_frame() is None, f"frame complete after {i} bytes"
        decoder.feed(bytes([byte]))
    frame = decoder.next_frame()
    assert frame is not None
    assert frame.flags == spec["flags"]
    assert list(frame.options) == spec["options"]
    assert frame.stream == spec["stream"]
    assert frame.payload.hex() == spec["payload"]
    assert decoder.next_frame() is None
    assert decoder.buffered == b""


def test_decoder_splits_several_frames_from_one_read() -> None:
    wire = encode_frame(0, b"one", (1,)) + encode_frame(0x40, b"two") + b"\x13"
    decoder = FrameDecoder()
    decoder.feed(wire)
    first = decoder.next_frame()
    second = decoder.next_frame()
    assert first is not None and first.payload == b"one" and first.options == (1,)
    assert second is not None and second.payload == b"two" and second.flags == 0x40
    assert decoder.next_frame() is None
    assert decoder.buffered == b"\x13"


def test_decoder_reports_stray_stdout_as_corrupted_frame() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"hello from an echo\n" + encode_frame(0, b"x", (0,)))
    with pytest.raises(FrameCorrupted, match="wrote to stdout") as info:
        decoder.next_frame()
    assert info.value.data.startswith(b"hello from an echo\n")
    with pytest.raises(RemoteProtocolError, match="already broken"):
        decoder.next_frame()


def test_decoder_reports_missing_script() -> None:
    decoder = FrameDecoder()
    decoder.feed(b"Could not open input file: nope.php\n")
    with pytest.raises(ScriptNotFound, match=r"nope\.php"):
        decoder.next_frame()


def test_decoder_does_not_check_the_version_nibble() -> None:
    # Go ignores the version nibble (PROTOCOL.md 1.5); so do we. The CRC must
    # still match, so build a header with version 2 by hand.
    import struct
    import zlib

    head = struct.pack("<BBI", 0x23, 0, 0)
    wire = head + struct.pack("<I", zlib.crc32(head)) + b"\x00\x00"
    decoder = FrameDecoder()
    decoder.feed(wire)
    frame = decoder.next_frame()
    assert frame is not None and frame.payload == b""


def test_decoder_rejects_impossible_header_length() -> None:
    import struct
    import zlib

    head = struct.pack("<BBI", 0x12, 0, 0)  # HL=2 is shorter than a header
    decoder = FrameDecoder()
    decoder.feed(head + struct.pack("<I", zlib.crc32(head)) + b"\x00\x00")
    with pytest.raises(RemoteProtocolError, match="3 to 13 words, got 2"):
        decoder.next_frame()


def test_encode_frame_refuses_eleven_options() -> None:
    with pytest.raises(ValueError, match="at most 10 options, got 11"):
        encode_frame(0, b"", tuple(range(11)))


def test_protocol_package_does_not_import_trio() -> None:
    code = (
        "import sys, trio_runner.protocol; "
        "assert 'trio' not in sys.modules, 'protocol imported trio'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
