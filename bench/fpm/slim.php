<?php

/**
 * php-fpm's side of the Slim benchmark: the same Slim 3 app as
 * examples/slim (its app.php), booted for every request and run with
 * Slim's own request and response objects, as an FPM deployment runs it.
 */

declare(strict_types=1);

error_reporting(error_reporting() & ~E_DEPRECATED);  // as examples/slim does

require_once '/usr/share/php/Slim/autoload.php';

/** @var \Slim\App $app */
$app = require __DIR__ . '/../../examples/slim/app.php';
$app->run();
