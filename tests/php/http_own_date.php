<?php

// Answers /own with a Date of its own (a fixed one, far from now) and
// anything else with none: the server must send exactly one Date either
// way, PHP's when it sent one.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    $headers = ['Content-Type' => 'text/plain'];
    if (str_ends_with($request->uri, '/own')) {
        $headers['Date'] = 'Thu, 01 Jan 2037 00:00:00 GMT';
    }
    $http->respond(200, 'dated', $headers);
}
