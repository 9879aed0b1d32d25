<?php

declare(strict_types=1);

namespace TrioRunner\Relay;

use TrioRunner\Exception\RelayClosedException;
use TrioRunner\Exception\RelayException;
use TrioRunner\Exception\RelayTimeoutException;
use TrioRunner\Frame;

/**
 * Frame I/O over PHP streams, shared by StreamRelay and SocketRelay.
 *
 * Reads loop until every byte has arrived, so a frame split across pipe
 * writes is fine (RoadRunner's PHP reads the header with one fread and fails
 * on a short one). Every read waits in stream_select, which also sees bytes
 * already sitting in PHP's stream buffer; that is what makes the optional
 * timeout and the non-blocking poll work.
 *
 * @internal
 */
final class StreamIo
{
    /**
     * @param resource $stream
     *
     * @throws RelayException
     */
    public static function readFrame($stream, ?float $timeout, string $peer): Frame
    {
        $header = self::readExactly($stream, Frame::HEADER_SIZE, $timeout, $peer, true);
        $rest = self::readExactly($stream, Frame::restLength($header), $timeout, $peer, false);

        return Frame::decode($header, $rest);
    }

    /**
     * @param resource $stream
     *
     * @throws RelayException
     */
    public static function writeAll($stream, string $bytes, string $peer): void
    {
        $total = strlen($bytes);
        $written = 0;
        while ($written < $total) {
            // The first call normally writes the whole frame (PROTOCOL.md 8.3a).
            $n = @fwrite($stream, $written === 0 ? $bytes : substr($bytes, $written));
            if ($n === false || $n === 0) {
                throw new RelayException(sprintf(
                    'writing a frame to %s failed after %d of %d bytes (%s);'
                    . ' the server has probably closed the relay',
                    $peer,
                    $written,
                    $total,
                    error_get_last()['message'] ?? 'no error reported',
                ));
            }
            $written += $n;
        }
        @fflush($stream);
    }

    /**
     * True when a read would not block: data is buffered or readable, or
     * the peer closed (so that receive() reports it).
     *
     * @param resource $stream
     */
    public static function readable($stream): bool
    {
        if (!is_resource($stream)) {
            return false;
        }
        $read = [$stream];
        $write = $except = null;

        return @stream_select($read, $write, $except, 0, 0) > 0;
    }

    /**
     * @param resource $stream
     */
    private static function readExactly(
        $stream,
        int $length,
        ?float $timeout,
        string $peer,
        bool $atFrameStart,
    ): string {
        $data = '';
        while (strlen($data) < $length) {
            self::waitReadable($stream, $timeout, $peer, $length, strlen($data));
            $chunk = @fread($stream, $length - strlen($data));
            if ($chunk === false) {
                throw new RelayException(sprintf(
                    'reading from %s failed (%s)',
                    $peer,
                    error_get_last()['message'] ?? 'no error reported',
                ));
            }
            if ($chunk === '' && feof($stream)) {
                if ($atFrameStart && $data === '') {
                    throw new RelayClosedException("$peer closed the relay (end of file)", true);
                }
                throw new RelayClosedException(sprintf(
                    '%s closed the relay in the middle of a frame: got %d of the %d %s bytes',
                    $peer,
                    strlen($data),
                    $length,
                    $atFrameStart ? 'header' : 'options and payload',
                ));
            }
            $data .= $chunk;
        }

        return $data;
    }

    /**
     * @param resource $stream
     */
    private static function waitReadable(
        $stream,
        ?float $timeout,
        string $peer,
        int $wanted,
        int $got,
    ): void {
        $deadline = $timeout === null ? null : microtime(true) + $timeout;
        while (true) {
            if (!is_resource($stream)) {
                throw new RelayClosedException("the relay to $peer is closed");
            }
            $read = [$stream];
            $write = $except = null;
            error_clear_last();
            if ($deadline === null) {
                $ready = @stream_select($read, $write, $except, null);
            } else {
                $left = max(0.0, $deadline - microtime(true));
                $seconds = (int) $left;
                $micro = (int) (($left - $seconds) * 1e6);
                $ready = @stream_select($read, $write, $except, $seconds, $micro);
            }
            if ($ready > 0) {
                return;
            }
            if ($ready === false
                && !str_contains(error_get_last()['message'] ?? '', 'Interrupted')
            ) {
                // Not selectable (e.g. php://memory): let fread decide.
                return;
            }
            // Interrupted by a signal, or timed out: check the deadline.
            if ($deadline !== null && microtime(true) >= $deadline) {
                throw new RelayTimeoutException(sprintf(
                    'no data from %s within %.3g s (had %d of %d bytes)',
                    $peer,
                    $timeout,
                    $got,
                    $wanted,
                ));
            }
        }
    }
}
