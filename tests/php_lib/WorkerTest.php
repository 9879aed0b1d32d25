<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Exception\ProtocolException;
use TrioRunner\Exception\StreamStoppedException;
use TrioRunner\Frame;
use TrioRunner\Log;
use TrioRunner\Payload;
use TrioRunner\Tests\Support\Frames;
use TrioRunner\Tests\Support\Golden;
use TrioRunner\Tests\Support\MemoryRelay;
use TrioRunner\Worker;

/** The worker lifecycle of PROTOCOL.md 3, over an in-memory relay. */
final class WorkerTest extends TestCase
{
    private function worker(MemoryRelay $relay): Worker
    {
        return new Worker($relay, redirectOutput: false);
    }

    public function testHandshakeIsAnsweredWithOwnPid(): void
    {
        $relay = new MemoryRelay(Golden::frame('a_server_pid_handshake'), Golden::frame('c_server_stop'));

        self::assertNull($this->worker($relay)->waitPayload());
        self::assertCount(1, $relay->sent);
        $reply = $relay->sent[0];
        self::assertSame(Frame::CONTROL, $reply->flags);
        self::assertSame([], $reply->options);
        self::assertSame(0, $reply->stream);
        self::assertSame(sprintf('{"pid":%d}', getmypid()), $reply->payload);
    }

    public function testPidReplyEncodingMatchesGoldenFrame(): void
    {
        $reply = new Frame(Frame::CONTROL, [], '{"pid":31337}');

        self::assertSame(Golden::bytes('b_worker_pid_reply'), $reply->encode());
    }

    public function testRequestAndResponse(): void
    {
        $relay = new MemoryRelay(
            Frames::handshake(),
            Frames::data('ctx', 'body', Frame::CODEC_PROTO),
            Frames::stopControl(),
        );
        $worker = $this->worker($relay);

        $payload = $worker->waitPayload();
        self::assertSame('ctx', $payload->context);
        self::assertSame('body', $payload->body);
        self::assertSame(Frame::CODEC_PROTO, $payload->codec);
        self::assertFalse($payload->more);
        self::assertFalse($worker->hasResponded());

        $worker->respond(new Payload('answer-ctx', 'answer-body'), Frame::CODEC_PROTO);
        self::assertTrue($worker->hasResponded());
        $response = $relay->sent[1];
        self::assertSame(Frame::CODEC_PROTO, $response->flags);
        self::assertSame([10], $response->options);
        self::assertSame('answer-ctxanswer-body', $response->payload);
        self::assertSame(0, $response->stream);

        self::assertNull($worker->waitPayload());
    }

    public function testResponseWithEmptyContextStillHasOneOption(): void
    {
        $relay = new MemoryRelay(Frames::data('', 'x'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload(body: 'hi'));

        self::assertSame([0], $relay->sent[0]->options);
        self::assertSame(0, $relay->sent[0]->flags);
    }

    public function testGoldenHttpResponseFrame(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload(Golden::context('h_http_response'), 'hello', Frame::CODEC_PROTO));

        self::assertSame(Golden::bytes('h_http_response'), $relay->sent[0]->encode());
    }

