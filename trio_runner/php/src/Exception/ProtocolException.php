<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/**
 * A valid frame whose meaning is wrong for this point of the exchange: an
 * unknown control command, a data frame without its context-length option,
 * a context that does not decode.
 */
class ProtocolException extends \RuntimeException implements TrioRunnerException
{
}
