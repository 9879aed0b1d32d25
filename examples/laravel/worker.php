<?php

/*
 * trio_runner (or RoadRunner-protocol) worker for the Laravel example.
 *
 * One process = one booted Laravel application serving requests one after
 * the other until the server says stop:
 *
 *     wait for a request -> run it through Laravel -> respond -> terminate
 *
 * Started by the server as `php worker.php` (see roadrunner.toml), with the
 * protocol on stdin/stdout. TRIO_RUNNER_PHP may point at the library's
 * autoload.php when this directory is not inside the trio_runner checkout.
 */

declare(strict_types=1);

use App\Worker\LaravelBridge;
use TrioRunner\Exception\ProtocolException;
use TrioRunner\Http\HttpWorker;
use TrioRunner\Worker;

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

// First, so that from here on anything printed goes to stderr, not into the
// protocol stream on stdout.
$http = new HttpWorker(Worker::create());

try {
    $app = require __DIR__ . '/bootstrap/app.php';   // also sets up App\ autoloading
    $bridge = new LaravelBridge($app);
} catch (Throwable $e) {
    fwrite(STDERR, "[laravel worker] boot failed: {$e}\n");
    exit(1);
}

while (true) {
    try {
        $request = $http->waitRequest();
    } catch (ProtocolException $e) {
        // A request the library could not decode: fail that one request
        // (the server answers it with an error) and keep serving.
        fwrite(STDERR, "[laravel worker] undecodable request: {$e->getMessage()}\n");
        if (!$http->worker()->hasResponded()) {
            $http->worker()->error($e->getMessage());
        }
        continue;
    }
    if ($request === null) {
        break;                                  // the server asked us to stop
    }

    // run() renders any exception from the application as Laravel's error
    // response; it does not throw for a failing request.
    [$status, $headers, $body] = $bridge->run($request);
    try {
        $http->respond($status, $body, $headers);
    } finally {
        // After the response is on its way: terminable middleware,
        // terminating callbacks, then the reset of per-request state.
        $bridge->terminate();
    }
}
