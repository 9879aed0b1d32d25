<?php

// Dies at boot with an uncaught exception, before it becomes a worker: the
// server must report PHP's fatal error text as the reason it did not start.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

throw new RuntimeException('crash_on_boot: the database is unreachable');
