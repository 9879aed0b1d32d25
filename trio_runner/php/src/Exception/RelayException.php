<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/**
 * Reading from or writing to the server failed. The worker cannot go on:
 * let the exception end the process and the server will start a new one.
 */
class RelayException extends \RuntimeException implements TrioRunnerException
{
}
