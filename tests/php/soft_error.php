<?php

// Answers the body "fail" with an error frame and anything else with its
// pid; the worker lives on either way.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($payload = $worker->waitPayload()) {
    if ($payload->body === 'fail') {
        $worker->error('soft_error: the order was not found');
        continue;
    }
    $worker->respond(new Payload('{}', (string) getmypid()));
}
