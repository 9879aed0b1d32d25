"""goridge frames: the unit of every exchange with a PHP worker and RPC client.

Layout (PROTOCOL.md section 1; all integers little-endian)::

    0      1      2..5         6..9          10      11     12..      ..
    +------+------+------------+-------------+-------+------+---------+---------+
    | 1|HL | flags| payload len| crc32(0..5) | stream| 0    | options | payload |
    +------+------+------------+-------------+-------+------+---------+---------+

``HL`` is the header length in 32-bit words: 3 plus the number of options.
The CRC covers bytes 0-5 only. ``encode_frame`` returns one ``bytes`` so the
caller can hand it to a single ``write``: PHP reads the 12 header bytes with
one ``fread`` on pipes and fails on a split header (PROTOCOL.md 8.3a).

``FrameDecoder`` is incremental: feed it whatever arrived, then take frames
out until it says it needs more. It never does I/O.
"""

from __future__ import annotations

import enum
import struct
import zlib

import attrs

from trio_runner.errors import FrameCorrupted, RemoteProtocolError, ScriptNotFound

__all__ = [
    "CONTROL",
    "ERROR",
    "HEADER_SIZE",
    "MAX_OPTIONS",
    "Codec",
    "Flag",
    "Frame",
    "FrameDecoder",
    "StreamFlag",
    "encode_frame",
]


class Flag(enum.IntFlag):
    """Byte 1 of the header. Codec bits and the two kinds bits combine."""

    CONTROL = 0x01
    CODEC_RAW = 0x04
    CODEC_JSON = 0x08
    CODEC_MSGPACK = 0x10
    CODEC_GOB = 0x20
    ERROR = 0x40
    CODEC_PROTO = 0x80


class Codec(enum.IntEnum):
    """The codec bits of byte 1, for code that picks exactly one."""

    NONE = 0
    RAW = Flag.CODEC_RAW
    JSON = Flag.CODEC_JSON
    MSGPACK = Flag.CODEC_MSGPACK
    GOB = Flag.CODEC_GOB
    PROTO = Flag.CODEC_PROTO


class StreamFlag(enum.IntFlag):
    """Byte 10 of the header: the streamed-response handshake."""

    STREAM = 0x01  # worker: more chunks follow
    STOP = 0x02  # server: cancel the stream in progress
    PING = 0x04  # worker: answer with PONG
    PONG = 0x08  # server: answer to PING


# Plain ints for the hot path; the enums above are for reading and repr.
CONTROL = int(Flag.CONTROL)
ERROR = int(Flag.ERROR)

HEADER_SIZE = 12
MAX_OPTIONS = 10  # goridge's OptionsMaxSize is 40 bytes
_VERSION = 1

# The first 12 bytes of PHP's "Could not open input file: ..." (section 1.5).
_COULD_NOT_OPEN = b"Could not op"

# How much of a corrupted stream an error carries for the log.
STRAY_PREVIEW = 512

_head = struct.Struct("<BBI")
_full_head = struct.Struct("<BBIIBB")
# Bytes 6 on (the CRC, the stream byte, a zero, the options) for each
# option count, and the options alone: compiled once, not per frame.
_rest = tuple(struct.Struct(f"<IBB{count}I") for count in range(MAX_OPTIONS + 1))
_options = tuple(struct.Struct(f"<{count}I") for count in range(MAX_OPTIONS + 1))


@attrs.frozen(slots=True)
class Frame:
    """One goridge frame.

    Attributes:
        flags: byte 1, an OR of ``Flag`` bits.
        options: up to ten uint32 words.
        payload: the bytes after the options.
        stream: byte 10, an OR of ``StreamFlag`` bits.
    """

    flags: int = 0
    options: tuple[int, ...] = ()
    payload: bytes = b""
    stream: int = 0

    def __repr__(self) -> str:
        preview = self.payload[:48]
        more = "..." if len(self.payload) > 48 else ""
        return (
            f"Frame(flags={Flag(self.flags)!r}, options={self.options}, "
            f"stream={StreamFlag(self.stream)!r}, payload={preview!r}{more})"
        )


def encode_frame(
    flags: int,
    payload: bytes = b"",
    options: tuple[int, ...] = (),
    stream: int = 0,
    *,
    tail: bytes = b"",
) -> bytes:
    """Return the whole frame as one ``bytes``, ready for a single write.

    ``tail`` is more payload, after ``payload``: a request's body after its
    context, without first joining the two (a large body is copied once).

    Raises:
        ValueError: more than ``MAX_OPTIONS`` options, or an option or the
            payload length that does not fit in 32 bits.
    """
    count = len(options)
    if count > MAX_OPTIONS:
        raise ValueError(f"a frame carries at most {MAX_OPTIONS} options, got {count}")
    head = _head.pack((_VERSION << 4) | (3 + count), flags, len(payload) + len(tail))
    rest = _rest[count].pack(zlib.crc32(head), stream, 0, *options)
    return b"".join((head, rest, payload, tail))


class FrameDecoder:
    """Turns a byte stream into frames, incrementally.

    ``feed`` appends bytes; ``next_frame`` returns the next complete frame or
    None when more bytes are needed. Once it has raised, the stream is
    unusable: frame boundaries are lost.
    """

    __slots__ = ("_broken", "_buffer")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._broken = False

    def feed(self, data: bytes) -> None:
        self._buffer += data

    @property
    def buffered(self) -> bytes:
        """Bytes received but not yet part of a returned frame."""
        return bytes(self._buffer)

    def __len__(self) -> int:
        """How many bytes ``buffered`` holds, without copying them."""
        return len(self._buffer)

    def next_frame(self) -> Frame | None:
        """Return the next complete frame, or None if more bytes are needed.

        Raises:
            ScriptNotFound: the stream starts with PHP's "Could not open
                input file" message.
            FrameCorrupted: a header failed its CRC check (stray output).
            RemoteProtocolError: an impossible header length.
        """
        buffer = self._buffer
        if self._broken:
            raise RemoteProtocolError("the frame stream is already broken")
        if len(buffer) < HEADER_SIZE:
            return None
        first, flags, length, crc, stream, _ = _full_head.unpack_from(buffer)
        if crc != zlib.crc32(buffer[:6]):
            self._broken = True
            self._fail_on_garbage()
        words = first & 0x0F
        if not 3 <= words <= 3 + MAX_OPTIONS:
            self._broken = True
            raise RemoteProtocolError(
                f"frame header length must be 3 to {3 + MAX_OPTIONS} words, got {words}"
            )
        start = words * 4
        end = start + length
        if len(buffer) < end:
            return None
        options: tuple[int, ...] = ()
        if words > 3:
            options = _options[words - 3].unpack_from(buffer, HEADER_SIZE)
        # One copy: a bytearray slice would be a copy of its own, made
        # only to be copied again into bytes.
        with memoryview(buffer) as view:
            payload = bytes(view[start:end])
        del buffer[:end]
        return Frame(flags, options, payload, stream)

    def _fail_on_garbage(self) -> None:
        stray = bytes(self._buffer[:STRAY_PREVIEW])
        if stray.startswith(_COULD_NOT_OPEN):
            raise ScriptNotFound(
                "PHP could not open the worker script: "
                + stray.decode("utf-8", "replace").strip(),
                output=stray,
            )
        raise FrameCorrupted(
            "invalid frame header (CRC mismatch): the worker wrote to stdout "
            f"outside the protocol; stray bytes: {stray[:120]!r}",
            data=stray,
        )
