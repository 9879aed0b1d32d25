<?php

declare(strict_types=1);

namespace TrioRunner\Relay;

use TrioRunner\Exception\FrameException;
use TrioRunner\Exception\RelayException;
use TrioRunner\Frame;

/**
 * A two-way link to the server that moves whole frames. Implement it for a
 * custom transport (tests use an in-memory one); `Relay` is the base class
 * of the shipped relays and holds the factories.
 */
interface RelayInterface
{
    /**
     * Write one frame, all of it, before returning.
     *
     * @throws RelayException when the write fails
     */
    public function send(Frame $frame): void;

    /**
     * Block until one whole frame has arrived and return it.
     *
     * @throws RelayException when the read fails, times out or hits EOF
     * @throws FrameException when the bytes are not a valid frame
     */
    public function receive(): Frame;

    /**
     * True when receive() can start reading right now, without waiting.
     * Used while streaming to notice PONG and STOP frames.
     */
    public function hasFrame(): bool;

    /** Release the underlying streams. Safe to call twice. */
    public function close(): void;
}
