<?php

// An HTTP worker that dies mid-request on /die (exit(1) before it answers)
// and otherwise answers "pid N", so a test can tell a replacement worker
// from the one that died.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    if ($request->path() === '/die') {
        exit(1);
    }
    $http->respond(200, sprintf('pid %d', getmypid()), ['Content-Type' => 'text/plain']);
}
