<?php

/**
 * php-fpm's side of the Laravel benchmark: the Laravel 8 app of
 * examples/laravel, built and booted by the same bootstrap/app.php for
 * every request (the work a worker does once), then one request through
 * the HTTP kernel as Laravel's public/index.php does.
 */

declare(strict_types=1);

$app = require __DIR__ . '/../../examples/laravel/bootstrap/app.php';

$kernel = $app->make(Illuminate\Contracts\Http\Kernel::class);
$request = Illuminate\Http\Request::capture();
$app->instance('request', $request);
$response = $kernel->handle($request);
$response->send();
$kernel->terminate($request, $response);
