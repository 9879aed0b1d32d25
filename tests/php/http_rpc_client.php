<?php

// An HTTP worker that calls back into the server over RPC (RR_RPC) while it
// handles a request: /workers answers its pool's workers as JSON, /log logs
// the query string through the app logger, /reset resets its own pool.
// Anything else: "pid N".

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

use TrioRunner\Rpc\AppLogger;
use TrioRunner\Rpc\WorkerPool;

$http = TrioRunner\Http\HttpWorker::create();
$pool = WorkerPool::create();
$log = AppLogger::create();

while ($request = $http->waitRequest()) {
    if ($request->path() === '/workers') {
        $pids = array_column($pool->workers('http'), 'pid');
        $http->respond(200, json_encode(['me' => getmypid(), 'pids' => $pids]));
        continue;
    }
    if ($request->path() === '/log') {
        $log->warning('from a request', $request->query);
        $http->respond(200, 'logged');
        continue;
    }
    if ($request->path() === '/reset') {
        $pool->reset('http');
        $http->respond(200, sprintf('reset by %d', getmypid()));
        continue;
    }
    $http->respond(200, sprintf('pid %d', getmypid()));
}
