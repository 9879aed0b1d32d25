<?php

// Answers every request with its environment as a JSON object.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

while ($worker->waitPayload()) {
    $worker->respond(new Payload('{}', json_encode(getenv(), JSON_THROW_ON_ERROR)));
}
