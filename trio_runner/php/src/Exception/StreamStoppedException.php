<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/**
 * The server cancelled the streamed response in progress (for example the
 * HTTP client went away). The library has already sent the final frame;
 * stop producing chunks. HttpWorker throws it into a generator body so its
 * `finally` blocks run.
 */
class StreamStoppedException extends \RuntimeException implements TrioRunnerException
{
}
