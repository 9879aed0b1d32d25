<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Exception\ConfigException;
use TrioRunner\Exception\FrameException;
use TrioRunner\Exception\RelayClosedException;
use TrioRunner\Exception\RelayException;
use TrioRunner\Exception\RelayTimeoutException;
use TrioRunner\Frame;
use TrioRunner\Payload;
use TrioRunner\Relay\Relay;
use TrioRunner\Relay\SocketRelay;
use TrioRunner\Relay\StreamRelay;
use TrioRunner\Tests\Support\Frames;
use TrioRunner\Tests\Support\Golden;
use TrioRunner\Worker;

/** Pipe and socket relays, and RR_RELAY specs (PROTOCOL.md 2.1). */
final class RelayTest extends TestCase
{
    /** @var list<resource> */
    private array $open = [];
    private ?string $socketPath = null;

    protected function tearDown(): void
    {
        foreach ($this->open as $r) {
            if (is_resource($r)) {
                fclose($r);
            }
        }
        if ($this->socketPath !== null && file_exists($this->socketPath)) {
            unlink($this->socketPath);
        }
        putenv('RR_RELAY');
    }

    /** @return array{resource, resource} */
    private function pair(): array
    {
        [$a, $b] = stream_socket_pair(STREAM_PF_UNIX, STREAM_SOCK_STREAM, STREAM_IPPROTO_IP);
        array_push($this->open, $a, $b);

        return [$a, $b];
    }

    /** @return iterable<string, array{string}> */
    public static function pipeSpecs(): iterable
    {
        yield 'default' => [''];
        yield 'pipes' => ['pipes'];
        yield 'pipes url' => ['pipes://stdin:stdout'];
    }

    /** @dataProvider pipeSpecs */
    public function testPipeSpecsMakeAStreamRelay(string $spec): void
    {
        self::assertInstanceOf(StreamRelay::class, Relay::create($spec));
    }

    /** @return iterable<string, array{string, string}> */
    public static function socketSpecs(): iterable
    {
        yield 'tcp' => ['tcp://127.0.0.1:6001', 'tcp://127.0.0.1:6001'];
        yield 'tcp name' => ['tcp://localhost:80', 'tcp://localhost:80'];
        yield 'tcp ipv6' => ['tcp://[::1]:6001', 'tcp://[::1]:6001'];
        yield 'unix absolute' => ['unix:///tmp/rr.sock', 'unix:///tmp/rr.sock'];
        yield 'unix relative' => ['unix://rr.sock', 'unix://rr.sock'];
    }

    /** @dataProvider socketSpecs */
    public function testSocketSpecsMakeASocketRelay(string $spec, string $address): void
    {
        $relay = Relay::create($spec);

        self::assertInstanceOf(SocketRelay::class, $relay);
        self::assertSame($address, $relay->address());
    }

    /** @return iterable<string, array{string, string}> */
    public static function badSpecs(): iterable
    {
        yield 'empty host' => ['tcp://:6001', 'non-empty host'];
        yield 'no port' => ['tcp://127.0.0.1', 'non-empty host and a port'];
        yield 'port too big' => ['tcp://127.0.0.1:70000', 'port from 1 to 65535'];
        yield 'empty unix path' => ['unix://', 'unix:///path/to.sock'];
        yield 'unknown scheme' => ['udp://127.0.0.1:6001', 'use "pipes", "tcp://HOST:PORT"'];
        yield 'typo' => ['pipe', 'relay spec "pipe" is not understood'];
        yield 'other pipes' => ['pipes://a:b', 'relay spec "pipes://a:b"'];
    }

    /** @dataProvider badSpecs */
    public function testBadSpecsNameTheSpecAndTheAllowedForms(string $spec, string $message): void
    {
        $this->expectException(ConfigException::class);
        $this->expectExceptionMessage($message);
        Relay::create($spec);
    }

    public function testFromEnvironmentReadsRrRelay(): void
    {
        putenv('RR_RELAY=tcp://127.0.0.1:6123');
        self::assertSame('tcp://127.0.0.1:6123', Relay::fromEnvironment()->address());

        putenv('RR_RELAY');
        self::assertInstanceOf(StreamRelay::class, Relay::fromEnvironment());
    }

    public function testStreamRelayRoundTripsFrames(): void
    {
        [$a, $b] = $this->pair();
        $worker = new StreamRelay($a, $a, 2.0);
        $server = new StreamRelay($b, $b, 2.0);

        $server->send(Golden::frame('g_http_request'));
        self::assertTrue($worker->hasFrame());
        self::assertEquals(Golden::frame('g_http_request'), $worker->receive());
        self::assertFalse($worker->hasFrame());

        $big = new Frame(Frame::CODEC_RAW, [3], str_repeat('z', 100_000));
        $worker->send($big);
        self::assertEquals($big, $server->receive());
    }

