<?php

/*
 * Class loading without Composer.
 *
 * Debian's php-laravel-framework (and every library it depends on) is
 * installed under /usr/share/php, one directory per vendor namespace, each
 * with a generated autoload.php holding a class map.
 * /usr/share/php/Illuminate/autoload.php is the aggregate one: it pulls in
 * the per-component loaders (Illuminate/Routing/autoload.php, ...) and those
 * of the dependencies (Symfony, Monolog, Carbon, Dotenv, ...) with paths
 * relative to the include_path, and loads the helper function files
 * (app(), view(), collect(), ...).
 *
 * On top of that we register a tiny PSR-4 loader for this application's own
 * namespace: App\ => app/.
 *
 * Set DEBIAN_PHP_DIR to use a different library root (default /usr/share/php).
 */

declare(strict_types=1);

(static function (): void {
    $libDir = rtrim((string) (getenv('DEBIAN_PHP_DIR') ?: '/usr/share/php'), '/');

    // The Debian loaders use include_path-relative require_once calls, so
    // make sure the library root is on it even under `php -n`.
    $paths = explode(PATH_SEPARATOR, (string) get_include_path());
    if (!in_array($libDir, $paths, true)) {
        set_include_path(implode(PATH_SEPARATOR, [...$paths, $libDir]));
    }

    $framework = $libDir . '/Illuminate/autoload.php';
    if (!is_file($framework)) {
        fwrite(STDERR, "Laravel not found at {$framework}; install the Debian package php-laravel-framework\n");
        exit(1);
    }
    require_once $framework;

    $appDir = dirname(__DIR__) . '/app/';
    spl_autoload_register(static function (string $class) use ($appDir): void {
        if (strncmp($class, 'App\\', 4) !== 0) {
            return;
        }
        $file = $appDir . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    });
})();
