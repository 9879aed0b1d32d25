<?php

declare(strict_types=1);

namespace TrioRunner;

use TrioRunner\Exception\FrameException;

/**
 * One goridge frame, the unit of every exchange with the server.
 *
 * Layout (PROTOCOL.md section 1; integers little-endian):
 *
 *     0        1      2..5          6..9           10      11   12..     ..
 *     [1 | HL] flags  payload len   crc32(0..5)    stream  0    options  payload
 *
 * HL is the header length in 32-bit words: 3 plus the number of options.
 * The CRC covers bytes 0-5 only. encode() returns the whole frame as one
 * string so a relay writes it with one fwrite (PROTOCOL.md 8.3a). Unlike
 * RoadRunner's PHP library, decoding checks the CRC: a mismatch almost
 * always means something else wrote into the relay's byte stream.
 */
final class Frame
{
    public const VERSION = 1;
    public const HEADER_SIZE = 12;
    /** goridge refuses more than 40 option bytes. */
    public const MAX_OPTIONS = 10;

    // Byte 1: flags. Codec bits combine with CONTROL or ERROR.
    public const CONTROL = 0x01;
    public const CODEC_RAW = 0x04;
    public const CODEC_JSON = 0x08;
    public const CODEC_MSGPACK = 0x10;
    public const CODEC_GOB = 0x20;
    public const ERROR = 0x40;
    public const CODEC_PROTO = 0x80;

    // Byte 10: the streamed-response handshake (PROTOCOL.md 3.7).
    /** Worker: more chunks follow this one. */
    public const STREAM = 0x01;
    /** Server: cancel the stream in progress. */
    public const STOP = 0x02;
    /** Worker: please answer with PONG. */
    public const PING = 0x04;
    /** Server: the answer to PING. */
    public const PONG = 0x08;

    /**
     * @param int $flags byte 1, an OR of the flag constants
     * @param list<int> $options uint32 words; data frames carry exactly one,
     *                           the context length
     * @param string $payload the bytes after the options
     * @param int $stream byte 10, an OR of STREAM, STOP, PING, PONG
     *
     * @throws FrameException when a value does not fit the header
     */
    public function __construct(
        public readonly int $flags = 0,
        public readonly array $options = [],
        public readonly string $payload = '',
        public readonly int $stream = 0,
    ) {
        if ($flags < 0 || $flags > 0xFF) {
            throw new FrameException("frame flags must fit in one byte (0-255), got $flags");
        }
        if ($stream < 0 || $stream > 0xFF) {
            throw new FrameException("frame stream byte must be 0-255, got $stream");
        }
        if (!array_is_list($options) || count($options) > self::MAX_OPTIONS) {
            throw new FrameException(sprintf(
                'a frame carries a list of at most %d options, got %d',
                self::MAX_OPTIONS,
                count($options),
            ));
        }
        foreach ($options as $option) {
            if (!is_int($option) || $option < 0 || $option > 0xFFFFFFFF) {
                throw new FrameException(
                    'frame options must be integers from 0 to 2^32-1, got '
                    . var_export($option, true),
                );
            }
        }
        if (strlen($payload) > 0xFFFFFFFF) {
            throw new FrameException('frame payload is longer than 2^32-1 bytes');
        }
    }

    /** The whole frame, header, options and payload, as one string. */
    public function encode(): string
    {
        $head = pack(
            'CCV',
            (self::VERSION << 4) | (3 + count($this->options)),
            $this->flags,
            strlen($this->payload),
        );
        $options = $this->options === [] ? '' : pack('V*', ...$this->options);

        return $head . pack('VCC', crc32($head), $this->stream, 0) . $options . $this->payload;
    }

    /**
     * How many bytes follow a header (options plus payload). A relay reads
     * the 12 header bytes, asks this, then reads exactly that many more.
     *
     * @throws FrameException when the header is short, its CRC does not
     *                        match or its header length is impossible
     */
    public static function restLength(string $header): int
    {
        [$optionCount, , $payloadLength] = self::parseHeader($header);

        return 4 * $optionCount + $payloadLength;
    }

    /**
     * Build a frame from its 12 header bytes and everything after them.
     *
     * @throws FrameException when the bytes are not exactly one valid frame
     */
    public static function decode(string $header, string $rest): self
    {
        [$optionCount, $flags, $payloadLength, $stream] = self::parseHeader($header);
        $expected = 4 * $optionCount + $payloadLength;
        if (strlen($rest) !== $expected) {
            throw new FrameException(sprintf(
                'frame header announces %d option(s) and %d payload bytes (%d bytes'
                . ' after the header) but %d bytes were given',
                $optionCount,
                $payloadLength,
                $expected,
                strlen($rest),
            ));
        }
        $options = $optionCount === 0
            ? []
            : array_values(unpack('V' . $optionCount, $rest));

        return new self($flags, $options, substr($rest, 4 * $optionCount), $stream);
    }

    /**
     * Build a frame from one complete encoded frame.
     *
     * @throws FrameException when the bytes are not exactly one valid frame
     */
    public static function fromBytes(string $bytes): self
    {
        return self::decode(
            substr($bytes, 0, self::HEADER_SIZE),
            (string) substr($bytes, self::HEADER_SIZE),
        );
    }

    public function isControl(): bool
    {
        return ($this->flags & self::CONTROL) !== 0;
    }

    public function isError(): bool
    {
        return ($this->flags & self::ERROR) !== 0;
    }

    /** True when byte 10 has every bit of $bits (STREAM, STOP, PING, PONG). */
    public function hasStreamFlag(int $bits): bool
    {
        return ($this->stream & $bits) === $bits;
    }

    /**
     * @return array{int, int, int, int} option count, flags, payload length,
     *                                    stream byte
     */
    private static function parseHeader(string $header): array
    {
        if (strlen($header) !== self::HEADER_SIZE) {
            throw new FrameException(sprintf(
                'a frame header is exactly %d bytes, got %d (%s)',
                self::HEADER_SIZE,
                strlen($header),
                bin2hex($header),
            ));
        }
        $h = unpack('Cfirst/Cflags/Vlength/Vcrc/Cstream', $header);
        $computed = crc32(substr($header, 0, 6));
        if ($h['crc'] !== $computed) {
            throw new FrameException(sprintf(
                'frame header CRC mismatch: stored 0x%08x, computed 0x%08x over'
                . ' bytes 0-5 (header %s). The byte stream is out of sync; in'
                . ' pipe mode this usually means something else wrote to the'
                . ' relay. Restart the worker.',
                $h['crc'],
                $computed,
                bin2hex($header),
            ));
        }
        $headerWords = $h['first'] & 0x0F;
        $optionCount = $headerWords - 3;
        if ($optionCount < 0 || $optionCount > self::MAX_OPTIONS) {
            throw new FrameException(sprintf(
                'frame header length must be 3 to %d words, got %d (header %s)',
                3 + self::MAX_OPTIONS,
                $headerWords,
                bin2hex($header),
            ));
        }

        return [$optionCount, $h['flags'], $h['length'], $h['stream']];
    }
}
