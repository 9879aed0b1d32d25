<?php

/*
 * Fallback declaration of PSR-15's request handler interface (PHP-FIG,
 * psr/http-server-handler 1.0). trio_runner's autoloader requires this file
 * only when no installed package declares the interface.
 */

declare(strict_types=1);

namespace Psr\Http\Server;

use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;

interface RequestHandlerInterface
{
    public function handle(ServerRequestInterface $request): ResponseInterface;
}
