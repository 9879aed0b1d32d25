<?php

// Streams a body and names X-Checksum in Trailer (PROTOCOL.md 4.6): over
// HTTP/2 to a client that accepts trailers it must come after the body.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    $body = (function (): Generator {
        yield 'part one, ';
        yield 'part two';
    })();
    $http->respond(200, $body, [
        'Content-Type' => 'text/plain',
        'Trailer' => 'X-Checksum',
        'X-Checksum' => 'sha1=0123abcd',
    ]);
}
