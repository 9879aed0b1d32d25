<?php

// Streams an endless body until the server sends STOP; "/once" gets a
// plain response, to show the worker is healthy after a cancelled stream.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    if ($request->path() === '/once') {
        $http->respond(200, 'once');
        continue;
    }
    $http->respond(200, (static function () {
        try {
            for ($i = 0; ; ++$i) {
                yield "event $i\n";
            }
        } finally {
            fwrite(STDERR, "generator cleaned up\n");
        }
    })(), ['Content-Type' => 'text/event-stream']);
}
