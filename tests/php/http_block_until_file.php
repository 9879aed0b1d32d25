<?php

// An HTTP worker that, on /block?until=<path>, holds the request until that
// file exists (at most 20 s), saying so on stderr first, so a test decides
// when the worker is free again. Any other path is answered at once with
// "pid N".

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    if ($request->path() === '/block') {
        $until = (string) ($request->query['until'] ?? '');
        fwrite(STDERR, "blocked until {$until} exists\n");
        $deadline = microtime(true) + 20;
        while (!file_exists($until) && microtime(true) < $deadline) {
            usleep(10_000);
        }
    }
    $http->respond(200, sprintf('pid %d', getmypid()), ['Content-Type' => 'text/plain']);
}
