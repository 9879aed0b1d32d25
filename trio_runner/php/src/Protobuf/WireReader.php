<?php

declare(strict_types=1);

namespace TrioRunner\Protobuf;

use TrioRunner\Exception\ProtocolException;

/**
 * Reads the protobuf wire format field by field, just enough for the few
 * messages the HTTP worker decodes (no protobuf extension needed).
 *
 *     $reader = new WireReader($bytes);
 *     while ($reader->next()) {
 *         match ($reader->field()) {
 *             1 => $name = $reader->bytes(),
 *             default => $reader->skip(),
 *         };
 *     }
 *
 * Every field must be consumed by exactly one of varint(), bytes(),
 * message() or skip(). skip() handles wire types 0, 1, 2 and 5; groups
 * (3, 4) are long deprecated and rejected.
 *
 * @internal
 */
final class WireReader
{
    public const VARINT = 0;
    public const FIXED64 = 1;
    public const LENGTH_DELIMITED = 2;
    public const FIXED32 = 5;

    private int $pos = 0;
    private int $field = 0;
    private int $wireType = 0;

    public function __construct(
        private readonly string $data,
        private readonly string $what = 'protobuf message',
    ) {
    }

    /** Move to the next field; false at the end of the message. */
    public function next(): bool
    {
        if ($this->pos >= strlen($this->data)) {
            return false;
        }
        $key = $this->readVarint();
        $this->field = $key >> 3;
        $this->wireType = $key & 0x07;
        if ($this->field === 0) {
            throw $this->malformed('field number 0');
        }

        return true;
    }

    public function field(): int
    {
        return $this->field;
    }

    public function wireType(): int
    {
        return $this->wireType;
    }

    /** The current field as an integer (int64/uint64 as PHP int, bool as 0/1). */
    public function varint(): int
    {
        $this->expect(self::VARINT);

        return $this->readVarint();
    }

    /** The current length-delimited field (string, bytes, message). */
    public function bytes(): string
    {
        $this->expect(self::LENGTH_DELIMITED);
        $length = $this->readVarint();
        if ($length < 0 || $length > strlen($this->data) - $this->pos) {
            throw $this->malformed("length $length runs past the end");
        }
        $bytes = substr($this->data, $this->pos, $length);
        $this->pos += $length;

        return $bytes;
    }

    /** A reader over the current field, an embedded message. */
    public function message(string $what): self
    {
        return new self($this->bytes(), $what);
    }

    /** Step over the current field, whatever its wire type. */
    public function skip(): void
    {
        match ($this->wireType) {
            self::VARINT => $this->readVarint(),
            self::LENGTH_DELIMITED => $this->bytes(),
            self::FIXED64 => $this->advance(8),
            self::FIXED32 => $this->advance(4),
            default => throw $this->malformed(
                "unsupported wire type {$this->wireType} in field {$this->field}",
            ),
        };
    }

    private function advance(int $size): void
    {
        if ($size > strlen($this->data) - $this->pos) {
            throw $this->malformed("field {$this->field} runs past the end");
        }
        $this->pos += $size;
    }

    private function readVarint(): int
    {
        // Tags and the lengths of short strings are one byte.
        if ($this->pos < strlen($this->data)) {
            $byte = ord($this->data[$this->pos]);
            if ($byte < 0x80) {
                $this->pos++;

                return $byte;
            }
        }
        $result = 0;
        for ($shift = 0; $shift < 64; $shift += 7) {
            if ($this->pos >= strlen($this->data)) {
                throw $this->malformed('varint runs past the end');
            }
            $byte = ord($this->data[$this->pos++]);
            $result |= ($byte & 0x7F) << $shift;
            if ($byte < 0x80) {
                return $result;
            }
        }

        throw $this->malformed('varint longer than 10 bytes');
    }

    private function expect(int $wireType): void
    {
        if ($this->wireType !== $wireType) {
            throw $this->malformed(sprintf(
                'field %d has wire type %d, expected %d',
                $this->field,
                $this->wireType,
                $wireType,
            ));
        }
    }

    private function malformed(string $why): ProtocolException
    {
        return new ProtocolException(sprintf(
            'malformed %s at byte %d: %s',
            $this->what,
            $this->pos,
            $why,
        ));
    }
}
