<?php

/**
 * A PSR-15 application on nyholm/psr7, served by trio_runner.
 *
 * The app is a request handler wrapped in one middleware; nothing in it
 * knows about trio_runner except the last line. `GET /` answers 200,
 * `GET /json` answers JSON, anything else 404.
 */

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';
require_once '/usr/share/php/Nyholm/Psr7/autoload.php'; // Debian's php-nyholm-psr7

use Nyholm\Psr7\Factory\Psr17Factory;
use Psr\Http\Message\ResponseFactoryInterface;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\StreamFactoryInterface;
use Psr\Http\Server\MiddlewareInterface;
use Psr\Http\Server\RequestHandlerInterface;
use TrioRunner\Http\Psr15;

final class HelloHandler implements RequestHandlerInterface
{
    public function __construct(
        private readonly ResponseFactoryInterface $responses,
        private readonly StreamFactoryInterface $streams,
    ) {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        $path = $request->getUri()->getPath();
        if ($request->getMethod() === 'GET' && $path === '/') {
            return $this->text(200, sprintf('Hello from PSR-15 (pid %d)', getmypid()));
        }
        if ($request->getMethod() === 'GET' && $path === '/json') {
            $body = json_encode(['path' => $path, 'query' => $request->getQueryParams()]);

            return $this->responses->createResponse(200)
                ->withHeader('Content-Type', 'application/json')
                ->withBody($this->streams->createStream($body));
        }

        return $this->text(404, "Not found: $path");
    }

    private function text(int $status, string $text): ResponseInterface
    {
        return $this->responses->createResponse($status)
            ->withHeader('Content-Type', 'text/plain; charset=utf-8')
            ->withBody($this->streams->createStream($text));
    }
}

/** Adds an X-Response-Time header to every response. */
final class TimingMiddleware implements MiddlewareInterface
{
    public function process(
        ServerRequestInterface $request,
        RequestHandlerInterface $handler,
    ): ResponseInterface {
        $start = hrtime(true);
        $response = $handler->handle($request);
        $elapsed = (hrtime(true) - $start) / 1e6;

        return $response->withHeader('X-Response-Time', sprintf('%.3fms', $elapsed));
    }
}

/** A handler that runs one middleware in front of another handler. */
final class MiddlewareHandler implements RequestHandlerInterface
{
    public function __construct(
        private readonly MiddlewareInterface $middleware,
        private readonly RequestHandlerInterface $next,
    ) {
    }

    public function handle(ServerRequestInterface $request): ResponseInterface
    {
        return $this->middleware->process($request, $this->next);
    }
}

$factory = new Psr17Factory();
$app = new MiddlewareHandler(new TimingMiddleware(), new HelloHandler($factory, $factory));

Psr15::serve($app, $factory, $factory, $factory);
