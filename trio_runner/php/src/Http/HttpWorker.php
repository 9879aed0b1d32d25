<?php

declare(strict_types=1);

namespace TrioRunner\Http;

use TrioRunner\Exception\ConfigException;
use TrioRunner\Exception\FrameException;
use TrioRunner\Exception\ProtocolException;
use TrioRunner\Exception\RelayException;
use TrioRunner\Exception\StreamStoppedException;
use TrioRunner\Http\Codec\ContextCodec;
use TrioRunner\Http\Codec\JsonCodec;
use TrioRunner\Http\Codec\ProtoCodec;
use TrioRunner\Log;
use TrioRunner\Payload;
use TrioRunner\Worker;

/**
 * HTTP on top of Worker: requests in as Request values, responses out as
 * status, headers and body.
 *
 *     $http = HttpWorker::create();
 *     while ($request = $http->waitRequest()) {
 *         $http->respond(200, 'Hello ' . $request->path(), ['Content-Type' => 'text/plain']);
 *     }
 *
 * The context codec is worked out once per process, from the first request,
 * as RoadRunner's PHP does: a context that is valid JSON means the legacy
 * JSON codec, anything else protobuf (PROTOCOL.md 4.1). Responses carry the
 * same codec flag.
 *
 * A body that is an iterable (a generator, say) is streamed: each chunk is
 * one frame with the STREAM bit and the status and headers sent again, then
 * a final frame without it whose body is the generator's return value (or
 * empty). If the server cancels the stream, StreamStoppedException is thrown
 * into the generator so its `finally` blocks run. If the generator throws
 * after a chunk has gone out, an error frame ends the stream instead of the
 * final frame: the client must see the response cut short, never complete
 * (RoadRunner's PHP sends the final frame there, which looks complete).
 */
final class HttpWorker
{
    private ?ContextCodec $codec = null;

    public function __construct(private readonly Worker $worker)
    {
    }

    /** An HTTP worker on the relay RR_RELAY names. */
    public static function create(): self
    {
        return new self(Worker::create());
    }

    public function worker(): Worker
    {
        return $this->worker;
    }

    /** The codec in use: null until the first request has arrived. */
    public function codec(): ?ContextCodec
    {
        return $this->codec;
    }

    /**
     * Wait for the next request.
     *
     * @return Request|null null when the worker must stop (end the loop)
     *
     * @throws ProtocolException when the context does not decode
     * @throws RelayException|FrameException when the link to the server fails
     */
    public function waitRequest(): ?Request
    {
        $payload = $this->worker->waitPayload();
        if ($payload === null) {
            return null;
        }
        $this->codec ??= self::detectCodec($payload->context);

        return $this->codec->decodeRequest($payload->context, $payload->body);
    }

    /**
     * Answer the current request.
     *
     * @param int $status the HTTP status, 100-599
     * @param string|iterable<mixed, string> $body a string, or chunks to stream
     * @param array<string, string|list<string>> $headers name => value(s)
     * @param bool $endOfStream false sends this as a non-final frame, e.g.
     *                          a 103 Early Hints before the real response
     *
     * @throws ConfigException when a header is not a name => string(s) pair
     * @throws RelayException|FrameException when the link to the server fails
     * @throws \Throwable whatever a generator body throws; once a chunk
     *                    has gone out, an error frame carrying its message
     *                    has ended the stream first (the server cuts the
     *                    response short)
     */
    public function respond(
        int $status,
        string|iterable $body = '',
        array $headers = [],
        bool $endOfStream = true,
    ): void {
        $codec = $this->codec ?? new ProtoCodec();
        $context = $codec->encodeResponse($status, self::normalizeHeaders($headers));

        if (is_string($body)) {
            $this->worker->respond(new Payload($context, $body), $codec->flag(), !$endOfStream);

            return;
        }
        $this->stream($context, $body, $codec->flag());
    }

