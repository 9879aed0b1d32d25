<?php

declare(strict_types=1);

namespace TrioRunner\Http;

use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestFactoryInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\StreamFactoryInterface;
use Psr\Http\Message\StreamInterface;
use Psr\Http\Message\UploadedFileFactoryInterface;
use Psr\Http\Message\UploadedFileInterface;
use TrioRunner\Exception\FrameException;
use TrioRunner\Exception\ProtocolException;
use TrioRunner\Exception\RelayException;
use TrioRunner\Exception\StreamStoppedException;
use TrioRunner\Worker;

/**
 * PSR-7 on top of HttpWorker, with any PSR-17 factories (nyholm/psr7,
 * slim/psr7, guzzle...).
 *
 *     $f = new \Nyholm\Psr7\Factory\Psr17Factory();
 *     $psr7 = new Psr7Worker(Worker::create(), $f, $f, $f);
 *     while ($request = $psr7->waitRequest()) {
 *         $psr7->respond($app->handle($request));
 *     }
 *
 * The ServerRequest gets method, URI, protocol version ("HTTP/2.0" gives
 * "2"), headers, cookies, query params (parse_str of the raw query), the
 * body (or, for forms the server parsed, an empty body and the parsed
 * fields), uploaded files, the server's attributes, and server params:
 * this process's $_SERVER at construction plus REQUEST_* , REMOTE_ADDR,
 * QUERY_STRING, SERVER_PROTOCOL, HTTPS, HTTP_HOST, CONTENT_TYPE,
 * CONTENT_LENGTH and HTTP_* for each header. REQUEST_URI is path?query,
 * as under php-fpm.
 */
final class Psr7Worker
{
    /**
     * Responses whose body is larger than this many bytes (or of unknown
     * size) are streamed in chunks of this size. 0 sends every body as one
     * frame.
     */
    public int $chunkSize = 1024 * 1024;

    private readonly HttpWorker $http;
    /** @var array<string, mixed> */
    private readonly array $baseServer;

    public function __construct(
        Worker $worker,
        private readonly ServerRequestFactoryInterface $requests,
        private readonly StreamFactoryInterface $streams,
        private readonly UploadedFileFactoryInterface $uploads,
    ) {
        $this->http = new HttpWorker($worker);
        $this->baseServer = $_SERVER;
    }

    public function worker(): Worker
    {
        return $this->http->worker();
    }

    public function httpWorker(): HttpWorker
    {
        return $this->http;
    }

    /**
     * Wait for the next request.
     *
     * @return ServerRequestInterface|null null when the worker must stop
     *
     * @throws ProtocolException when the context does not decode
     * @throws RelayException|FrameException when the link to the server fails
     */
    public function waitRequest(): ?ServerRequestInterface
    {
        $request = $this->http->waitRequest();

        return $request === null ? null : $this->toServerRequest($request);
    }

    /**
     * Build the PSR-7 request for a Request value.
     *
     * @throws ProtocolException when the factories reject a part of it
     */
    public function toServerRequest(Request $request): ServerRequestInterface
    {
        try {
            return $this->buildServerRequest($request);
        } catch (\InvalidArgumentException $e) {
            throw new ProtocolException(
                'could not build a PSR-7 request from the server\'s request: ' . $e->getMessage(),
                0,
                $e,
            );
        }
    }

    private function buildServerRequest(Request $request): ServerRequestInterface
    {
        $psr = $this->requests->createServerRequest(
            $request->method,
            $request->uri,
            $this->serverParams($request),
        );
        $psr = $psr->withProtocolVersion(self::protocolVersion($request->protocol))
            ->withCookieParams($request->cookies)
            ->withQueryParams($request->query);
        foreach ($request->headers as $name => $values) {
            $psr = $psr->withHeader((string) $name, $values);
        }
        if ($request->parsed) {
            $psr = $psr->withParsedBody($request->parsedBody());
        } else {
            $psr = $psr->withBody($this->streams->createStream($request->body));
        }
        if ($request->uploads !== null) {
            $psr = $psr->withUploadedFiles($this->uploadedFiles($request->uploads));
        }
        foreach ($request->attributes as $name => $value) {
            $psr = $psr->withAttribute((string) $name, $value);
        }

        return $psr;
    }

    /**
     * Answer the current request. Multi-valued headers stay separate values;
     * the reason phrase is not sent (the protocol carries only the status).
     *
     * @throws RelayException|FrameException when the link to the server fails
     * @throws \Throwable whatever the body stream throws; once a chunk has
     *                    gone out, an error frame has ended the stream first
     *                    (HttpWorker::respond), so the response is cut short
     */
    public function respond(ResponseInterface $response): void
    {
        $body = $response->getBody();
        if ($body->isSeekable()) {
            $body->rewind();
        }
        $size = $body->getSize();
        $chunked = $this->chunkSize > 0 && ($size === null || $size > $this->chunkSize);

        $this->http->respond(
            $response->getStatusCode(),
            $chunked ? self::chunks($body, $this->chunkSize) : $body->getContents(),
            $response->getHeaders(),
        );
    }

