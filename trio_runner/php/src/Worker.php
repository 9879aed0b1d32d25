<?php

declare(strict_types=1);

namespace TrioRunner;

use TrioRunner\Exception\ProtocolException;
use TrioRunner\Exception\RelayClosedException;
use TrioRunner\Exception\StreamStoppedException;
use TrioRunner\Relay\Relay;
use TrioRunner\Relay\RelayInterface;

/**
 * The worker side of the protocol: wait for a payload, answer it, repeat.
 *
 *     $worker = Worker::create();
 *     while ($payload = $worker->waitPayload()) {
 *         $worker->respond(new Payload(body: strtoupper($payload->body)));
 *     }
 *
 * waitPayload() answers the server's control frames itself (the pid
 * handshake, PROTOCOL.md 3.1) and returns null when the server asks the
 * worker to stop; the loop then ends and the script exits.
 *
 * Every payload gets exactly one answer: one respond() (or a stream of
 * respond(..., more: true) calls closed by one with more: false), one
 * error(), or stop(). Streaming (PROTOCOL.md 3.7): every 5th chunk carries
 * PING, and before each chunk the relay is polled, without blocking, for
 * the server's PONG or STOP. After a STOP the worker sends the final empty
 * frame and respond() throws StreamStoppedException.
 *
 * Output: in pipe mode stdout is the protocol, so by default the worker
 * installs an output buffer that forwards echo/print output to STDERR,
 * where the server logs it (PROTOCOL.md 8.1).
 */
final class Worker
{
    /** The context of the "please stop me" response (PROTOCOL.md 3.4). */
    public const STOP_CONTEXT = '{"stop":true}';
    /** Every this many streamed chunks, one carries PING. */
    public const PING_EVERY = 5;

    /** @var list<Frame> frames read while polling a stream, not yet handled */
    private array $pending = [];
    /** True while a payload waits for its (final) answer. */
    private bool $answering = false;
    private bool $streaming = false;
    private int $streamedChunks = 0;
    /** The server sent STOP for the stream of the current payload. */
    private bool $streamStopped = false;

    /**
     * @param RelayInterface $relay the link to the server
     * @param bool $redirectOutput forward echo/print output to STDERR (turn
     *                             off only when stdout is not the protocol
     *                             and you want it, e.g. in tests)
     */
    public function __construct(
        private readonly RelayInterface $relay,
        private readonly bool $redirectOutput = true,
    ) {
        if ($redirectOutput) {
            self::redirectOutputToStderr();
        }
    }

    /**
     * A worker on the relay given, else on the one RR_RELAY names (pipes
     * when unset).
     *
     * @throws Exception\ConfigException when RR_RELAY is malformed
     */
    public static function create(?RelayInterface $relay = null, bool $redirectOutput = true): self
    {
        return new self($relay ?? Relay::fromEnvironment(), $redirectOutput);
    }

    public function relay(): RelayInterface
    {
        return $this->relay;
    }

    /**
     * Wait for the next request payload.
     *
     * A payload left without an answer, or with its streamed answer still
     * open, gets an error frame first, so the server is never left waiting
     * (and cuts an open stream short rather than completing it).
     *
     * Control frames are handled here: the pid handshake is answered and
     * waiting goes on; `{"stop":true}` returns null. PONG and STOP frames
     * that arrive outside a stream (late answers to the last stream) are
     * skipped. A clean end of file on the relay also returns null: the
     * server is gone, so the worker should exit.
     *
     * @return Payload|null the request (context, body, flags as codec,
     *                      STREAM bit as more), or null: stop working
     *
     * @throws ProtocolException on an unknown control command or a data
     *                           frame without its context-length option
     * @throws Exception\RelayException when the relay fails
     * @throws Exception\FrameException when the bytes are not a frame
     */
    public function waitPayload(): ?Payload
    {
        if ($this->streaming) {
            // The app left a stream open; the server still waits for its end.
            // An error frame, not the final frame: what was sent may be only
            // part of the response, and the client must not take it for all.
            Log::write('waitPayload() was called while a streamed response was open;'
                . ' sent an error frame, so the client sees it cut short. Finish'
                . ' streams with respond(..., more: false).');
            $this->error('the PHP worker left its streamed response unfinished');
        } elseif ($this->answering) {
            // The app dropped the request; without an answer the server
            // would wait until exec_ttl kills this worker.
            Log::write('waitPayload() was called before the previous request was'
                . ' answered; sent an error frame for it. Answer every payload once.');
            $this->error('the PHP worker did not answer this request');
        }
        if ($this->redirectOutput) {
            self::redirectOutputToStderr(); // in case the app removed it
        }
        $this->answering = false;
        $this->streamStopped = false;

        while (true) {
            try {
                $frame = array_shift($this->pending) ?? $this->relay->receive();
            } catch (RelayClosedException $e) {
                if ($e->betweenFrames) {
                    return null;
                }
                throw $e;
            }

            if ($frame->isControl()) {
                if ($this->handleControl($frame)) {
                    continue;
                }

                return null;
            }
            if (($frame->stream & (Frame::PONG | Frame::STOP)) !== 0) {
                continue; // late PONG or STOP for a stream that has ended
            }

            return $this->toPayload($frame);
        }
    }

