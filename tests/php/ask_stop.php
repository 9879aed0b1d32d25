<?php

// Asks to be stopped on its first request, instead of answering it; later
// workers answer with their pid.
//
// ASK_STOP_FLAG names a file that does not exist yet: the first worker to
// get a request creates it and asks to stop, so the one the server re-runs
// the request on answers.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();
$flag = getenv('ASK_STOP_FLAG');

while ($worker->waitPayload()) {
    // 'x' creates the file or fails if it exists: only one worker asks.
    if ($flag !== false && @fopen($flag, 'x') !== false) {
        $worker->stop();
        continue;
    }
    $worker->respond(new Payload('{}', (string) getmypid()));
}
