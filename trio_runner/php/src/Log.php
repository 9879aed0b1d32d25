<?php

declare(strict_types=1);

namespace TrioRunner;

/**
 * Where the library writes its own log lines: STDERR, which the server
 * reads and logs (PROTOCOL.md 8.2). Never stdout, the protocol channel in
 * pipe mode.
 */
final class Log
{
    /** @var resource|null another stream to write to (tests); null is STDERR */
    public static $stream = null;

    /** Write one line, prefixed with [trio_runner]. */
    public static function write(string $message): void
    {
        fwrite(self::stream(), '[trio_runner] ' . rtrim($message, "\n") . "\n");
    }

    /** @return resource */
    public static function stream()
    {
        return self::$stream ?? (defined('STDERR') ? STDERR : fopen('php://stderr', 'wb'));
    }
}
