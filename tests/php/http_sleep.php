<?php

// An HTTP worker that sleeps ?s=N seconds (fractions allowed) before it
// answers "pid N", saying so on stderr first so a test knows the request
// is in flight. Without ?s it answers at once: /pid is the cheap way to
// ask which worker serves.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    $seconds = (float) ($request->query['s'] ?? 0);
    if ($seconds > 0) {
        fwrite(STDERR, sprintf("http_sleep: sleeping %g s\n", $seconds));
        usleep((int) ($seconds * 1_000_000));
    }
    $http->respond(200, sprintf('pid %d', getmypid()), ['Content-Type' => 'text/plain']);
}
