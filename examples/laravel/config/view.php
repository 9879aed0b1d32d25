<?php

return [
    'paths' => [
        resource_path('views'),
    ],

    // Compiled Blade templates; created at boot by bootstrap/app.php.
    'compiled' => env('VIEW_COMPILED_PATH', storage_path('framework/views')),
];