    /**
     * Serve requests until the server says stop.
     *
     * $handler gets each Request (and this worker) and either answers it
     * itself with respond() or returns [status, headers, body] (body a
     * string or iterable). An exception from the handler is answered with
     * an error frame carrying its message (HTTP 500) and written, with its
     * trace, to STDERR; the worker goes on. Relay and frame errors end the
     * loop: the worker cannot recover from them.
     *
     * @param callable(Request, self): (array{int, array<string, mixed>, string|iterable<mixed, string>}|null) $handler
     */
    public function serve(callable $handler): void
    {
        while (true) {
            try {
                $request = $this->waitRequest();
            } catch (ProtocolException $e) {
                // One undecodable request must not end the worker.
                self::report($this->worker, $e);
                continue;
            }
            if ($request === null) {
                return;
            }
            try {
                $result = $handler($request, $this);
                if ($this->worker->hasResponded()) {
                    continue;
                }
                if (!is_array($result) || !array_is_list($result) || count($result) !== 3) {
                    throw new ProtocolException(sprintf(
                        'the handler returned %s without answering; return [status,'
                        . ' headers, body] or call respond()',
                        get_debug_type($result),
                    ));
                }
                [$status, $headers, $body] = $result;
                $this->respond((int) $status, $body, (array) $headers);
            } catch (RelayException | FrameException $e) {
                throw $e;
            } catch (StreamStoppedException) {
                // The client went away mid-stream; the final frame is sent.
            } catch (\Throwable $e) {
                self::report($this->worker, $e);
            }
        }
    }

    /**
     * Answer the current request with an error frame (if it has not been
     * answered yet) and log the exception to STDERR.
     *
     * @internal shared by the serve() loops
     */
    public static function report(Worker $worker, \Throwable $e): void
    {
        Log::write(get_class($e) . ' while handling a request: ' . $e);
        if (!$worker->hasResponded()) {
            $worker->error(self::errorText($e));
        }
    }

    /** The text of the error frame for $e: its message, else its class. */
    private static function errorText(\Throwable $e): string
    {
        return $e->getMessage() !== '' ? $e->getMessage() : get_class($e);
    }

    /**
     * @param iterable<mixed, string> $chunks
     */
    private function stream(string $context, iterable $chunks, int $flag): void
    {
        try {
            foreach ($chunks as $chunk) {
                try {
                    $this->worker->respond(new Payload($context, (string) $chunk), $flag, true);
                } catch (StreamStoppedException $stopped) {
                    if ($chunks instanceof \Generator) {
                        try {
                            $chunks->throw($stopped);
                        } catch (\Throwable) {
                            // The stream is over; the generator only had to clean up.
                        }
                    }

                    return;
                }
            }
        } catch (RelayException | FrameException $e) {
            throw $e;
        } catch (\Throwable $e) {
            // The body failed mid-stream. An error frame, never the final
            // frame, ends the answer: the server then cuts the response
            // short, so the client cannot take it for a whole one. Before
            // the first chunk nothing is sent yet; the caller answers.
            if ($this->worker->isStreaming()) {
                $this->worker->error(self::errorText($e));
            }
            throw $e;
        }
        $last = $chunks instanceof \Generator ? $chunks->getReturn() : null;
        $this->worker->respond(
            new Payload($context, is_string($last) ? $last : ''),
            $flag,
            false,
        );
    }

    private static function detectCodec(string $context): ContextCodec
    {
        json_decode($context);

        return json_last_error() === JSON_ERROR_NONE ? new JsonCodec() : new ProtoCodec();
    }

    /**
     * @param array<array-key, mixed> $headers
     *
     * @return array<string, list<string>>
     */
    public static function normalizeHeaders(array $headers): array
    {
        $out = [];
        foreach ($headers as $name => $values) {
            if (!is_string($name) || $name === '') {
                throw new ConfigException(sprintf(
                    'response header names must be non-empty strings, got %s;'
                    . ' pass headers as ["Name" => "value"] or ["Name" => ["v1", "v2"]]',
                    var_export($name, true),
                ));
            }
            if ($values === null) {
                continue;
            }
            $list = [];
            foreach (is_array($values) ? $values : [$values] as $value) {
                if (!is_scalar($value) && !$value instanceof \Stringable) {
                    throw new ConfigException(sprintf(
                        'value of response header "%s" must be a string or a list of'
                        . ' strings, got %s',
                        $name,
                        get_debug_type($value),
                    ));
                }
                $list[] = is_bool($value) ? ($value ? '1' : '0') : (string) $value;
            }
            $out[$name] = $list;
        }

        return $out;
    }
}
