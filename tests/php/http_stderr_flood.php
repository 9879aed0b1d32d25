<?php

// An HTTP worker that writes a lot to stderr before it answers "pid N":
// /line one line of 100 KiB ("L" repeated, longer than a pipe's buffer),
// /flood?mib=N N MiB in lines of 64 KiB ("F" repeated), each one write.
// Other paths answer at once.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    if ($request->path() === '/line') {
        fwrite(STDERR, str_repeat('L', 100 * 1024) . "\n");
    } elseif ($request->path() === '/flood') {
        $line = str_repeat('F', 64 * 1024 - 1) . "\n";
        $writes = (int) ($request->query['mib'] ?? 1) * 16;
        for ($i = 0; $i < $writes; $i++) {
            fwrite(STDERR, $line);
        }
    }
    $http->respond(200, sprintf('pid %d', getmypid()), ['Content-Type' => 'text/plain']);
}
