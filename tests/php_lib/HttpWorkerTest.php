<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Exception\ConfigException;
use TrioRunner\Exception\StreamStoppedException;
use TrioRunner\Frame;
use TrioRunner\Http\Codec\JsonCodec;
use TrioRunner\Http\Codec\ProtoCodec;
use TrioRunner\Http\HttpWorker;
use TrioRunner\Http\Request;
use TrioRunner\Log;
use TrioRunner\Tests\Support\Frames;
use TrioRunner\Tests\Support\Golden;
use TrioRunner\Tests\Support\MemoryRelay;
use TrioRunner\Worker;

final class HttpWorkerTest extends TestCase
{
    /** @var resource */
    private $log;

    protected function setUp(): void
    {
        $this->log = fopen('php://memory', 'w+b');
        Log::$stream = $this->log;
    }

    protected function tearDown(): void
    {
        Log::$stream = null;
    }

    private function logged(): string
    {
        rewind($this->log);

        return (string) stream_get_contents($this->log);
    }

    private static function http(MemoryRelay $relay): HttpWorker
    {
        return new HttpWorker(new Worker($relay, redirectOutput: false));
    }

    public function testGoldenRequestAndResponseBytes(): void
    {
        $relay = new MemoryRelay(Golden::frame('a_server_pid_handshake'), Golden::frame('g_http_request'));
        $http = self::http($relay);

        $request = $http->waitRequest();
        self::assertSame('GET', $request->method);
        self::assertSame('http://localhost/?a=1', $request->uri);
        self::assertInstanceOf(ProtoCodec::class, $http->codec());

        $http->respond(200, 'hello', ['Content-Type' => 'text/plain']);
        self::assertSame(Golden::bytes('h_http_response'), $relay->sent[1]->encode());
    }

    public function testJsonContextIsDetectedOnceAndAnsweredAsJson(): void
    {
        $json = new JsonCodec();
        $relay = new MemoryRelay(
            Frames::request($json, new Request(method: 'GET', uri: 'http://h/one')),
            Frames::request($json, new Request(method: 'POST', uri: 'http://h/two', body: 'b')),
        );
        $http = self::http($relay);

        self::assertSame('http://h/one', $http->waitRequest()->uri);
        self::assertInstanceOf(JsonCodec::class, $http->codec());
        $http->respond(201, 'created', ['Location' => '/x']);
        $two = $http->waitRequest();
        self::assertSame('POST', $two->method);
        self::assertSame('b', $two->body);
        $http->respond(204);

        $frame = $relay->sent[0];
        self::assertSame(Frame::CODEC_JSON, $frame->flags);
        [$context, $body] = Frames::split($frame);
        self::assertSame('{"status":201,"headers":{"Location":["/x"]}}', $context);
        self::assertSame('created', $body);
        self::assertSame('{"status":204,"headers":{}}', Frames::split($relay->sent[1])[0]);
    }

    public function testGeneratorBodyIsStreamedWithContextOnEveryChunk(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $http = self::http($relay);
        $http->waitRequest();

        $http->respond(200, (static function () {
            yield 'a';
            yield 'b';

            return 'tail';
        })(), ['Content-Type' => 'text/event-stream']);

        self::assertCount(3, $relay->sent);
        $codec = new ProtoCodec();
        $bodies = [];
        foreach ($relay->sent as $i => $frame) {
            self::assertSame(Frame::CODEC_PROTO, $frame->flags);
            self::assertSame($i < 2 ? Frame::STREAM : 0, $frame->stream);
            [$context, $body] = Frames::split($frame);
            self::assertSame([200, ['Content-Type' => ['text/event-stream']]], $codec->decodeResponse($context));
            $bodies[] = $body;
        }
        self::assertSame(['a', 'b', 'tail'], $bodies);
    }

    public function testArrayBodyIsStreamedToo(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $http = self::http($relay);
        $http->waitRequest();
        $http->respond(200, ['x', 'y']);

        self::assertSame([Frame::STREAM, Frame::STREAM, 0], Frames::streamBytes($relay->sent));
        self::assertSame('', Frames::split($relay->sent[2])[1]);
    }

    public function testStreamStopIsThrownIntoTheGenerator(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $relay->onSend = static function (Frame $sent, MemoryRelay $r): void {
            if (count($r->sent) === 3) {
                $r->push(Frames::streamStop());
            }
        };
        $http = self::http($relay);
        $http->waitRequest();
        $seen = null;
        $cleanedUp = false;

        $http->respond(200, (static function () use (&$seen, &$cleanedUp) {
            try {
                for ($i = 0; ; ++$i) {
                    yield "chunk$i";
                }
            } catch (StreamStoppedException $e) {
                $seen = $e;
            } finally {
                $cleanedUp = true;
            }
        })());

        self::assertInstanceOf(StreamStoppedException::class, $seen);
        self::assertTrue($cleanedUp);
        self::assertCount(4, $relay->sent);
        $final = $relay->sent[3];
        self::assertSame([0, [0], '', 0], Frames::fields($final));
        self::assertTrue($http->worker()->hasResponded());
    }

