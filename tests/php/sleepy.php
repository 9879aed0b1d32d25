<?php

// Sleeps for the number of seconds in the request body (fractions allowed),
// then answers with its pid.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($payload = $worker->waitPayload()) {
    usleep((int) ((float) $payload->body * 1_000_000));
    $worker->respond(new Payload('{}', (string) getmypid()));
}
