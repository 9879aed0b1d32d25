<?php

return [
    'name' => env('APP_NAME', 'trio_runner Laravel example'),

    'env' => env('APP_ENV', 'production'),

    // Keep this false unless you are debugging: with debug on, error pages
    // show stack traces and environment details.
    'debug' => (bool) env('APP_DEBUG', false),

    'url' => env('APP_URL', 'http://127.0.0.1:8080'),

    'asset_url' => env('ASSET_URL'),

    'timezone' => 'UTC',

    'locale' => 'en',

    'fallback_locale' => 'en',

    // DEVELOPMENT KEY ONLY. It is public (it is in the repository), so
    // anything it encrypts or signs (cookies, sessions) is not secret. Set
    // APP_KEY in the environment for any real deployment; generate one with
    //   php -r 'echo "base64:".base64_encode(random_bytes(32)), PHP_EOL;'
    'key' => env('APP_KEY', 'base64:qhjMTUlRi8erazwMgRKilGHtvsMyAnh5JXeEqKsQIJc='),

    'cipher' => 'AES-256-CBC',

    // Only what this example uses. Add framework providers (database, auth,
    // queue, mail, ...) here together with their config files.
    'providers' => [
        Illuminate\Cache\CacheServiceProvider::class,
        Illuminate\Cookie\CookieServiceProvider::class,
        Illuminate\Encryption\EncryptionServiceProvider::class,
        Illuminate\Filesystem\FilesystemServiceProvider::class,
        Illuminate\Foundation\Providers\FoundationServiceProvider::class,
        Illuminate\Session\SessionServiceProvider::class,
        Illuminate\Translation\TranslationServiceProvider::class,
        Illuminate\Validation\ValidationServiceProvider::class,
        Illuminate\View\ViewServiceProvider::class,

        App\Providers\AppServiceProvider::class,
        App\Providers\RouteServiceProvider::class,
    ],

    'aliases' => [
        'App' => Illuminate\Support\Facades\App::class,
        'Arr' => Illuminate\Support\Arr::class,
        'Cache' => Illuminate\Support\Facades\Cache::class,
        'Config' => Illuminate\Support\Facades\Config::class,
        'Cookie' => Illuminate\Support\Facades\Cookie::class,
        'Log' => Illuminate\Support\Facades\Log::class,
        'Request' => Illuminate\Support\Facades\Request::class,
        'Response' => Illuminate\Support\Facades\Response::class,
        'Route' => Illuminate\Support\Facades\Route::class,
        'Session' => Illuminate\Support\Facades\Session::class,
        'Str' => Illuminate\Support\Str::class,
        'URL' => Illuminate\Support\Facades\URL::class,
        'View' => Illuminate\Support\Facades\View::class,
    ],
];
