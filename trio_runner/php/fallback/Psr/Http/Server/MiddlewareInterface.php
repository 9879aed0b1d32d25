<?php

/*
 * Fallback declaration of PSR-15's middleware interface (PHP-FIG,
 * psr/http-server-middleware 1.0). trio_runner's autoloader requires this
 * file only when no installed package declares the interface.
 */

declare(strict_types=1);

namespace Psr\Http\Server;

use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;

interface MiddlewareInterface
{
    public function process(
        ServerRequestInterface $request,
        RequestHandlerInterface $handler
    ): ResponseInterface;
}
