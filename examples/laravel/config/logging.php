<?php

use Monolog\Handler\NullHandler;
use Monolog\Handler\StreamHandler;

return [
    // "single" writes storage/logs/laravel.log; "stderr" hands log lines to
    // the server, which relays a worker's stderr to its own log.
    'default' => env('LOG_CHANNEL', 'single'),

    // PHP deprecation notices go to the null channel unless you change this.
    'deprecations' => env('LOG_DEPRECATIONS_CHANNEL', 'null'),

    'channels' => [
        'single' => [
            'driver' => 'single',
            'path' => storage_path('logs/laravel.log'),
            'level' => env('LOG_LEVEL', 'debug'),
        ],

        'stderr' => [
            'driver' => 'monolog',
            'handler' => StreamHandler::class,
            'with' => ['stream' => 'php://stderr'],
            'level' => env('LOG_LEVEL', 'debug'),
        ],

        'null' => [
            'driver' => 'monolog',
            'handler' => NullHandler::class,
        ],
    ],
];