    /**
     * Serve requests until the server says stop: $handler turns each
     * ServerRequest into a Response. An exception from the handler is
     * answered with an error frame carrying its message (HTTP 500) and
     * logged to STDERR; the worker goes on.
     *
     * @param callable(ServerRequestInterface): ResponseInterface $handler
     */
    public function serve(callable $handler): void
    {
        $worker = $this->worker();
        while (true) {
            try {
                $request = $this->waitRequest();
            } catch (ProtocolException $e) {
                // One undecodable request must not end the worker.
                HttpWorker::report($worker, $e);
                continue;
            }
            if ($request === null) {
                return;
            }
            try {
                $response = $handler($request);
                if (!$response instanceof ResponseInterface) {
                    throw new ProtocolException(sprintf(
                        'the request handler returned %s; it must return a'
                        . ' Psr\Http\Message\ResponseInterface',
                        get_debug_type($response),
                    ));
                }
                $this->respond($response);
            } catch (RelayException | FrameException $e) {
                throw $e;
            } catch (StreamStoppedException) {
                // The client went away mid-stream; the final frame is sent.
            } catch (\Throwable $e) {
                HttpWorker::report($worker, $e);
            }
        }
    }

    /** "HTTP/1.1" gives "1.1", "HTTP/2.0" gives "2". */
    public static function protocolVersion(string $protocol): string
    {
        $version = str_starts_with($protocol, 'HTTP/') ? substr($protocol, 5) : $protocol;
        if ($version === '2.0' || $version === '3.0') {
            return $version[0];
        }

        return $version !== '' ? $version : '1.1';
    }

    /** @return array<string, mixed> */
    private function serverParams(Request $request): array
    {
        $server = $this->baseServer;
        $now = microtime(true);
        $parts = self::splitUri($request->uri);

        $server['REQUEST_TIME'] = (int) $now;
        $server['REQUEST_TIME_FLOAT'] = $now;
        $server['REQUEST_METHOD'] = $request->method;
        $server['REQUEST_URI'] = $parts['query'] === ''
            ? $parts['path']
            : $parts['path'] . '?' . $parts['query'];
        $server['QUERY_STRING'] = $request->rawQuery;
        $server['SERVER_PROTOCOL'] = $request->protocol;
        $server['REMOTE_ADDR'] = $request->remoteAddr;
        if ($parts['host'] !== '') {
            $server['HTTP_HOST'] = $parts['port'] === ''
                ? $parts['host']
                : $parts['host'] . ':' . $parts['port'];
            $server['SERVER_NAME'] = $parts['host'];
        }
        $https = strtolower($parts['scheme']) === 'https';
        $server['SERVER_PORT'] = $parts['port'] !== '' ? (int) $parts['port'] : ($https ? 443 : 80);
        if ($https) {
            $server['HTTPS'] = 'on';
        } else {
            unset($server['HTTPS']);
        }
        foreach ($request->headers as $name => $values) {
            $key = strtoupper(str_replace('-', '_', (string) $name));
            $value = implode(', ', $values);
            if ($key === 'CONTENT_TYPE' || $key === 'CONTENT_LENGTH') {
                $server[$key] = $value;
            } else {
                $server['HTTP_' . $key] = $value;
            }
        }

        return $server;
    }

    /**
     * @return array{scheme: string, host: string, port: string, path: string, query: string}
     */
    private static function splitUri(string $uri): array
    {
        // Not parse_url(): it gives up on some URLs the server can send.
        $pattern = '~^(?:([A-Za-z][A-Za-z0-9+.-]*)://'   // scheme
            . '(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?)?'  // userinfo, host, port
            . '([^?#]*)(?:\?([^#]*))?~';                // path, query
        preg_match($pattern, $uri, $m);

        return [
            'scheme' => $m[1] ?? '',
            'host' => $m[2] ?? '',
            'port' => $m[3] ?? '',
            'path' => ($m[4] ?? '') !== '' ? $m[4] : '/',
            'query' => $m[5] ?? '',
        ];
    }

    /**
     * Turn the server's upload tree (PROTOCOL.md 4.5) into the PSR-7 tree.
     *
     * @param array<array-key, mixed> $tree
     *
     * @return array<array-key, mixed>
     */
    private function uploadedFiles(array $tree): array
    {
        $out = [];
        foreach ($tree as $key => $node) {
            if (!is_array($node)) {
                continue;
            }
            $out[$key] = self::isUploadLeaf($node)
                ? $this->uploadedFile($node)
                : $this->uploadedFiles($node);
        }

        return $out;
    }

    /** @param array<array-key, mixed> $node */
    private static function isUploadLeaf(array $node): bool
    {
        return array_key_exists('tmpName', $node) && array_key_exists('error', $node)
            && !is_array($node['tmpName']);
    }

    /** @param array<array-key, mixed> $leaf */
    private function uploadedFile(array $leaf): UploadedFileInterface
    {
        $error = (int) $leaf['error'];
        $path = (string) $leaf['tmpName'];
        if ($error === UPLOAD_ERR_OK && $path !== '' && is_readable($path)) {
            $stream = $this->streams->createStreamFromFile($path, 'rb');
        } else {
            $stream = $this->streams->createStream('');
            if ($error === UPLOAD_ERR_OK) {
                $error = UPLOAD_ERR_NO_FILE; // the server's temp file is gone
            }
        }

        return $this->uploads->createUploadedFile(
            $stream,
            isset($leaf['size']) ? (int) $leaf['size'] : null,
            $error,
            isset($leaf['name']) ? (string) $leaf['name'] : null,
            isset($leaf['mime']) ? (string) $leaf['mime'] : null,
        );
    }

    /** @return \Generator<int, string, mixed, void> */
    private static function chunks(StreamInterface $body, int $size): \Generator
    {
        while (!$body->eof()) {
            $chunk = $body->read($size);
            if ($chunk === '') {
                break;
            }
            yield $chunk;
        }
    }
}
