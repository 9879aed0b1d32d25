<?php

declare(strict_types=1);

namespace TrioRunner\Relay;

use TrioRunner\Exception\ConfigException;

/**
 * Base class of the shipped relays, and the place to make one from a spec.
 *
 * Specs are the values of the server's `server.relay` setting, which the
 * server passes to every worker as RR_RELAY (PROTOCOL.md 2.1):
 *
 *     pipes, "" or pipes://stdin:stdout   frames on STDIN / STDOUT
 *     tcp://HOST:PORT                     connect to the server over TCP
 *     unix:///abs/path.sock, unix://rel   connect to a unix socket
 */
abstract class Relay implements RelayInterface
{
    /** The relay named by RR_RELAY; `pipes` when it is unset or empty. */
    public static function fromEnvironment(): RelayInterface
    {
        $spec = getenv('RR_RELAY');
        if ($spec === false) {
            $spec = $_ENV['RR_RELAY'] ?? $_SERVER['RR_RELAY'] ?? 'pipes';
        }

        return self::create((string) $spec);
    }

    /**
     * Build the relay a spec names. Socket relays connect lazily, on the
     * first send or receive.
     *
     * @throws ConfigException when the spec is not one of the forms above
     */
    public static function create(string $spec): RelayInterface
    {
        if ($spec === '' || $spec === 'pipes' || $spec === 'pipes://stdin:stdout') {
            return StreamRelay::stdio();
        }
        if (str_starts_with($spec, 'tcp://') || str_starts_with($spec, 'unix://')) {
            return new SocketRelay($spec);
        }

        throw new ConfigException(sprintf(
            'relay spec "%s" is not understood; use "pipes", "tcp://HOST:PORT"'
            . ' (e.g. tcp://127.0.0.1:6001) or "unix:///path/to.sock". It comes'
            . ' from RR_RELAY, which the server sets from server.relay.',
            $spec,
        ));
    }

    public function __destruct()
    {
        $this->close();
    }
}
