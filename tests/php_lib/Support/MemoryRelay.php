<?php

declare(strict_types=1);

namespace TrioRunner\Tests\Support;

use TrioRunner\Exception\RelayClosedException;
use TrioRunner\Frame;
use TrioRunner\Relay\RelayInterface;

/**
 * A scripted in-memory relay: frames "from the server" are queued up front
 * (or by the onSend hook as the worker sends), frames the worker sends are
 * recorded after a round trip through encode/decode. An empty queue reads
 * as a clean end of file, so a test can never hang on it.
 */
final class MemoryRelay implements RelayInterface
{
    /** @var list<Frame> */
    public array $incoming = [];
    /** @var list<Frame> */
    public array $sent = [];
    /** @var (\Closure(Frame, self): void)|null called after each send */
    public ?\Closure $onSend = null;

    public function __construct(Frame ...$incoming)
    {
        $this->incoming = array_values($incoming);
    }

    public function push(Frame ...$frames): void
    {
        array_push($this->incoming, ...$frames);
    }

    public function send(Frame $frame): void
    {
        $this->sent[] = Frame::fromBytes($frame->encode());
        if ($this->onSend !== null) {
            ($this->onSend)($frame, $this);
        }
    }

    public function receive(): Frame
    {
        if ($this->incoming === []) {
            throw new RelayClosedException('memory relay: no more frames queued', true);
        }

        return array_shift($this->incoming);
    }

    public function hasFrame(): bool
    {
        return $this->incoming !== [];
    }

    public function close(): void
    {
    }
}
