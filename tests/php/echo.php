<?php

// Answers every request with its own context and body; the body "pid" is
// answered with this process's pid instead, so tests can tell workers apart.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($payload = $worker->waitPayload()) {
    if ($payload->body === 'pid') {
        $worker->respond(new Payload($payload->context, (string) getmypid()));
        continue;
    }
    $worker->respond(new Payload($payload->context, $payload->body));
}
