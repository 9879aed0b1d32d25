<?php

declare(strict_types=1);

namespace TrioRunner\Tests\Support;

use PHPUnit\Framework\Assert;
use TrioRunner\Frame;
use TrioRunner\Relay\RelayInterface;
use TrioRunner\Relay\StreamRelay;

/**
 * A PHP worker script in a child process, driven the way the server drives
 * it: over its stdin/stdout (pipes), or over a socket it connects to when
 * a listening server socket is given. Every read has a timeout, and the
 * child is killed when the object goes away, so a broken worker fails a
 * test instead of hanging the suite.
 */
final class WorkerProcess
{
    public const TIMEOUT = 5.0;

    /** @var resource */
    private $process;
    /** @var array<int, resource> */
    private array $pipes = [];
    private string $stderrFile;
    private RelayInterface $relay;
    private ?int $exitCode = null;

    /**
     * @param array<string, string> $env added to this process's environment
     * @param resource|null $server a listening socket: the worker connects to
     *                              it (set RR_RELAY in $env to match)
     */
    public function __construct(string $script, array $env = [], $server = null, ?string $cwd = null)
    {
        $this->stderrFile = tempnam(sys_get_temp_dir(), 'trio-worker-stderr');
        $env = $env + [
            'TRIO_RUNNER_PHP' => realpath(__DIR__ . '/../../../trio_runner/php/autoload.php'),
            'RR_RELAY' => 'pipes',
        ] + getenv();
        $process = proc_open(
            [PHP_BINARY, '-d', 'display_errors=stderr', '-d', 'error_reporting=-1', $script],
            [0 => ['pipe', 'r'], 1 => ['pipe', 'w'], 2 => ['file', $this->stderrFile, 'w']],
            $this->pipes,
            $cwd ?? dirname($script),
            $env,
        );
        Assert::assertIsResource($process, "could not start php $script");
        $this->process = $process;

        if ($server === null) {
            $this->relay = new StreamRelay($this->pipes[1], $this->pipes[0], self::TIMEOUT, 'the worker');
        } else {
            $conn = @stream_socket_accept($server, self::TIMEOUT);
            Assert::assertIsResource($conn, "the worker did not connect; stderr:\n" . $this->stderr());
            $this->relay = new StreamRelay($conn, $conn, self::TIMEOUT, 'the worker (socket)');
        }
    }

    public function __destruct()
    {
        $this->kill();
        @unlink($this->stderrFile);
    }

    public function pid(): int
    {
        return proc_get_status($this->process)['pid'];
    }

    public function send(Frame $frame): void
    {
        $this->relay->send($frame);
    }

    public function sendBytes(string $bytes): void
    {
        fwrite($this->pipes[0], $bytes);
        fflush($this->pipes[0]);
    }

    public function receive(): Frame
    {
        try {
            return $this->relay->receive();
        } catch (\Throwable $e) {
            Assert::fail(get_class($e) . ': ' . $e->getMessage() . "\nworker stderr:\n" . $this->stderr());
        }
    }

    /** Send the pid handshake and check the reply; returns the reported pid. */
    public function handshake(): int
    {
        $this->send(Frames::handshake(getmypid()));
        $reply = $this->receive();
        Assert::assertSame(Frame::CONTROL, $reply->flags, 'pid reply must have flags 0x01');
        Assert::assertSame([], $reply->options);
        $pid = json_decode($reply->payload, true)['pid'] ?? null;
        Assert::assertIsInt($pid, 'pid reply payload: ' . $reply->payload);
        Assert::assertGreaterThan(0, $pid);

        return $pid;
    }

    /** Send one request frame and return the worker's answer. */
    public function exchange(Frame $request): Frame
    {
        $this->send($request);

        return $this->receive();
    }

    /** Close the worker's stdin, as a server that went away would. */
    public function closeInput(): void
    {
        fclose($this->pipes[0]);
    }

    /** Send the stop control frame and wait for a clean exit; returns the exit code. */
    public function stop(): int
    {
        $this->send(Frames::stopControl());

        return $this->wait();
    }

    /** Wait for the process to exit (killing it after the timeout). */
    public function wait(float $timeout = self::TIMEOUT): int
    {
        $deadline = microtime(true) + $timeout;
        while ($this->exitCode === null && microtime(true) < $deadline) {
            $status = proc_get_status($this->process);
            if (!$status['running']) {
                $this->exitCode = $status['exitcode'];
                break;
            }
            usleep(5_000);
        }
        if ($this->exitCode === null) {
            $this->kill();
            Assert::fail("the worker did not exit within {$timeout}s; stderr:\n" . $this->stderr());
        }

        return $this->exitCode;
    }

    public function stderr(): string
    {
        return (string) file_get_contents($this->stderrFile);
    }

    private function kill(): void
    {
        if (is_resource($this->process)) {
            $status = proc_get_status($this->process);
            if ($status['running']) {
                proc_terminate($this->process, 9);
            }
            foreach ($this->pipes as $pipe) {
                if (is_resource($pipe)) {
                    fclose($pipe);
                }
            }
            proc_close($this->process);
        }
    }
}
