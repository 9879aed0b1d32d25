<?php

/**
 * The smallest trio_runner app: every request gets a plain-text greeting.
 *
 * Run it with `python -m trio_runner serve -c roadrunner.toml` from this
 * directory, then `curl http://127.0.0.1:8080/`.
 */

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Http\HttpWorker;

$http = HttpWorker::create();

while ($request = $http->waitRequest()) {
    $http->respond(
        200,
        sprintf('Hello from PHP (pid %d)', getmypid()),
        ['Content-Type' => 'text/plain; charset=utf-8'],
    );
}
