<?php

/**
 * php-fpm's side of the hello benchmark: what examples/hello/worker.php
 * answers, as one script per request.
 */

declare(strict_types=1);

header('Content-Type: text/plain; charset=utf-8');
echo sprintf('Hello from PHP (pid %d)', getmypid());
