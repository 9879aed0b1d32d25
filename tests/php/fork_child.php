<?php

// Forks a child that sleeps for 300 s and answers with the child's pid, as
// an app that starts a background job might. The body "exit" also makes
// the worker exit once it has answered. The child never touches the relay.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($payload = $worker->waitPayload()) {
    $child = pcntl_fork();
    if ($child === 0) {
        sleep(300);
        exit(0);
    }
    if ($child < 0) {
        $worker->error('pcntl_fork failed');
        continue;
    }
    $worker->respond(new Payload($payload->context, (string) $child));
    if ($payload->body === 'exit') {
        exit(0);
    }
}
