<?php

// Sends a 103 Early Hints with a Link and a header of its own, then the real
// response with other headers: each must reach the client with its own
// headers only (PROTOCOL.md 4.6).

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    $http->respond(103, '', [
        'Link' => ['</style.css>; rel=preload; as=style', '</app.js>; rel=preload; as=script'],
        'X-Hint' => 'only on the 103',
    ], endOfStream: false);
    $http->respond(200, 'final', ['Content-Type' => 'text/plain', 'X-Final' => 'yes']);
}
