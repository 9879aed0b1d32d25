<?php

// Answers one request with its pid and exits at once, as an app that
// recycles itself after a request does: the answer must still arrive.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

if ($worker->waitPayload()) {
    $worker->respond(new Payload('{}', (string) getmypid()));
}
exit(0);
