<?php

// An HTTP worker that takes a second to answer /sleep, saying so on stderr
// first (the server logs it), so a test knows the request is in flight.
// Any other path is answered at once.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    if ($request->path() === '/sleep') {
        fwrite(STDERR, "sleeping on /sleep\n");
        usleep(1_000_000);
    }
    $http->respond(200, 'done ' . $request->path(), ['Content-Type' => 'text/plain']);
}
