<?php

// Writes the 11-byte body "hello world", without a Content-Length, whatever
// the method, HEAD included (issue #3, bug input 8): the server must drop it
// for HEAD and keep the connection usable.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    $http->respond(200, 'hello world', ['Content-Type' => 'text/plain']);
}
