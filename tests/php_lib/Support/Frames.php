<?php

declare(strict_types=1);

namespace TrioRunner\Tests\Support;

use TrioRunner\Frame;
use TrioRunner\Http\Codec\ContextCodec;
use TrioRunner\Http\Request;

/** Frames a server sends, built for tests. */
final class Frames
{
    public static function handshake(int $pid = 4242): Frame
    {
        return new Frame(Frame::CONTROL | Frame::CODEC_JSON, [], json_encode(['pid' => $pid]));
    }

    public static function stopControl(): Frame
    {
        return new Frame(Frame::CONTROL | Frame::CODEC_JSON, [], '{"stop":true}');
    }

    public static function pong(): Frame
    {
        return new Frame(0, [], '', Frame::PONG);
    }

    public static function streamStop(): Frame
    {
        return new Frame(0, [], '', Frame::STOP);
    }

    public static function data(string $context, string $body = '', int $flags = 0): Frame
    {
        return new Frame($flags, [strlen($context)], $context . $body);
    }

    public static function request(ContextCodec $codec, Request $request): Frame
    {
        return self::data($codec->encodeRequest($request), $request->body, $codec->flag());
    }

    /**
     * The stream byte of each frame.
     *
     * @param list<Frame> $frames
     *
     * @return list<int>
     */
    public static function streamBytes(array $frames): array
    {
        return array_map(static fn (Frame $f): int => $f->stream, $frames);
    }

    /** @return array{int, list<int>, string, int} flags, options, payload, stream */
    public static function fields(Frame $frame): array
    {
        return [$frame->flags, $frame->options, $frame->payload, $frame->stream];
    }

    /** @return array{string, string} context and body of a data frame */
    public static function split(Frame $frame): array
    {
        $n = $frame->options[0];

        return [substr($frame->payload, 0, $n), (string) substr($frame->payload, $n)];
    }
}
