<?php

// An HTTP worker that answers every request with JSON of what PHP saw:
// method, uri, remote_addr, headers, pid, and how many requests this worker
// has served (so a test can tell a request never reached PHP). `?pad=N`
// adds N bytes of text, for responses big enough to be worth compressing.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

$served = 0;
while ($request = $http->waitRequest()) {
    $served++;
    $report = [
        'method' => $request->method,
        'uri' => $request->uri,
        'remote_addr' => $request->remoteAddr,
        'headers' => $request->headers,
        'pid' => getmypid(),
        'served' => $served,
        'padding' => str_repeat('x', (int) ($request->query['pad'] ?? 0)),
    ];
    $http->respond(200, json_encode($report, JSON_THROW_ON_ERROR), [
        'Content-Type' => 'application/json',
    ]);
}
