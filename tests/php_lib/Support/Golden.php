<?php

declare(strict_types=1);

namespace TrioRunner\Tests\Support;

use TrioRunner\Frame;

/** The worked frames of PROTOCOL.md 1.6, from tests/golden/frames.json. */
final class Golden
{
    /** @var array<string, array{flags: int, options: list<int>, stream: int, payload: string, frame: string}>|null */
    private static ?array $frames = null;

    /** @return array<string, array{flags: int, options: list<int>, stream: int, payload: string, frame: string}> */
    public static function all(): array
    {
        if (self::$frames === null) {
            $json = file_get_contents(__DIR__ . '/../../golden/frames.json');
            self::$frames = json_decode((string) $json, true, 512, JSON_THROW_ON_ERROR)['frames'];
        }

        return self::$frames;
    }

    /** The encoded bytes of one golden frame, e.g. bytes('g_http_request'). */
    public static function bytes(string $name): string
    {
        return hex2bin(self::all()[$name]['frame']);
    }

    public static function frame(string $name): Frame
    {
        return Frame::fromBytes(self::bytes($name));
    }

    /** The context of a golden data frame (payload up to options[0]). */
    public static function context(string $name): string
    {
        $f = self::all()[$name];

        return substr(hex2bin($f['payload']), 0, $f['options'][0]);
    }
}
