<?php

// On each request, writes known lines to stderr (one of them 100 KiB long,
// longer than a pipe's buffer) before it answers with its pid.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($worker->waitPayload()) {
    fwrite(STDERR, "stderr_lines: first\n");
    fwrite(STDERR, "stderr_lines: second\n");
    fwrite(STDERR, str_repeat('x', 100 * 1024) . "\n");
    fwrite(STDERR, "stderr_lines: last\n");
    $worker->respond(new Payload('{}', (string) getmypid()));
}
