<?php

/*
 * Build and boot the application once, and return it.
 *
 * Everything a PHP-FPM request would redo each time (configuration, service
 * providers, routes, facades) happens here, once per worker process. The
 * returned application is then reused for every request (see
 * app/Worker/LaravelBridge.php).
 *
 * Nothing here depends on trio_runner: any long-running script can
 * `$app = require __DIR__ . '/bootstrap/app.php';`.
 */

declare(strict_types=1);

require_once __DIR__ . '/autoload.php';

return (static function (): Illuminate\Foundation\Application {
    $basePath = dirname(__DIR__);
    $storage = $basePath . '/storage';

    // The only place the application writes to. Not in git: create it.
    foreach ([
        'app',
        'framework/cache/data',
        'framework/sessions',
        'framework/views',
        'logs',
    ] as $dir) {
        $path = $storage . '/' . $dir;
        if (!is_dir($path) && !@mkdir($path, 0775, true) && !is_dir($path)) {
            throw new RuntimeException("Cannot create {$path}");
        }
    }

    // Settings read through Laravel's Env repository (which looks at
    // $_SERVER, then $_ENV, then getenv()). A value already present in the
    // environment wins.
    $defaults = [
        // This is a web server even though PHP_SAPI is "cli".
        'APP_RUNNING_IN_CONSOLE' => 'false',
        // Laravel writes its service and package manifests to
        // bootstrap/cache/ by default; keep every write under storage/.
        'APP_SERVICES_CACHE' => $storage . '/framework/cache/services.php',
        'APP_PACKAGES_CACHE' => $storage . '/framework/cache/packages.php',
        'APP_CONFIG_CACHE' => $storage . '/framework/cache/config.php',
        'APP_ROUTES_CACHE' => $storage . '/framework/cache/routes-v7.php',
        'APP_EVENTS_CACHE' => $storage . '/framework/cache/events.php',
    ];
    foreach ($defaults as $name => $value) {
        if (!isset($_SERVER[$name]) && !isset($_ENV[$name]) && getenv($name) === false) {
            $_SERVER[$name] = $_ENV[$name] = $value;
        }
    }

    $app = new Illuminate\Foundation\Application($basePath);

    $app->singleton(Illuminate\Contracts\Http\Kernel::class, App\Http\Kernel::class);
    $app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, App\Exceptions\Handler::class);

    // Some providers (the URL generator, for one) want a request while they
    // boot. Give them a placeholder built from APP_URL; every real request
    // replaces it through $app->instance('request', ...).
    $app->instance('request', Illuminate\Http\Request::create(
        (string) (getenv('APP_URL') ?: 'http://127.0.0.1:8080') . '/',
        'GET',
        [],
        [],
        [],
        ['SCRIPT_NAME' => '', 'SCRIPT_FILENAME' => '', 'PHP_SELF' => '']
    ));

    /** @var App\Http\Kernel $kernel */
    $kernel = $app->make(Illuminate\Contracts\Http\Kernel::class);
    $kernel->bootstrap();

    // dump()/dd() would write to php://stdout under the CLI SAPI, which is
    // the worker's protocol pipe: send dumps to stderr.
    Symfony\Component\VarDumper\VarDumper::setHandler(static function ($value): void {
        (new Symfony\Component\VarDumper\Dumper\CliDumper('php://stderr'))
            ->dump((new Symfony\Component\VarDumper\Cloner\VarCloner())->cloneVar($value));
    });

    // Resolve the long-lived services now rather than inside the first
    // request, so that the first request is not slower than the others and
    // so that these instances exist before the per-request reset takes its
    // snapshot.
    foreach ([
        'router', 'url', 'view', 'blade.compiler', 'translator', 'files',
        'encrypter', 'cookie', 'session', 'validator', 'log', 'cache',
        Illuminate\Contracts\Debug\ExceptionHandler::class,
    ] as $service) {
        if ($app->bound($service)) {
            $app->make($service);
        }
    }
    // Compile every route's regex now (matches() compiles and caches it on
    // the Route object) instead of on the first request that tries it.
    $probe = Illuminate\Http\Request::create('/');
    foreach ($app['router']->getRoutes() as $route) {
        $route->matches($probe, false);
    }

    return $app;
})();
