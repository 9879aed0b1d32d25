<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/** A read with a timeout (set on the relay) saw no data in time. */
class RelayTimeoutException extends RelayException
{
}
