<?php

declare(strict_types=1);

namespace TrioRunner\Relay;

use TrioRunner\Exception\ConfigException;
use TrioRunner\Exception\RelayClosedException;
use TrioRunner\Exception\RelayException;
use TrioRunner\Frame;

/**
 * Frames over a TCP or unix socket that the worker opens to the server.
 *
 * The server listens first and sends the pid handshake once the worker has
 * connected (PROTOCOL.md 2.1). The connection is opened lazily, on the first
 * send or receive, and retried a few times in quick succession in case the
 * listener is not accepting yet.
 */
final class SocketRelay extends Relay
{
    public const CONNECT_ATTEMPTS = 10;
    /** Pause between connect attempts, in microseconds. */
    public const CONNECT_PAUSE = 20_000;

    private readonly string $address;
    /** @var resource|null */
    private $socket = null;
    private bool $closed = false;

    /**
     * @param string $uri tcp://HOST:PORT (IPv6 as [::1]) or unix://PATH
     *                    (unix:///abs/path or unix://relative/path)
     * @param float|null $timeout seconds a read may wait; null waits forever
     * @param float $connectTimeout seconds for each connect attempt
     * @param int $connectAttempts connect attempts before giving up
     *
     * @throws ConfigException when the uri is malformed
     */
    public function __construct(
        string $uri,
        private readonly ?float $timeout = null,
        private readonly float $connectTimeout = 5.0,
        private readonly int $connectAttempts = self::CONNECT_ATTEMPTS,
    ) {
        $this->address = self::parse($uri);
    }

    /** A relay to tcp://$host:$port. */
    public static function tcp(string $host, int $port, ?float $timeout = null): self
    {
        $host = str_contains($host, ':') && $host[0] !== '[' ? "[$host]" : $host;

        return new self("tcp://$host:$port", $timeout);
    }

    /** A relay to the unix socket at $path. */
    public static function unix(string $path, ?float $timeout = null): self
    {
        return new self("unix://$path", $timeout);
    }

    /** The address connected to, e.g. tcp://127.0.0.1:6001. */
    public function address(): string
    {
        return $this->address;
    }

    /**
     * Connect now rather than on first use (does nothing when connected).
     *
     * @throws RelayException when no attempt succeeds
     */
    public function open(): void
    {
        $this->connect();
    }

    public function send(Frame $frame): void
    {
        StreamIo::writeAll($this->connect(), $frame->encode(), $this->address);
    }

    public function receive(): Frame
    {
        return StreamIo::readFrame($this->connect(), $this->timeout, $this->address);
    }

    public function hasFrame(): bool
    {
        return $this->socket !== null && StreamIo::readable($this->socket);
    }

    public function close(): void
    {
        if (is_resource($this->socket)) {
            fclose($this->socket);
        }
        $this->socket = null;
        $this->closed = true;
    }

    /**
     * @return resource
     */
    private function connect()
    {
        if ($this->socket !== null || $this->closed) {
            if (!is_resource($this->socket)) {
                throw new RelayClosedException("the relay to {$this->address} is closed");
            }

            return $this->socket;
        }
        // Small frames go out at once rather than waiting for Nagle.
        $context = stream_context_create(['socket' => ['tcp_nodelay' => true]]);
        $error = '';
        for ($attempt = 1; $attempt <= $this->connectAttempts; ++$attempt) {
            $socket = @stream_socket_client(
                $this->address,
                $errno,
                $errstr,
                $this->connectTimeout,
                STREAM_CLIENT_CONNECT,
                $context,
            );
            if ($socket !== false) {
                stream_set_blocking($socket, true);

                return $this->socket = $socket;
            }
            $error = $errstr !== '' ? $errstr : "error $errno";
            if ($attempt < $this->connectAttempts) {
                usleep(self::CONNECT_PAUSE);
            }
        }

        throw new RelayException(sprintf(
            'could not connect to the server at %s after %d attempt(s): %s. Is'
            . ' trio_runner listening there (server.relay in roadrunner.toml)?',
            $this->address,
            $this->connectAttempts,
            $error,
        ));
    }

    private static function parse(string $uri): string
    {
        if (preg_match('~^tcp://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})$~', $uri, $m)) {
            $port = (int) $m[2];
            if ($port >= 1 && $port <= 65535) {
                return "tcp://{$m[1]}:$port";
            }
        } elseif (preg_match('~^unix://(.+)$~', $uri, $m)) {
            return $uri;
        }

        throw new ConfigException(sprintf(
            'socket relay address "%s" is malformed; use tcp://HOST:PORT with a'
            . ' non-empty host and a port from 1 to 65535 (e.g.'
            . ' tcp://127.0.0.1:6001), or unix:///path/to.sock',
            $uri,
        ));
    }
}
