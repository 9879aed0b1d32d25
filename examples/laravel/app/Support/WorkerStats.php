<?php

namespace App\Support;

/**
 * Per-process numbers, bound as a shared instance in the container at boot.
 * They live as long as the worker process, not a request.
 */
final class WorkerStats
{
    public int $requests = 0;

    public function __construct(public readonly float $bootedAt)
    {
    }
}
