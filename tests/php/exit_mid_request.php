<?php

// Exits without answering when the request body is "die"; otherwise answers
// with its pid.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($payload = $worker->waitPayload()) {
    if ($payload->body === 'die') {
        fwrite(STDERR, "exit_mid_request: giving up on this one\n");
        exit(3);
    }
    $worker->respond(new Payload('{}', (string) getmypid()));
}
