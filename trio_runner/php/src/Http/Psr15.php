<?php

declare(strict_types=1);

namespace TrioRunner\Http;

use Psr\Http\Message\ServerRequestFactoryInterface;
use Psr\Http\Message\StreamFactoryInterface;
use Psr\Http\Message\UploadedFileFactoryInterface;
use Psr\Http\Server\RequestHandlerInterface;
use TrioRunner\Exception\ConfigException;
use TrioRunner\Worker;

/**
 * Run a PSR-15 request handler as a worker:
 *
 *     require getenv('TRIO_RUNNER_PHP') ?: 'path/to/trio_runner/php/autoload.php';
 *     \TrioRunner\Http\Psr15::serve(new MyApp());
 *
 * Each request becomes a PSR-7 ServerRequest, goes to $handler->handle(),
 * and the response goes back to the server. An exception from the handler
 * is answered with an error frame carrying its message (HTTP 500 from the
 * server), logged with its trace to STDERR, and the worker goes on.
 */
final class Psr15
{
    /**
     * Serve until the server stops the worker.
     *
     * @param ServerRequestFactoryInterface|null $requests PSR-17 factories;
     *        left out, each defaults to nyholm/psr7's Psr17Factory (Debian's
     *        php-nyholm-psr7 is found without Composer)
     * @param Worker|null $worker defaults to Worker::create() (RR_RELAY)
     *
     * @throws ConfigException when a factory is missing and nyholm/psr7 is
     *                         not installed
     */
    public static function serve(
        RequestHandlerInterface $handler,
        ?ServerRequestFactoryInterface $requests = null,
        ?StreamFactoryInterface $streams = null,
        ?UploadedFileFactoryInterface $uploads = null,
        ?Worker $worker = null,
    ): void {
        self::worker($requests, $streams, $uploads, $worker)->serve(
            static fn ($request) => $handler->handle($request),
        );
    }

    /**
     * The Psr7Worker serve() uses, for callers that want their own loop.
     *
     * @throws ConfigException when a factory is missing and nyholm/psr7 is
     *                         not installed
     */
    public static function worker(
        ?ServerRequestFactoryInterface $requests = null,
        ?StreamFactoryInterface $streams = null,
        ?UploadedFileFactoryInterface $uploads = null,
        ?Worker $worker = null,
    ): Psr7Worker {
        if ($requests === null || $streams === null || $uploads === null) {
            $default = self::defaultFactory();
            $requests ??= $default;
            $streams ??= $default;
            $uploads ??= $default;
        }

        return new Psr7Worker($worker ?? Worker::create(), $requests, $streams, $uploads);
    }

    /**
     * nyholm/psr7's factory, which implements all the PSR-17 interfaces.
     *
     * @throws ConfigException when nyholm/psr7 cannot be found
     */
    private static function defaultFactory(): object
    {
        $class = 'Nyholm\\Psr7\\Factory\\Psr17Factory';
        $debian = '/usr/share/php/Nyholm/Psr7/autoload.php';
        if (!class_exists($class) && is_file($debian)) {
            require_once $debian;
        }
        if (!class_exists($class)) {
            throw new ConfigException(
                'no PSR-17 factories were given and nyholm/psr7 is not installed;'
                . ' pass your PSR-17 factories to Psr15::serve(), or install'
                . ' nyholm/psr7 (Composer) or php-nyholm-psr7 (Debian)',
            );
        }

        return new $class();
    }
}
