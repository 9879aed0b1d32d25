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

    public function toString(): string
    {
        return $this->buffer;
    }

    public static function encodeVarint(int $value): string
    {
        $out = '';
        // Negative values are their 64-bit two's complement: shift in zeros.
        while ($value < 0 || $value > 0x7F) {
            $out .= chr(($value & 0x7F) | 0x80);
            $value = ($value >> 7) & 0x01FFFFFFFFFFFFFF;
        }

        return $out . chr($value);
    }
}