    /**
     * Answer the current payload, or send one chunk of a streamed answer.
     *
     * @param Payload $payload the context and body to send; its codec and
     *                         more are used unless the arguments set them
     * @param int $codec frame flags to send, e.g. Frame::CODEC_PROTO; 0 keeps
     *                   $payload->codec
     * @param bool $more more chunks follow (sets the STREAM bit); also set
     *                   when $payload->more is true
     *
     * @throws StreamStoppedException when $more is set and the server has
     *                                cancelled the stream; the final frame
     *                                was sent, stop producing chunks
     * @throws ProtocolException when there is no payload to answer
     * @throws Exception\RelayException when the relay fails
     */
    public function respond(Payload $payload, int $codec = 0, bool $more = false): void
    {
        $codec = $codec !== 0 ? $codec : $payload->codec;
        $codec &= ~(Frame::CONTROL | Frame::ERROR);
        $more = $more || $payload->more;

        if ($this->streamStopped) {
            // The final frame went out when the STOP was seen.
            if ($more) {
                throw new StreamStoppedException('the server cancelled this streamed response');
            }

            return;
        }
        $this->requireAnswering('respond()');

        $stream = 0;
        if ($more) {
            $this->streaming = true;
            $this->pollStream();
            if ($this->streamStopped) {
                $this->endStoppedStream();
                throw new StreamStoppedException('the server cancelled this streamed response');
            }
            $stream = Frame::STREAM;
            if (++$this->streamedChunks % self::PING_EVERY === 0) {
                $stream |= Frame::PING;
            }
        }

        $this->relay->send(new Frame(
            $codec,
            [strlen($payload->context)],
            $payload->context . $payload->body,
            $stream,
        ));
        if (!$more) {
            $this->finishAnswer();
        }
    }

    /**
     * Answer the current payload with an error. The server fails the request
     * with this text (HTTP: status 500, text shown only in debug mode) and
     * keeps the worker. Send a message, not a stack trace.
     *
     * Mid-stream it ends the stream as a failure: the chunks sent so far
     * have gone out, and the server cuts the response short (over HTTP/1.1
     * it closes the connection, over HTTP/2 it resets the stream).
     *
     * @throws ProtocolException when there is no payload to answer
     * @throws Exception\RelayException when the relay fails
     */
    public function error(string $message): void
    {
        $this->requireAnswering('error()');
        $this->relay->send(new Frame(Frame::ERROR, [], $message));
        $this->finishAnswer();
    }

    /**
     * Ask the server to replace this worker: it runs the current request on
     * another worker and then stops this one (PROTOCOL.md 3.4). Sent after
     * a response instead, the server sees it as the answer to the next
     * request and does the same then.
     *
     * @throws Exception\RelayException when the relay fails
     */
    public function stop(): void
    {
        $this->relay->send(new Frame(0, [strlen(self::STOP_CONTEXT)], self::STOP_CONTEXT));
        $this->finishAnswer();
    }

    /** True once the current payload got its final answer (or none is due). */
    public function hasResponded(): bool
    {
        return !$this->answering;
    }

