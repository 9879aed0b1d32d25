<?php

// An HTTP worker that, on /echo, writes a line straight to STDOUT (past the
// library's output buffer, as a stray fwrite or a C extension would) and
// then answers as if nothing happened. In pipe mode STDOUT is the relay, so
// the line corrupts it. On /after it answers first and then writes the
// stray line, while the server expects nothing of it, and says so on
// stderr. Other paths answer "pid N".

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    if ($request->path() === '/echo') {
        fwrite(STDOUT, "http_echo_stdout: a stray line on stdout\n");
    }
    $http->respond(200, sprintf('pid %d', getmypid()), ['Content-Type' => 'text/plain']);
    if ($request->path() === '/after') {
        fwrite(STDOUT, "http_echo_stdout: a stray line after the answer\n");
        fwrite(STDERR, "http_echo_stdout: wrote after the answer\n");
    }
}
