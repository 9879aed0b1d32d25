<?php

namespace App\Bootstrap;

use Illuminate\Foundation\Bootstrap\HandleExceptions;
use Throwable;

/**
 * Laravel's error/exception bootstrapper, minus the parts that print.
 *
 * Errors raised inside a request are turned into ErrorExceptions and
 * rendered by the kernel as usual. What is left for the global handlers is
 * an exception that escaped the worker loop or a fatal error at shutdown;
 * the stock class would render those to stdout (as an HTTP page or console
 * output), which in a worker is the protocol pipe. Here they are reported
 * to the log and summarised on stderr instead.
 */
class HandleWorkerExceptions extends HandleExceptions
{
    protected function renderForConsole(Throwable $e)
    {
        $this->writeToStderr($e);
    }

    protected function renderHttpResponse(Throwable $e)
    {
        $this->writeToStderr($e);
    }

    private function writeToStderr(Throwable $e): void
    {
        $line = sprintf(
            "[laravel worker %d] uncaught %s: %s in %s:%d\n",
            getmypid(),
            get_class($e),
            $e->getMessage(),
            $e->getFile(),
            $e->getLine()
        );
        @file_put_contents('php://stderr', $line);
    }
}
