<?php

namespace App\Exceptions;

use Illuminate\Foundation\Exceptions\Handler as ExceptionHandler;

class Handler extends ExceptionHandler
{
    /**
     * Exception types that are rendered but not logged.
     *
     * @var string[]
     */
    protected $dontReport = [];

    /**
     * Input fields never flashed back to the session on validation errors.
     *
     * @var string[]
     */
    protected $dontFlash = [
        'current_password',
        'password',
        'password_confirmation',
    ];
}
