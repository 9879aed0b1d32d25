<?php

// /stream streams "pid <pid>" then 200 more chunks, 20 ms apart, and says on
// stderr when the server stopped the stream; any other path answers with
// the pid, so a test can tell whether the same worker serves it.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

use TrioRunner\Exception\StreamStoppedException;

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    if ($request->path() !== '/stream') {
        $http->respond(200, 'pid ' . getmypid(), ['Content-Type' => 'text/plain']);
        continue;
    }
    $chunks = (function (): Generator {
        $sent = 0;
        try {
            yield 'pid ' . getmypid() . "\n";
            for (; $sent < 200; $sent++) {
                usleep(20_000);
                yield "chunk $sent\n";
            }
        } catch (StreamStoppedException) {
            fwrite(STDERR, "stream stopped after $sent chunks\n");
        }
    })();
    $http->respond(200, $chunks, ['Content-Type' => 'text/plain']);
}
