<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/** The server closed its end of the relay (end of file on read). */
class RelayClosedException extends RelayException
{
    /**
     * @param bool $betweenFrames true when the end came before the first
     *                            byte of a frame (a clean close), false when
     *                            a frame was cut short
     */
    public function __construct(
        string $message,
        public readonly bool $betweenFrames = false,
        ?\Throwable $previous = null,
    ) {
        parent::__construct($message, 0, $previous);
    }
}
