<?php

return [
    // "cookie" (the default here) keeps the encrypted session in the
    // client's cookie, so the server writes nothing. "file" is Laravel's
    // usual default: one file per session in storage/framework/sessions,
    // which means one new file for every cookie-less request to a web route
    // (a load test makes thousands). "array" keeps nothing between requests.
    'driver' => env('SESSION_DRIVER', 'cookie'),

    'lifetime' => (int) env('SESSION_LIFETIME', 120),

    'expire_on_close' => false,

    'encrypt' => false,

    'files' => storage_path('framework/sessions'),

    'connection' => null,

    'table' => 'sessions',

    'store' => null,

    // Odds of garbage-collecting old session files on a request.
    'lottery' => [2, 100],

    'cookie' => env('SESSION_COOKIE', 'laravel_session'),

    'path' => '/',

    'domain' => env('SESSION_DOMAIN'),

    'secure' => env('SESSION_SECURE_COOKIE'),

    'http_only' => true,

    'same_site' => 'lax',
];
