<?php

declare(strict_types=1);

namespace TrioRunner\Protobuf;

/**
 * Writes the protobuf wire format, field by field, in the order called.
 * proto3 leaves fields at their default out; callers skip them.
 *
 * @internal
 */
final class WireWriter
{
    private string $buffer = '';

    /** An int64 / uint64 / bool field (wire type 0). Negative ints take 10 bytes. */
    public function varint(int $field, int $value): self
    {
        $this->buffer .= self::encodeVarint($field << 3) . self::encodeVarint($value);

        return $this;
    }

    /** A string / bytes / embedded message field (wire type 2). */
    public function bytes(int $field, string $value): self
    {
        $this->buffer .= self::encodeVarint(($field << 3) | 2)
            . self::encodeVarint(strlen($value))
            . $value;

        return $this;
    }

    /** Bytes already encoded as whole fields (see lengthDelimited()). */
    public function append(string $fields): self
    {
        $this->buffer .= $fields;

        return $this;
    }

    public function toString(): string
    {
        return $this->buffer;
    }

    /**
     * One string / bytes / message field as bytes, for nesting without a
     * writer object per level (a response header is three levels deep).
     * Field numbers up to 15 only: their tag is one byte.
     */
    public static function lengthDelimited(int $field, string $value): string
    {
        return chr(($field << 3) | 2) . self::encodeVarint(strlen($value)) . $value;
    }

    public static function encodeVarint(int $value): string
    {
        if ($value >= 0 && $value < 0x80) {
            return chr($value);     // tags, short lengths: most varints
        }
        $out = '';
        // Negative values are their 64-bit two's complement: shift in zeros.
        while ($value < 0 || $value > 0x7F) {
            $out .= chr(($value & 0x7F) | 0x80);
            $value = ($value >> 7) & 0x01FFFFFFFFFFFFFF;
        }

        return $out . chr($value);
    }
}
