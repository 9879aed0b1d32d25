<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Exception\RpcException;
use TrioRunner\Rpc\AppLogger;
use TrioRunner\Rpc\Metrics;
use TrioRunner\Rpc\Rpc;
use TrioRunner\Rpc\WorkerPool;

/**
 * The RPC client against a real trio_runner server that this test starts
 * (python -m trio_runner serve, with [rpc] on a unix socket). The Python
 * suite passes its interpreter as TRIO_RUNNER_PYTHON; without it the test
 * is skipped.
 */
final class RpcServerTest extends TestCase
{
    private const TIMEOUT = 15.0;

    private string $dir;
    private string $log;
    private string $url = '';
    /** @var resource|null */
    private $server = null;

    protected function setUp(): void
    {
        $python = getenv('TRIO_RUNNER_PYTHON');
        if ($python === false || $python === '') {
            self::markTestSkipped('TRIO_RUNNER_PYTHON is not set: run through pytest tests/php_lib');
        }
        $this->dir = sys_get_temp_dir() . '/rr-php-' . bin2hex(random_bytes(4));
        mkdir($this->dir);
        $this->log = $this->dir . '/server.log';
        $script = realpath(__DIR__ . '/../php/http_rpc_client.php');
        file_put_contents($this->dir . '/roadrunner.toml', <<<TOML
            version = "3"
            [server]
            command = "php $script"
            [http]
            address = "127.0.0.1:0"
            [http.pool]
            num_workers = 2
            [rpc]
            listen = "unix://{$this->dir}/rpc.sock"
            [metrics]
            address = "127.0.0.1:0"
            TOML);
        $server = proc_open(
            [$python, '-m', 'trio_runner', 'serve', '-c', $this->dir . '/roadrunner.toml'],
            [0 => ['file', '/dev/null', 'r'], 1 => ['file', $this->log, 'w'], 2 => ['file', $this->log, 'a']],
            $pipes,
            dirname(__DIR__, 2),
        );
        self::assertIsResource($server);
        $this->server = $server;
        $deadline = microtime(true) + self::TIMEOUT;
        while (!preg_match('~http: serving on (http://\S+)~', $this->output(), $m)) {
            if (!proc_get_status($server)['running'] || microtime(true) > $deadline) {
                self::fail("the server did not start:\n" . $this->output());
            }
            usleep(20_000);
        }
        $this->url = $m[1];
    }

    protected function tearDown(): void
    {
        if ($this->server !== null) {
            proc_terminate($this->server, 15);
            $deadline = microtime(true) + self::TIMEOUT;
            while (proc_get_status($this->server)['running'] && microtime(true) < $deadline) {
                usleep(20_000);
            }
            if (proc_get_status($this->server)['running']) {
                proc_terminate($this->server, 9);
            }
            proc_close($this->server);
        }
        if (isset($this->dir) && is_dir($this->dir)) {
            array_map('unlink', glob($this->dir . '/*') ?: []);
            rmdir($this->dir);
        }
    }

    private function output(): string
    {
        return (string) @file_get_contents($this->log);
    }

    private function rpc(): Rpc
    {
        return new Rpc("unix://{$this->dir}/rpc.sock");
    }

    private function waitForLog(string $text): void
    {
        $deadline = microtime(true) + self::TIMEOUT;
        while (!str_contains($this->output(), $text)) {
            if (microtime(true) > $deadline) {
                self::fail("no \"$text\" in the server's log:\n" . $this->output());
            }
            usleep(20_000);
        }
    }

    public function testWorkerPoolListsAddsRemovesAndResets(): void
    {
        $pool = new WorkerPool($this->rpc());

        self::assertSame(['http'], $pool->pools());
        $workers = $pool->workers('http');
        self::assertCount(2, $workers);
        foreach ($workers as $worker) {
            self::assertGreaterThan(0, $worker['pid']);
            self::assertSame('ready', $worker['statusStr']);
            self::assertGreaterThan(1 << 20, $worker['memoryUsage']);
        }

        $pool->addWorker('http');
        self::assertSame(3, $pool->count('http'));
        $pool->removeWorker('http');
        self::assertSame(2, $pool->count('http'));

        $before = array_column($pool->workers('http'), 'pid');
        $pool->reset('http');
        $after = array_column($pool->workers('http'), 'pid');
        self::assertCount(2, $after);
        self::assertSame([], array_intersect($before, $after));
    }

    public function testAppLoggerWritesToTheServersLog(): void
    {
        $log = new AppLogger($this->rpc());

        $log->info('order shipped', ['order' => 42, 'to' => 'Lyon']);
        $log->error('plain error');
        $log->log('a raw line');

        $this->waitForLog('a raw line');
        self::assertMatchesRegularExpression('~INFO\s+app\s+order shipped order=42 to=Lyon~', $this->output());
        self::assertMatchesRegularExpression('~ERROR\s+app\s+plain error~', $this->output());
    }

    public function testUnknownMethodsGetNetRpcTexts(): void
    {
        $rpc = $this->rpc();
        try {
            $rpc->call('informer.Nope', 'http');
            self::fail('no exception');
        } catch (RpcException $e) {
            self::assertSame("rpc: can't find method informer.Nope", $e->getMessage());
        }
        self::assertSame(['http'], $rpc->call('informer.List', true), 'the connection goes on');
    }

    public function testACounterDeclaredOverRpcShowsOnMetrics(): void
    {
        self::assertSame(1, preg_match('~metrics: serving on (http://\S+)~', $this->output(), $m));
        $metrics = new Metrics($this->rpc());

        $metrics->declare('app_orders', Metrics::counter('Orders placed.', ['kind']));
        $metrics->add('app_orders', 2, ['book']);
        $metrics->add('app_orders', 1.5, ['book']);
        $metrics->add('app_orders', 1, ['pen']);

        $text = (string) file_get_contents($m[1]);
        self::assertStringContainsString("# HELP app_orders_total Orders placed.\n", $text);
        self::assertStringContainsString("app_orders_total{kind=\"book\"} 3.5\n", $text);
        self::assertStringContainsString("app_orders_total{kind=\"pen\"} 1.0\n", $text);
        self::assertStringContainsString('rr_http_total_workers 2.0', $text);

        try {
            $metrics->add('app_orders', 1);
            self::fail('no exception');
        } catch (RpcException $e) {
            self::assertSame('required labels for collector app_orders', $e->getMessage());
        }
        try {
            $metrics->add('app_missing', 1);
            self::fail('no exception');
        } catch (RpcException $e) {
            self::assertStringStartsWith('undefined collector app_missing, try first Declare', $e->getMessage());
        }
    }

    public function testWorkersCallBackIntoTheServerWhileTheyServe(): void
    {
        $reply = json_decode((string) file_get_contents($this->url . '/workers'), true);
        self::assertContains($reply['me'], $reply['pids']);
        self::assertCount(2, $reply['pids']);

        self::assertSame('logged', file_get_contents($this->url . '/log?user=ann'));
        $this->waitForLog('from a request');
        self::assertMatchesRegularExpression('~WARNING\s+app\s+from a request user=ann~', $this->output());
    }
}
