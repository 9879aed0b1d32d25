<?php

/**
 * Serves the Slim 3 app of app.php through trio_runner, with nyholm/psr7
 * (Debian's php-slim and php-nyholm-psr7, no Composer).
 *
 * Slim boots once per worker process; each request goes through
 * App::process(), which returns the response instead of printing it (unlike
 * App::run(), which would echo headers and body to stdout: the protocol
 * channel in pipe mode).
 */

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

// Slim 3.12 predates PHP 8.1's return types on ArrayAccess & co; loading it
// under E_ALL logs a dozen "Deprecated" lines per worker. They say nothing
// about this app, so keep them out of the server log.
error_reporting(error_reporting() & ~E_DEPRECATED);

require_once '/usr/share/php/Slim/autoload.php';
require_once '/usr/share/php/Nyholm/Psr7/autoload.php';

use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ServerRequestInterface;
use TrioRunner\Http\Psr7Worker;
use TrioRunner\Worker;

// The worker first: from here on, stray output goes to STDERR, not into
// the protocol on stdout, even while the app boots.
$factory = new Psr17Factory();
$worker = new Psr7Worker(Worker::create(), $factory, $factory, $factory);

/** @var \Slim\App $app */
$app = require __DIR__ . '/app.php';

$worker->serve(
    static fn (ServerRequestInterface $request) => $app->process(
        $request,
        $factory->createResponse(),
    ),
);