    public function testGeneratorFailureMidStreamEndsWithAnErrorFrameAndServeGoesOn(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'), Golden::frame('g_http_request'));
        $http = self::http($relay);
        $calls = 0;

        $http->serve(static function (Request $request) use (&$calls): array {
            ++$calls;
            if ($calls === 1) {
                return [200, [], (static function () {
                    yield 'partial';
                    throw new \RuntimeException('database went away');
                })()];
            }

            return [200, ['Content-Type' => 'text/plain'], 'ok'];
        });

        self::assertSame(2, $calls);
        self::assertCount(3, $relay->sent, 'chunk, error frame, second response');
        self::assertSame(Frame::STREAM, $relay->sent[0]->stream);
        // Not the final frame, which would make the cut response look whole.
        self::assertSame([Frame::ERROR, [], 'database went away', 0], Frames::fields($relay->sent[1]));
        self::assertSame('ok', Frames::split($relay->sent[2])[1]);
        self::assertStringContainsString('RuntimeException', $this->logged());
        self::assertStringContainsString('database went away', $this->logged());
    }

    public function testGeneratorFailureMidStreamIsRethrownAfterTheErrorFrame(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $http = self::http($relay);
        $http->waitRequest();

        try {
            $http->respond(200, (static function () {
                yield 'one';
                yield 'two';
                throw new \LogicException('');
            })());
            self::fail('respond() must rethrow what the body threw');
        } catch (\LogicException) {
        }

        self::assertSame([Frame::STREAM, Frame::STREAM, 0], Frames::streamBytes($relay->sent));
        self::assertSame(Frame::ERROR, $relay->sent[2]->flags);
        self::assertSame('LogicException', $relay->sent[2]->payload, 'no message: the class');
        self::assertTrue($http->worker()->hasResponded());
        self::assertFalse($http->worker()->isStreaming());
    }

    public function testGeneratorFailureBeforeTheFirstChunkIsAnErrorResponse(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $http = self::http($relay);

        $http->serve(static function (): array {
            return [200, [], (static function () {
                throw new \RuntimeException('no rows');
                yield 'never';
            })()];
        });

        self::assertCount(1, $relay->sent, 'nothing streamed: one error frame, a 500');
        self::assertSame([Frame::ERROR, [], 'no rows', 0], Frames::fields($relay->sent[0]));
    }

    public function testServeAnswersHandlerExceptionsWithErrorFrames(): void
    {
        $request = Golden::frame('g_http_request');
        $relay = new MemoryRelay($request, $request, $request, Frames::stopControl());
        $http = self::http($relay);
        $n = 0;

        $http->serve(static function (Request $request, HttpWorker $w) use (&$n) {
            ++$n;
            if ($n === 1) {
                throw new \LogicException('no route for ' . $request->path());
            }
            if ($n === 2) {
                return 'not a triple';
            }
            $w->respond(200, 'answered directly');

            return null;
        });

        self::assertSame(3, $n);
        self::assertSame(Frame::ERROR, $relay->sent[0]->flags);
        self::assertSame('no route for /', $relay->sent[0]->payload);
        self::assertSame(Frame::ERROR, $relay->sent[1]->flags);
        self::assertStringContainsString('returned string without answering', $relay->sent[1]->payload);
        self::assertSame('answered directly', Frames::split($relay->sent[2])[1]);
        self::assertStringContainsString('LogicException', $this->logged());
    }

    public function testUndecodableRequestGetsAnErrorAndTheLoopGoesOn(): void
    {
        $relay = new MemoryRelay(Frames::data("\x08", '', Frame::CODEC_PROTO), Golden::frame('g_http_request'));
        $http = self::http($relay);
        $served = 0;

        $http->serve(static function () use (&$served) {
            ++$served;

            return [200, [], 'ok'];
        });

        self::assertSame(1, $served);
        self::assertSame(Frame::ERROR, $relay->sent[0]->flags);
        self::assertStringContainsString('malformed http.v1.Request', $relay->sent[0]->payload);
    }

    public function testEarlyHintsThenFinalResponse(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $http = self::http($relay);
        $http->waitRequest();

        $http->respond(103, '', ['Link' => '</style.css>; rel=preload'], endOfStream: false);
        $http->respond(200, 'page');

        self::assertSame(Frame::STREAM, $relay->sent[0]->stream);
        self::assertSame(0, $relay->sent[1]->stream);
        self::assertSame(103, (new ProtoCodec())->decodeResponse(Frames::split($relay->sent[0])[0])[0]);
    }

    public function testHeaderValuesAreNormalized(): void
    {
        self::assertSame(
            ['A' => ['1'], 'B' => ['x', '2'], 'C' => ['1']],
            HttpWorker::normalizeHeaders(['A' => 1, 'B' => ['x', 2], 'C' => true, 'D' => null]),
        );
    }

    public function testBadHeaderNameSaysWhatToDo(): void
    {
        $this->expectException(ConfigException::class);
        $this->expectExceptionMessage('pass headers as ["Name" => "value"]');
        HttpWorker::normalizeHeaders(['text/plain']);
    }
}
