<?php

// Serves like echo.php but never exits on the stop frame: after
// waitPayload() returns null it sleeps on, so only SIGKILL ends it.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($payload = $worker->waitPayload()) {
    $worker->respond(new Payload('{}', (string) getmypid()));
}

fwrite(STDERR, "ignore_stop: got the stop frame, staying up\n");
while (true) {
    sleep(60);
}
