<?php

/*
 * Bootstrap of the PHP library's phpunit suite: the library itself, Debian's
 * nyholm/psr7, and the test support classes (namespace TrioRunner\Tests).
 */

declare(strict_types=1);

error_reporting(E_ALL);

require __DIR__ . '/../../trio_runner/php/autoload.php';
require_once '/usr/share/php/Nyholm/Psr7/autoload.php';

spl_autoload_register(static function (string $class): void {
    $prefix = 'TrioRunner\\Tests\\';
    if (str_starts_with($class, $prefix)) {
        $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
