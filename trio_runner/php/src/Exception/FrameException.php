<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/**
 * Bytes that do not form a valid goridge frame: short header, bad CRC,
 * impossible header length, too many options. On a relay this means the
 * byte stream is out of sync and the worker should exit.
 */
class FrameException extends \RuntimeException implements TrioRunnerException
{
}
