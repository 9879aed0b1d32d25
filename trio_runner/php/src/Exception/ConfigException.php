<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/** A value given to the library (or found in the environment) is unusable. */
class ConfigException extends \InvalidArgumentException implements TrioRunnerException
{
}
