<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Exception\ConfigException;
use TrioRunner\Exception\ProtocolException;
use TrioRunner\Exception\RpcException;
use TrioRunner\Frame;
use TrioRunner\Rpc\AppLogger;
use TrioRunner\Rpc\Metrics;
use TrioRunner\Rpc\Rpc;
use TrioRunner\Rpc\WorkerPool;
use TrioRunner\Tests\Support\Golden;
use TrioRunner\Tests\Support\MemoryRelay;

/** The RPC client's frames (PROTOCOL.md 5.1), over an in-memory relay. */
final class RpcTest extends TestCase
{
    protected function tearDown(): void
    {
        putenv('RR_RPC');
    }

    /** A reply to the next call, as the server would send it. */
    private static function reply(string $method, string $body, int $flags = Frame::CODEC_JSON, int $seqOffset = 0): Frame
    {
        return new Frame($flags, [Rpc::nextSequence() + $seqOffset, strlen($method)], $method . $body);
    }

    public function testCallMatchesTheGoldenRequestFrame(): void
    {
        Rpc::nextSequence(1);
        $relay = new MemoryRelay(self::reply('informer.Workers', '{"workers":[]}'));

        $reply = (new Rpc($relay))->call('informer.Workers', 'http');

        self::assertSame(['workers' => []], $reply);
        self::assertSame(Golden::bytes('i_rpc_request'), $relay->sent[0]->encode());
    }

    public function testSeqIsProcessWideAndGoesUpByOnePerCall(): void
    {
        $first = Rpc::nextSequence();
        $relay = new MemoryRelay();
        $relay->onSend = static function (Frame $sent, MemoryRelay $r): void {
            $r->push(new Frame(Frame::CODEC_JSON, [$sent->options[0], 11], 'rpc.Version"x"'));
        };
        $a = new Rpc($relay);
        $b = new Rpc($relay);
        $a->call('rpc.Version', true);
        $b->call('rpc.Version', true);
        $a->call('rpc.Version', true);

        self::assertSame([$first, $first + 1, $first + 2], array_map(static fn (Frame $f) => $f->options[0], $relay->sent));
        self::assertSame($first + 3, Rpc::nextSequence());
    }

    public function testErrorReplyThrowsTheServersText(): void
    {
        $relay = new MemoryRelay(self::reply('informer.Nope', "rpc: can't find method informer.Nope", Frame::CODEC_JSON | Frame::ERROR));

        try {
            (new Rpc($relay))->call('informer.Nope', 'http');
            self::fail('no exception');
        } catch (RpcException $e) {
            self::assertSame("rpc: can't find method informer.Nope", $e->getMessage());
            self::assertSame('informer.Nope', $e->method);
        }
    }

    public function testReplyWithAnotherSeqIsAProtocolError(): void
    {
        $relay = new MemoryRelay(self::reply('rpc.Version', '"1"', seqOffset: 5));

        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('the reply must carry options');
        (new Rpc($relay))->call('rpc.Version', true);
    }

    public function testRawAndProtoCarryBytesBothWays(): void
    {
        $relay = new MemoryRelay(self::reply('test.Raw', "\x00\xff", Frame::CODEC_RAW));
        self::assertSame("\x00\xff", (new Rpc($relay))->call('test.Raw', "\x01\x02", Frame::CODEC_RAW));
        self::assertSame(Frame::CODEC_RAW, $relay->sent[0]->flags);
        self::assertSame("test.Raw\x01\x02", $relay->sent[0]->payload);

        $this->expectException(ConfigException::class);
        (new Rpc(new MemoryRelay()))->call('test.Raw', ['not bytes'], Frame::CODEC_RAW);
    }

    public function testFromEnvironmentReadsRrRpcWithRoadRunnersDefault(): void
    {
        putenv('RR_RPC');
        self::assertSame('tcp://127.0.0.1:6001', Rpc::fromEnvironment()->address());
        putenv('RR_RPC=unix:///tmp/rr-rpc.sock');
        self::assertSame('unix:///tmp/rr-rpc.sock', Rpc::fromEnvironment()->address());
    }

    public function testAppLoggerWithContextSendsALogEntry(): void
    {
        $relay = new MemoryRelay(self::reply('app.InfoWithContext', '', Frame::CODEC_PROTO));

        (new AppLogger(new Rpc($relay)))->info('m', ['k' => 'v', 'n' => 42]);

        $sent = $relay->sent[0];
        self::assertSame(Frame::CODEC_PROTO, $sent->flags);
        $entry = "\x0a\x01m" . "\x12\x06\x0a\x01k\x12\x01v" . "\x12\x07\x0a\x01n\x12\x0242";
        self::assertSame('app.InfoWithContext' . $entry, $sent->payload);
    }

    public function testAppLoggerWithoutContextSendsJson(): void
    {
        $relay = new MemoryRelay(self::reply('app.Warning', 'false'));

        (new AppLogger(new Rpc($relay)))->warning('disk "almost" full');

        self::assertSame('app.Warning"disk \"almost\" full"', $relay->sent[0]->payload);
    }

    public function testMetricsSendRoadRunnersArguments(): void
    {
        $relay = new MemoryRelay(
            self::reply('metrics.Declare', 'tried to register existing collector', Frame::CODEC_JSON | Frame::ERROR),
            self::reply('metrics.Add', 'true', seqOffset: 1),
        );
        $metrics = new Metrics(new Rpc($relay));

        $metrics->declare('orders', Metrics::counter('Orders', ['kind']));
        $metrics->add('orders', 1, ['book']);

        self::assertSame(
            'metrics.Declare{"name":"orders","collector":{"type":"counter","help":"Orders","labels":["kind"]}}',
            $relay->sent[0]->payload,
        );
        self::assertSame('metrics.Add{"name":"orders","value":1.0,"labels":["book"]}', $relay->sent[1]->payload);
    }

    public function testMetricsErrorsReachTheCaller(): void
    {
        $relay = new MemoryRelay(self::reply('metrics.Add', 'undefined collector nope, try first Declare', Frame::CODEC_JSON | Frame::ERROR));

        $this->expectException(RpcException::class);
        $this->expectExceptionMessage('undefined collector nope, try first Declare');
        (new Metrics(new Rpc($relay)))->add('nope', 1);
    }

    public function testWorkerPoolOfAnUnknownPoolIsEmpty(): void
    {
        $relay = new MemoryRelay(self::reply('informer.Workers', '{"workers":null}'));

        self::assertSame([], (new WorkerPool(new Rpc($relay)))->workers('jobs'));
    }

    public function testNoServerIsARelayErrorNamingTheAddress(): void
    {
        $rpc = new Rpc('unix:///nonexistent/rr-rpc.sock');

        $this->expectException(\TrioRunner\Exception\RelayException::class);
        $this->expectExceptionMessage('RPC informer.List to unix:///nonexistent/rr-rpc.sock failed');
        $rpc->call('informer.List', true);
    }
}
