<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Frame;
use TrioRunner\Http\Codec\ContextCodec;
use TrioRunner\Http\Codec\JsonCodec;
use TrioRunner\Http\Codec\ProtoCodec;
use TrioRunner\Http\Request;
use TrioRunner\Tests\Support\Frames;
use TrioRunner\Tests\Support\Golden;
use TrioRunner\Tests\Support\WorkerProcess;

/**
 * The example apps and a few behaviour workers, each run as a real PHP
 * process and driven over its pipes (or a socket) the way the server does.
 */
final class ExamplesTest extends TestCase
{
    private const EXAMPLES = __DIR__ . '/../../examples';

    private ?string $socketPath = null;

    protected function tearDown(): void
    {
        if ($this->socketPath !== null && file_exists($this->socketPath)) {
            unlink($this->socketPath);
        }
    }

    /**
     * @return array{int, array<string, list<string>>, string} status, headers, body
     */
    private static function answer(WorkerProcess $worker, Frame $request, ContextCodec $codec): array
    {
        $frame = $worker->exchange($request);
        self::assertFalse($frame->isError(), 'error frame: ' . $frame->payload . "\n" . $worker->stderr());
        self::assertSame($codec->flag(), $frame->flags, 'the response uses the request codec');
        self::assertCount(1, $frame->options);
        self::assertSame(0, $frame->stream);
        [$context, $body] = Frames::split($frame);
        [$status, $headers] = $codec->decodeResponse($context);

        return [$status, $headers, $body];
    }

    private static function get(string $uri): Frame
    {
        $query = (string) parse_url($uri, PHP_URL_QUERY);

        return Frames::request(new ProtoCodec(), new Request(
            method: 'GET',
            uri: $uri,
            protocol: 'HTTP/1.1',
            remoteAddr: '127.0.0.1',
            headers: ['Accept' => ['*/*'], 'User-Agent' => ['trio-test']],
            rawQuery: $query,
        ));
    }

    private static function assertCleanExit(WorkerProcess $worker): void
    {
        self::assertSame(0, $worker->stop(), "stderr:\n" . $worker->stderr());
        self::assertSame('', $worker->stderr(), 'nothing logged');
    }

    public function testHelloAnswersTheGoldenRequest(): void
    {
        $worker = new WorkerProcess(self::EXAMPLES . '/hello/worker.php');
        $pid = $worker->handshake();
        self::assertSame($worker->pid(), $pid);

        [$status, $headers, $body] = self::answer($worker, Golden::frame('g_http_request'), new ProtoCodec());
        self::assertSame(200, $status);
        self::assertSame(['text/plain; charset=utf-8'], $headers['Content-Type']);
        self::assertSame("Hello from PHP (pid $pid)", $body);
        self::assertCleanExit($worker);
    }

    public function testHelloWorksWithoutTheEnvironmentVariable(): void
    {
        // The fallback require path, for running the example from the repo.
        $worker = new WorkerProcess(self::EXAMPLES . '/hello/worker.php', ['TRIO_RUNNER_PHP' => '']);
        $worker->handshake();
        self::assertSame(200, self::answer($worker, Golden::frame('g_http_request'), new ProtoCodec())[0]);
        self::assertCleanExit($worker);
    }

    public function testHelloSpeaksLegacyJson(): void
    {
        $json = new JsonCodec();
        $worker = new WorkerProcess(self::EXAMPLES . '/hello/worker.php');
        $worker->handshake();

        $request = Frames::request($json, new Request(method: 'GET', uri: 'http://localhost/'));
        [$status, $headers, $body] = self::answer($worker, $request, $json);
        self::assertSame(200, $status);
        self::assertStringStartsWith('Hello from PHP', $body);
        self::assertCleanExit($worker);
    }

    public function testHelloOverUnixSocketFromRrRelay(): void
    {
        $this->socketPath = sys_get_temp_dir() . '/trio-example-' . getmypid() . '.sock';
        $server = stream_socket_server('unix://' . $this->socketPath, $errno, $errstr);
        self::assertIsResource($server, $errstr);

        $env = ['RR_RELAY' => 'unix://' . $this->socketPath];
        $worker = new WorkerProcess(self::EXAMPLES . '/hello/worker.php', $env, $server);
        self::assertSame($worker->pid(), $worker->handshake(), 'socket pairing needs the real pid');
        self::assertSame(200, self::answer($worker, Golden::frame('g_http_request'), new ProtoCodec())[0]);
        self::assertCleanExit($worker);
    }

    public function testHelloOverTcpFromRrRelay(): void
    {
        $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        self::assertIsResource($server, $errstr);
        $address = stream_socket_get_name($server, false);

        $worker = new WorkerProcess(self::EXAMPLES . '/hello/worker.php', ['RR_RELAY' => "tcp://$address"], $server);
        self::assertSame($worker->pid(), $worker->handshake());
        self::assertSame(200, self::answer($worker, Golden::frame('g_http_request'), new ProtoCodec())[0]);
        self::assertCleanExit($worker);
    }

