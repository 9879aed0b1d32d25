<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Exception\FrameException;
use TrioRunner\Frame;
use TrioRunner\Tests\Support\Golden;

/** The frame codec, byte for byte against PROTOCOL.md 1.6 (tests/golden/frames.json). */
final class FrameTest extends TestCase
{
    /** @return iterable<string, array{string}> */
    public static function goldenNames(): iterable
    {
        foreach (array_keys(Golden::all()) as $name) {
            yield $name => [$name];
        }
    }

    /** @dataProvider goldenNames */
    public function testEncodeMatchesGoldenBytes(string $name): void
    {
        $g = Golden::all()[$name];
        $frame = new Frame($g['flags'], $g['options'], hex2bin($g['payload']), $g['stream']);

        self::assertSame($g['frame'], bin2hex($frame->encode()));
    }

    /** @dataProvider goldenNames */
    public function testDecodeGoldenBytes(string $name): void
    {
        $g = Golden::all()[$name];
        $bytes = hex2bin($g['frame']);
        $header = substr($bytes, 0, Frame::HEADER_SIZE);

        self::assertSame(strlen($bytes) - Frame::HEADER_SIZE, Frame::restLength($header));
        $frame = Frame::decode($header, substr($bytes, Frame::HEADER_SIZE));
        self::assertSame($g['flags'], $frame->flags);
        self::assertSame($g['options'], $frame->options);
        self::assertSame($g['stream'], $frame->stream);
        self::assertSame($g['payload'], bin2hex($frame->payload));
    }

    public function testHeaderLengthNibbleCountsOptions(): void
    {
        self::assertSame(0x13, ord((new Frame())->encode()[0]));
        self::assertSame(0x14, ord((new Frame(0, [7]))->encode()[0]));
        self::assertSame(0x15, ord((new Frame(0, [1, 2]))->encode()[0]));
        self::assertSame(0x1d, ord((new Frame(0, range(1, 10)))->encode()[0]));
    }

    public function testCrcMismatchIsReportedClearly(): void
    {
        $bytes = Golden::bytes('a_server_pid_handshake');
        $bytes[6] = chr(ord($bytes[6]) ^ 0xFF);

        $this->expectException(FrameException::class);
        $this->expectExceptionMessageMatches('/CRC mismatch: stored 0x73460ca0, computed 0x73460c5f.*out of sync/s');
        Frame::fromBytes($bytes);
    }

    public function testStdoutTextIsNotAFrame(): void
    {
        $this->expectException(FrameException::class);
        $this->expectExceptionMessage('CRC mismatch');
        Frame::restLength('Could not op');
    }

    public function testCrcIgnoresStreamByteOptionsAndPayload(): void
    {
        $a = (new Frame(0, [1], 'x', 0))->encode();
        $b = (new Frame(0, [2], 'y', Frame::STREAM | Frame::PING))->encode();

        self::assertSame(substr($a, 6, 4), substr($b, 6, 4));
    }

    public function testShortHeaderIsRejected(): void
    {
        $this->expectException(FrameException::class);
        $this->expectExceptionMessage('exactly 12 bytes, got 5');
        Frame::restLength('abcde');
    }

    public function testImpossibleHeaderLengthIsRejected(): void
    {
        $head = pack('CCV', 0x12, 0, 0); // HL 2
        $this->expectException(FrameException::class);
        $this->expectExceptionMessage('header length must be 3 to 13 words, got 2');
        Frame::restLength($head . pack('VCC', crc32($head), 0, 0));
    }

    public function testTruncatedRestIsRejected(): void
    {
        $bytes = Golden::bytes('g_http_request');

        $this->expectException(FrameException::class);
        $this->expectExceptionMessage('but 70 bytes were given');
        Frame::decode(substr($bytes, 0, 12), substr($bytes, 12, 70));
    }

    public function testTooManyOptionsAreRefused(): void
    {
        $this->expectException(FrameException::class);
        $this->expectExceptionMessage('at most 10 options, got 11');
        new Frame(0, range(1, 11));
    }

    public function testOptionsMustBeUint32(): void
    {
        $this->expectException(FrameException::class);
        new Frame(0, [-1]);
    }

    public function testLargePayloadRoundTrips(): void
    {
        $payload = random_bytes(300_000);
        $frame = Frame::fromBytes((new Frame(Frame::CODEC_RAW, [10], $payload))->encode());

        self::assertSame($payload, $frame->payload);
        self::assertSame([10], $frame->options);
    }

    public function testFlagHelpers(): void
    {
        $frame = new Frame(Frame::CONTROL | Frame::ERROR, [], '', Frame::STREAM | Frame::PING);

        self::assertTrue($frame->isControl());
        self::assertTrue($frame->isError());
        self::assertTrue($frame->hasStreamFlag(Frame::STREAM | Frame::PING));
        self::assertFalse($frame->hasStreamFlag(Frame::STOP));
    }
}