    public function testStreamRelayReassemblesAFrameSplitAcrossWrites(): void
    {
        // A child process writes one frame in four pieces with pauses, so
        // each fread sees only part of it (the header itself is split).
        $hex = bin2hex(Golden::bytes('g_http_request'));
        $code = '$b = hex2bin("' . $hex . '"); foreach ([5, 9, 40] as $n) {'
            . ' fwrite(STDOUT, substr($b, 0, $n)); $b = substr($b, $n); fflush(STDOUT); usleep(30000); }'
            . ' fwrite(STDOUT, $b);';
        $proc = proc_open([PHP_BINARY, '-r', $code], [1 => ['pipe', 'w']], $pipes);
        self::assertIsResource($proc);
        try {
            $relay = new StreamRelay($pipes[1], STDERR, 5.0);
            self::assertEquals(Golden::frame('g_http_request'), $relay->receive());
        } finally {
            fclose($pipes[1]);
            proc_close($proc);
        }
    }

    public function testReadTimesOut(): void
    {
        [$a] = $this->pair();
        $relay = new StreamRelay($a, $a, 0.05, 'the test server');

        $this->expectException(RelayTimeoutException::class);
        $this->expectExceptionMessage('no data from the test server within 0.05 s');
        $relay->receive();
    }

    public function testCleanEndOfFile(): void
    {
        [$a, $b] = $this->pair();
        fclose($b);
        try {
            (new StreamRelay($a, $a, 1.0))->receive();
            self::fail('expected RelayClosedException');
        } catch (RelayClosedException $e) {
            self::assertTrue($e->betweenFrames);
        }
    }

    public function testEndOfFileMidFrame(): void
    {
        [$a, $b] = $this->pair();
        fwrite($b, substr(Golden::bytes('g_http_request'), 0, 20));
        fclose($b);
        try {
            (new StreamRelay($a, $a, 1.0))->receive();
            self::fail('expected RelayClosedException');
        } catch (RelayClosedException $e) {
            self::assertFalse($e->betweenFrames);
            self::assertStringContainsString('in the middle of a frame: got 8 of the 75 options and payload bytes', $e->getMessage());
        }
    }

    public function testGarbageOnTheRelayIsAFrameError(): void
    {
        [$a, $b] = $this->pair();
        fwrite($b, "Hello world! I was echoed\n");

        $this->expectException(FrameException::class);
        (new StreamRelay($a, $a, 1.0))->receive();
    }

    public function testWriteToClosedPeerFails(): void
    {
        [$a, $b] = $this->pair();
        fclose($b);

        $this->expectException(RelayException::class);
        $this->expectExceptionMessage('writing a frame to the server (pipes) failed');
        (new StreamRelay($a, $a))->send(new Frame(0, [], str_repeat('x', 1_000_000)));
    }

    public function testTcpRelay(): void
    {
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        self::assertIsResource($server, $errstr);
        $this->open[] = $server;
        $port = (int) substr(strrchr(stream_socket_get_name($server, false), ':'), 1);

        $this->exerciseWorkerOverSocket(SocketRelay::tcp('127.0.0.1', $port, 2.0), $server);
    }

    public function testUnixRelay(): void
    {
        $this->socketPath = sys_get_temp_dir() . '/trio-relay-' . getmypid() . '.sock';
        $server = stream_socket_server('unix://' . $this->socketPath, $errno, $errstr);
        self::assertIsResource($server, $errstr);
        $this->open[] = $server;

        $this->exerciseWorkerOverSocket(Relay::create('unix://' . $this->socketPath), $server);
    }

    public function testConnectFailureSaysWhereAndWhat(): void
    {
        $relay = new SocketRelay('unix:///nonexistent/trio.sock', 1.0, 0.1, 3);

        $this->expectException(RelayException::class);
        $this->expectExceptionMessage('could not connect to the server at unix:///nonexistent/trio.sock after 3 attempt(s)');
        $relay->receive();
    }

    /** Handshake, one request and its response, then stop, over a socket. */
    private function exerciseWorkerOverSocket(Relay $relay, $server): void
    {
        $relay->open();
        $conn = stream_socket_accept($server, 2.0);
        self::assertIsResource($conn);
        $this->open[] = $conn;
        $side = new StreamRelay($conn, $conn, 2.0, 'the worker');

        // The server speaks first, as in PROTOCOL.md 3.1.
        $side->send(Frames::handshake());
        $side->send(Golden::frame('g_http_request'));
        $worker = new Worker($relay, redirectOutput: false);
        $payload = $worker->waitPayload();
        self::assertSame(Golden::context('g_http_request'), $payload->context);

        $pid = $side->receive();
        self::assertSame(Frame::CONTROL, $pid->flags);
        self::assertSame(getmypid(), json_decode($pid->payload, true)['pid']);

        $worker->respond(new Payload('ctx', 'body'), Frame::CODEC_PROTO);
        $response = $side->receive();
        self::assertSame([3], $response->options);
        self::assertSame('ctxbody', $response->payload);

        $side->send(Frames::stopControl());
        self::assertNull($worker->waitPayload());
        $relay->close();
        self::assertFalse($relay->hasFrame());
    }
}
