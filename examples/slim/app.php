<?php

/**
 * The Slim 3 application of the example: routes only, nothing about the
 * server. worker.php serves it; it could as well be served by php-fpm with
 * `$app->run()`.
 *
 * Routes use PSR-7 methods only, since the request and response are
 * nyholm/psr7 objects, not Slim's own.
 */

declare(strict_types=1);

use Psr\Http\Message\ResponseInterface as Response;
use Psr\Http\Message\ServerRequestInterface as Request;
use Slim\App;

$app = new App(['settings' => ['displayErrorDetails' => false]]);

$app->get('/', function (Request $request, Response $response): Response {
    $response->getBody()->write(
        "<!doctype html>\n<title>Slim on trio_runner</title>\n"
        . "<h1>Slim 3 on trio_runner</h1>\n"
        . '<p>Try <a href="/hello/world">/hello/world</a> or'
        . " <a href=\"/api/status\">/api/status</a>.</p>\n",
    );

    return $response->withHeader('Content-Type', 'text/html; charset=utf-8');
});

$app->get('/hello/{name}', function (Request $request, Response $response, array $args): Response {
    $response->getBody()->write(sprintf('Hello, %s!', $args['name']));

    return $response->withHeader('Content-Type', 'text/plain; charset=utf-8');
});

$app->get('/api/status', function (Request $request, Response $response): Response {
    $response->getBody()->write(json_encode([
        'status' => 'ok',
        'pid' => getmypid(),
        'php' => PHP_VERSION,
        'memory' => memory_get_usage(),
    ], JSON_THROW_ON_ERROR));

    return $response->withHeader('Content-Type', 'application/json');
});

return $app;