    /** True between the first and the final frame of a streamed answer. */
    public function isStreaming(): bool
    {
        return $this->streaming;
    }

    /**
     * Output-buffer callback: forward what the app printed to STDERR and
     * keep it off stdout.
     *
     * @internal
     */
    public static function forwardOutput(string $buffer, int $phase): string
    {
        if ($buffer !== '') {
            fwrite(Log::stream(), $buffer);
        }

        return '';
    }

    /**
     * @return bool true: keep waiting; false: the server said stop
     */
    private function handleControl(Frame $frame): bool
    {
        $command = json_decode($frame->payload, true);
        if (!is_array($command)) {
            throw new ProtocolException(sprintf(
                'control frame payload is not a JSON object: %s',
                self::preview($frame->payload),
            ));
        }
        if (!empty($command['pid'])) {
            $reply = json_encode(['pid' => getmypid()], JSON_THROW_ON_ERROR);
            $this->relay->send(new Frame(Frame::CONTROL, [], $reply));

            return true;
        }
        if (!empty($command['stop'])) {
            return false;
        }

        throw new ProtocolException(sprintf(
            'unknown control command %s; this worker understands {"pid":N} and'
            . ' {"stop":true}',
            self::preview($frame->payload),
        ));
    }

    private function toPayload(Frame $frame): Payload
    {
        if ($frame->isError()) {
            throw new ProtocolException(sprintf(
                'the server sent an error frame instead of a request: %s',
                self::preview($frame->payload),
            ));
        }
        if ($frame->options === []) {
            throw new ProtocolException(
                'a request frame must carry one option, the context length, but'
                . ' it has none (flags 0x' . dechex($frame->flags) . ')',
            );
        }
        $contextLength = $frame->options[0];
        if ($contextLength > strlen($frame->payload)) {
            throw new ProtocolException(sprintf(
                'request frame says its context is %d bytes but the payload has only %d',
                $contextLength,
                strlen($frame->payload),
            ));
        }
        $this->answering = true;

        return new Payload(
            substr($frame->payload, 0, $contextLength),
            (string) substr($frame->payload, $contextLength),
            $frame->flags,
            $frame->hasStreamFlag(Frame::STREAM),
        );
    }

    /** Read, without blocking, whatever PONG / STOP frames have arrived. */
    private function pollStream(): void
    {
        while ($this->relay->hasFrame()) {
            $frame = $this->relay->receive();
            if ($frame->hasStreamFlag(Frame::STOP)) {
                $this->streamStopped = true;
            } elseif (!$frame->hasStreamFlag(Frame::PONG)) {
                $this->pending[] = $frame; // not ours to handle mid-stream
            }
        }
    }

    /** The empty final frame that acknowledges STOP: options [0], flags 0. */
    private function endStoppedStream(): void
    {
        $this->relay->send(new Frame(0, [0], ''));
        $this->finishAnswer();
        $this->streamStopped = true; // keeps later respond() calls quiet
    }

    private function finishAnswer(): void
    {
        $this->answering = false;
        $this->streaming = false;
        $this->streamedChunks = 0;
    }

    private function requireAnswering(string $call): void
    {
        if (!$this->answering) {
            throw new ProtocolException(
                "$call was called but no request is waiting for an answer; call"
                . ' waitPayload() first, and answer each payload exactly once',
            );
        }
    }

    private static function redirectOutputToStderr(): void
    {
        $name = self::class . '::forwardOutput';
        if (in_array($name, ob_list_handlers(), true)) {
            return;
        }
        // Chunk size 1: forward each piece of output as soon as it is made.
        ob_start([self::class, 'forwardOutput'], 1);
        $display = strtolower((string) ini_get('display_errors'));
        if (in_array($display, ['1', 'on', 'yes', 'true', 'stdout'], true)) {
            ini_set('display_errors', 'stderr');
        }
    }

    private static function preview(string $bytes): string
    {
        $shown = strlen($bytes) > 200 ? substr($bytes, 0, 200) . '...' : $bytes;

        return json_encode($shown, JSON_INVALID_UTF8_SUBSTITUTE | JSON_UNESCAPED_SLASHES) ?: '?';
    }
}
