<?php

declare(strict_types=1);

namespace TrioRunner\Relay;

use TrioRunner\Exception\ConfigException;
use TrioRunner\Exception\RelayClosedException;
use TrioRunner\Frame;

/**
 * Frames over a pair of PHP streams: STDIN/STDOUT in pipe mode, or any
 * readable and writable streams (one socket of stream_socket_pair() works
 * as both).
 */
final class StreamRelay extends Relay
{
    /** @var resource|null */
    private $in;
    /** @var resource|null */
    private $out;

    /**
     * @param resource $in frames from the server are read here
     * @param resource $out frames to the server are written here
     * @param float|null $timeout seconds a read may wait for data; null
     *                            waits forever (what a worker wants)
     * @param string $name how errors name the peer
     */
    public function __construct(
        $in,
        $out,
        private readonly ?float $timeout = null,
        private readonly string $name = 'the server (pipes)',
    ) {
        if (!is_resource($in) || !is_resource($out)) {
            throw new ConfigException('StreamRelay needs two open PHP stream resources');
        }
        $this->in = $in;
        $this->out = $out;
    }

    /** The pipe-mode relay: frames on STDIN, answers on STDOUT. */
    public static function stdio(?float $timeout = null): self
    {
        $in = defined('STDIN') ? STDIN : fopen('php://stdin', 'rb');
        $out = defined('STDOUT') ? STDOUT : fopen('php://stdout', 'wb');

        return new self($in, $out, $timeout);
    }

    public function send(Frame $frame): void
    {
        StreamIo::writeAll($this->out ?? $this->closed(), $frame->encode(), $this->name);
    }

    public function receive(): Frame
    {
        return StreamIo::readFrame($this->in ?? $this->closed(), $this->timeout, $this->name);
    }

    public function hasFrame(): bool
    {
        return $this->in !== null && StreamIo::readable($this->in);
    }

    /** Forget the streams. They are not fclose()d: the caller owns them. */
    public function close(): void
    {
        $this->in = $this->out = null;
    }

    private function closed(): never
    {
        throw new RelayClosedException(
            "the relay to {$this->name} was closed by this process",
        );
    }
}
