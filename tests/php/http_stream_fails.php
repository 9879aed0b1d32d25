<?php

// Streamed responses that fail after their first chunk has gone out:
//   /throw  a generator body throws RuntimeException("generator failed");
//   /fatal  a generator body hits a PHP fatal error (memory exhausted);
//   /psr7   a PSR-7 response whose body stream throws on its second read.
// Any other path answers "pid N", so a test can tell whether the worker
// that failed, or a replacement, serves the next request.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');
require_once '/usr/share/php/Nyholm/Psr7/autoload.php'; // Debian's php-nyholm-psr7

use Nyholm\Psr7\Factory\Psr17Factory;
use TrioRunner\Http\Psr7Worker;
use TrioRunner\Worker;

/**
 * A body of unknown size (so it is streamed) that fails mid-way. Untyped
 * parameters fit both psr/http-message 1 (Debian's) and 2.
 */
final class FailingStream implements Psr\Http\Message\StreamInterface
{
    private int $reads = 0;

    public function __toString(): string { return ''; }
    public function close(): void {}
    public function detach() { return null; }
    public function getSize(): ?int { return null; }
    public function tell(): int { return 0; }
    public function eof(): bool { return false; }
    public function isSeekable(): bool { return false; }
    public function seek($offset, $whence = SEEK_SET): void {}
    public function rewind(): void {}
    public function isWritable(): bool { return false; }
    public function write($string): int { return 0; }
    public function isReadable(): bool { return true; }
    public function getContents(): string { return ''; }
    public function getMetadata($key = null) { return null; }

    public function read($length): string
    {
        if (++$this->reads > 1) {
            throw new RuntimeException('body stream failed');
        }

        return "part1\n";
    }
}

$factory = new Psr17Factory();
$psr7 = new Psr7Worker(Worker::create(), $factory, $factory, $factory);
$http = $psr7->httpWorker();

$http->serve(static function (TrioRunner\Http\Request $request) use ($psr7, $factory) {
    switch ($request->path()) {
        case '/throw':
            return [200, ['Content-Type' => 'text/plain'], (static function () {
                yield "part1\n";
                throw new RuntimeException('generator failed');
            })()];
        case '/fatal':
            return [200, ['Content-Type' => 'text/plain'], (static function () {
                yield "part1\n";
                ini_set('memory_limit', '16M');
                $hog = [];
                while (true) {
                    $hog[] = str_repeat('x', 1024 * 1024);
                }
            })()];
        case '/psr7':
            $psr7->respond($factory->createResponse(200)->withBody(new FailingStream()));

            return null;
    }

    return [200, ['Content-Type' => 'text/plain'], 'pid ' . getmypid()];
});
