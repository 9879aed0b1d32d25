<?php

/**
 * Entry point of the trio_runner PHP worker library.
 *
 * Registers a PSR-4 autoloader for the `TrioRunner\` namespace (files under
 * src/) and a loader of last resort for the two PSR-15 interfaces, which are
 * declared from fallback/ only when no installed package provides them.
 * Works with or without Composer; requiring this file more than once, even
 * through different paths, registers the loaders once.
 */

declare(strict_types=1);

if (defined('TRIO_RUNNER_PHP_DIR')) {
    return;
}

define('TRIO_RUNNER_PHP_DIR', __DIR__);

spl_autoload_register(static function (string $class): void {
    $prefix = 'TrioRunner\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $relative = str_replace('\\', '/', substr($class, strlen($prefix)));
    $file = __DIR__ . '/src/' . $relative . '.php';
    if (is_file($file)) {
        require $file;
    }
});

/*
 * PSR-15 (psr/http-server-handler and -middleware). Appended, so loaders
 * registered before this file ran first. Loaders registered later (a
 * Composer autoloader required after us) are asked explicitly before the
 * fallback declaration is used, so a real package always wins.
 */
spl_autoload_register(static function (string $class): void {
    static $busy = false;
    $names = [
        'Psr\\Http\\Server\\RequestHandlerInterface' => 'RequestHandlerInterface',
        'Psr\\Http\\Server\\MiddlewareInterface' => 'MiddlewareInterface',
    ];
    if (!isset($names[$class]) || $busy) {
        return;
    }
    $busy = true;
    try {
        $debian = [
            '/usr/share/php/Psr/Http/Server/autoload.php',
            '/usr/share/php/Psr/Http/Server/Handler/autoload.php',
            '/usr/share/php/Psr/Http/Server/Middleware/autoload.php',
        ];
        foreach ($debian as $file) {
            if (is_file($file)) {
                require_once $file; // registers a loader, asked below
            }
        }
        // PHP does not re-enter autoloading for a class being autoloaded,
        // so each loader is asked directly; this one returns early ($busy).
        foreach (spl_autoload_functions() as $loader) {
            if (interface_exists($class, false)) {
                return;
            }
            $loader($class);
        }
        if (!interface_exists($class, false)) {
            require __DIR__ . '/fallback/Psr/Http/Server/' . $names[$class] . '.php';
        }
    } finally {
        $busy = false;
    }
});