    public function testWorkerExitsCleanlyWhenTheServerCloses(): void
    {
        $worker = new WorkerProcess(self::EXAMPLES . '/hello/worker.php');
        $worker->handshake();
        $worker->closeInput();

        self::assertSame(0, $worker->wait());
    }

    public function testPsr15Example(): void
    {
        $worker = new WorkerProcess(self::EXAMPLES . '/psr15/worker.php');
        $worker->handshake();
        $proto = new ProtoCodec();

        [$status, $headers, $body] = self::answer($worker, Golden::frame('g_http_request'), $proto);
        self::assertSame(200, $status);
        self::assertStringStartsWith('Hello from PSR-15', $body);
        self::assertArrayHasKey('X-Response-Time', $headers, 'the middleware ran');

        [$status, $headers, $body] = self::answer($worker, self::get('http://localhost/json?x=1'), $proto);
        self::assertSame(200, $status);
        self::assertSame(['application/json'], $headers['Content-Type']);
        self::assertSame(['path' => '/json', 'query' => ['x' => '1']], json_decode($body, true));

        self::assertSame(404, self::answer($worker, self::get('http://localhost/missing'), $proto)[0]);
        self::assertCleanExit($worker);
    }

    public function testSlimExample(): void
    {
        $worker = new WorkerProcess(self::EXAMPLES . '/slim/worker.php');
        $worker->handshake();
        $proto = new ProtoCodec();

        [$status, $headers, $body] = self::answer($worker, self::get('http://localhost/'), $proto);
        self::assertSame(200, $status);
        self::assertSame(['text/html; charset=utf-8'], $headers['Content-Type']);
        self::assertStringContainsString('Slim 3 on trio_runner', $body);

        [$status, , $body] = self::answer($worker, self::get('http://localhost/hello/Ann'), $proto);
        self::assertSame(200, $status);
        self::assertSame('Hello, Ann!', $body);

        [$status, $headers, $body] = self::answer($worker, self::get('http://localhost/api/status'), $proto);
        self::assertSame(200, $status);
        self::assertSame(['application/json'], $headers['Content-Type']);
        $status = json_decode($body, true);
        self::assertSame('ok', $status['status']);
        self::assertSame($worker->pid(), $status['pid']);

        [$status, , $body] = self::answer($worker, self::get('http://localhost/no/such/page'), $proto);
        self::assertSame(404, $status);
        self::assertStringContainsString('Not Found', $body);

        self::assertCleanExit($worker);
    }

    public function testStrayOutputGoesToStderrNotIntoTheProtocol(): void
    {
        $worker = new WorkerProcess(__DIR__ . '/workers/noisy.php');
        $worker->handshake();

        for ($i = 0; $i < 2; ++$i) {
            [$status, , $body] = self::answer($worker, Golden::frame('g_http_request'), new ProtoCodec());
            self::assertSame(200, $status);
            self::assertSame('still a clean frame', $body);
        }
        self::assertSame(0, $worker->stop());

        $stderr = $worker->stderr();
        foreach (['boot echo', 'echoed during request', 'printed', 'printf 42', '["dumped"]=>',
            'a warning shown on stdout', 'nested buffer content', 'direct to stderr'] as $text) {
            self::assertStringContainsString($text, $stderr);
        }
    }

    public function testStreamedResponseStopsOnStopFrameOverPipes(): void
    {
        $worker = new WorkerProcess(__DIR__ . '/workers/streaming.php');
        $worker->handshake();

        $worker->send(self::get('http://localhost/events'));
        $pings = 0;
        for ($i = 0; $i < 12; ++$i) {
            $frame = $worker->receive();
            self::assertTrue($frame->hasStreamFlag(Frame::STREAM));
            self::assertSame('event ' . $i . "\n", Frames::split($frame)[1]);
            if ($frame->hasStreamFlag(Frame::PING)) {
                ++$pings;
                $worker->send(Frames::pong());
            }
        }
        self::assertSame(2, $pings, 'chunks 5 and 10 carry PING');

        // Cancel, then drain until the frame without STREAM (PROTOCOL.md 3.7).
        $worker->send(Frames::streamStop());
        $drained = 0;
        do {
            $frame = $worker->receive();
            self::assertLessThan(10_000, ++$drained, 'the worker never stopped streaming');
        } while ($frame->hasStreamFlag(Frame::STREAM));
        self::assertSame([0, [0], ''], [$frame->flags, $frame->options, $frame->payload]);

        [$status, , $body] = self::answer($worker, self::get('http://localhost/once'), new ProtoCodec());
        self::assertSame([200, 'once'], [$status, $body]);
        self::assertSame(0, $worker->stop());
        self::assertSame("generator cleaned up\n", $worker->stderr());
    }
}