    public function testErrorFrameMatchesGolden(): void
    {
        $relay = new MemoryRelay(Frames::data('c'), Frames::data('d'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->error('boom');

        self::assertSame(Golden::bytes('e_worker_error'), $relay->sent[0]->encode());
        self::assertTrue($worker->hasResponded());
        self::assertNotNull($worker->waitPayload(), 'the worker goes on after an error');
    }

    public function testStopRequestMatchesGolden(): void
    {
        $relay = new MemoryRelay(Frames::data('c'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->stop();

        self::assertSame(Golden::bytes('d_worker_stop_request'), $relay->sent[0]->encode());
    }

    public function testStopControlEndsTheLoop(): void
    {
        $relay = new MemoryRelay(Golden::frame('c_server_stop'), Frames::data('never read'));

        self::assertNull($this->worker($relay)->waitPayload());
        self::assertCount(1, $relay->incoming);
    }

    public function testCleanEndOfFileEndsTheLoop(): void
    {
        self::assertNull($this->worker(new MemoryRelay())->waitPayload());
    }

    public function testStrayPongAndStopAreIgnored(): void
    {
        $relay = new MemoryRelay(Frames::pong(), Frames::streamStop(), Frames::data('ctx'));

        self::assertSame('ctx', $this->worker($relay)->waitPayload()->context);
        self::assertSame([], $relay->sent);
    }

    public function testUnknownControlCommandIsAnError(): void
    {
        $relay = new MemoryRelay(new Frame(Frame::CONTROL, [], '{"reload":true}'));

        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('unknown control command "{\"reload\":true}"');
        $this->worker($relay)->waitPayload();
    }

    public function testDataFrameWithoutOptionsIsAnError(): void
    {
        $relay = new MemoryRelay(new Frame(0, [], 'abc'));

        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('must carry one option, the context length');
        $this->worker($relay)->waitPayload();
    }

    public function testContextLengthBeyondPayloadIsAnError(): void
    {
        $relay = new MemoryRelay(new Frame(0, [9], 'abc'));

        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('context is 9 bytes but the payload has only 3');
        $this->worker($relay)->waitPayload();
    }

    public function testRespondWithoutRequestIsRefused(): void
    {
        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('call waitPayload() first');
        $this->worker(new MemoryRelay())->respond(new Payload());
    }

    public function testSecondResponseIsRefused(): void
    {
        $relay = new MemoryRelay(Frames::data('c'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload());

        $this->expectException(ProtocolException::class);
        $worker->error('late');
    }

    public function testStreamingPingsEveryFifthChunkAndConsumesPong(): void
    {
        $relay = new MemoryRelay(Frames::data('c'));
        // The server answers each PING with a PONG, as PROTOCOL.md 3.7 says.
        $relay->onSend = static function (Frame $sent, MemoryRelay $r): void {
            if ($sent->hasStreamFlag(Frame::PING)) {
                $r->push(Frames::pong());
            }
        };
        $worker = $this->worker($relay);
        $worker->waitPayload();
        for ($i = 1; $i <= 12; ++$i) {
            $worker->respond(new Payload('c', "chunk$i"), more: true);
            self::assertTrue($worker->isStreaming());
        }
        $worker->respond(new Payload('c', 'last'));

        $streams = array_map(static fn (Frame $f): int => $f->stream, $relay->sent);
        $S = Frame::STREAM;
        $P = Frame::STREAM | Frame::PING;
        self::assertSame([$S, $S, $S, $S, $P, $S, $S, $S, $S, $P, $S, $S, 0], $streams);
        self::assertSame([], $relay->incoming, 'both PONGs were read while streaming');
        self::assertFalse($worker->isStreaming());
        self::assertTrue($worker->hasResponded());
        foreach ($relay->sent as $frame) {
            self::assertSame([1], $frame->options);
        }
    }

    public function testStreamStopEndsWithEmptyFinalFrame(): void
    {
        $relay = new MemoryRelay(Frames::data('c'), Frames::data('next'));
        $relay->onSend = static function (Frame $sent, MemoryRelay $r): void {
            if (count($r->sent) === 2) {
                // Ahead of the next request: the server cancels the stream.
                array_unshift($r->incoming, Frames::streamStop());
            }
        };
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload('c', 'one'), more: true);
        $worker->respond(new Payload('c', 'two'), more: true);
        try {
            $worker->respond(new Payload('c', 'three'), more: true);
            self::fail('respond() must throw once the server sent STOP');
        } catch (StreamStoppedException) {
        }
        // The producer may still try to finish: nothing more is sent.
        $worker->respond(new Payload('c', 'end'));

        self::assertCount(3, $relay->sent);
        $final = $relay->sent[2];
        self::assertSame(0, $final->flags);
        self::assertSame([0], $final->options);
        self::assertSame('', $final->payload);
        self::assertSame(0, $final->stream);
        self::assertSame('next', $worker->waitPayload()->context);
    }

    public function testLatePongAfterStreamIsSkipped(): void
    {
        $relay = new MemoryRelay(Frames::data('c'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        for ($i = 0; $i < 5; ++$i) {
            $worker->respond(new Payload('c', 'x'), more: true);
        }
        $worker->respond(new Payload('c', ''));
        $relay->push(Frames::pong(), Frames::data('next'));

        self::assertSame('next', $worker->waitPayload()->context);
    }

    public function testFramesOtherThanPongSeenMidStreamAreKept(): void
    {
        $relay = new MemoryRelay(Frames::data('c'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload('c', 'x'), more: true);
        $relay->push(Frames::stopControl());
        $worker->respond(new Payload('c', 'y'), more: true);
        $worker->respond(new Payload('c', ''));

        self::assertNull($worker->waitPayload(), 'the stop read mid-stream is handled next');
    }

    public function testUnfinishedStreamGetsAnErrorFrameBeforeTheNextRequest(): void
    {
        $relay = new MemoryRelay(Frames::data('c'), Frames::data('next'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload('c', 'x'), more: true);

        Log::$stream = fopen('php://memory', 'w+b');
        try {
            self::assertSame('next', $worker->waitPayload()->context);
            rewind(Log::$stream);
            self::assertStringContainsString('streamed response was open', stream_get_contents(Log::$stream));
        } finally {
            Log::$stream = null;
        }
        // An error frame, not the final frame: the chunk sent may be only
        // part of the response, so the server must cut it short.
        self::assertSame(Frame::ERROR, $relay->sent[1]->flags);
        self::assertSame([], $relay->sent[1]->options);
        self::assertStringContainsString('unfinished', $relay->sent[1]->payload);
        self::assertSame(0, $relay->sent[1]->stream);
    }

    public function testErrorMidStreamEndsTheStream(): void
    {
        $relay = new MemoryRelay(Frames::data('c'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload('c', 'x'), more: true);
        $worker->error('disk full');

        self::assertSame([Frame::ERROR, [], 'disk full', 0], Frames::fields($relay->sent[1]));
        self::assertTrue($worker->hasResponded());
        self::assertFalse($worker->isStreaming());
    }

    public function testUnansweredRequestGetsAnErrorBeforeTheNextOne(): void
    {
        $relay = new MemoryRelay(Frames::data('c'), Frames::data('next'));
        $worker = $this->worker($relay);
        $worker->waitPayload();

        Log::$stream = fopen('php://memory', 'w+b');
        try {
            self::assertSame('next', $worker->waitPayload()->context);
            rewind(Log::$stream);
            $logged = stream_get_contents(Log::$stream);
            self::assertStringContainsString('before the previous request was answered', $logged);
        } finally {
            Log::$stream = null;
        }
        self::assertSame(Frame::ERROR, $relay->sent[0]->flags);
        self::assertSame('the PHP worker did not answer this request', $relay->sent[0]->payload);
    }

    public function testPayloadMoreSetsStreamBit(): void
    {
        $relay = new MemoryRelay(Frames::data('c'));
        $worker = $this->worker($relay);
        $worker->waitPayload();
        $worker->respond(new Payload('c', 'x', Frame::CODEC_JSON, more: true));

        self::assertSame(Frame::STREAM, $relay->sent[0]->stream);
        self::assertSame(Frame::CODEC_JSON, $relay->sent[0]->flags);
    }
}
