<?php

declare(strict_types=1);

namespace TrioRunner\Rpc;

use TrioRunner\Exception\RpcException;

/**
 * A pool's workers over RPC: list them, add or remove one, reset the pool.
 *
 *     $pool = WorkerPool::create();
 *     $pool->addWorker('http');
 *     foreach ($pool->workers('http') as $w) { echo $w['pid'], ' ', $w['statusStr'], "\n"; }
 *
 * Worker arrays have RoadRunner's informer keys: pid, status, numExecs,
 * created (Unix ns), memoryUsage (RSS bytes), CPUPercent, command,
 * statusStr.
 */
final class WorkerPool
{
    public function __construct(private readonly Rpc $rpc)
    {
    }

    public static function create(): self
    {
        return new self(Rpc::fromEnvironment());
    }

    /**
     * The pool's workers; [] for a name that is no pool.
     *
     * @return list<array{pid: int, status: int, numExecs: int, created: int, memoryUsage: int, CPUPercent: float|int, command: string, statusStr: string}>
     *
     * @throws RpcException
     */
    public function workers(string $pool): array
    {
        return $this->rpc->call('informer.Workers', $pool)['workers'] ?? [];
    }

    public function count(string $pool): int
    {
        return count($this->workers($pool));
    }

    /**
     * The names of the pools.
     *
     * @return list<string>
     */
    public function pools(): array
    {
        return $this->rpc->call('informer.List', true);
    }

    /** One more worker; returns once it is ready. @throws RpcException */
    public function addWorker(string $pool): void
    {
        $this->rpc->call('informer.AddWorker', $pool);
    }

    /**
     * One worker fewer; returns once it has stopped (after its request).
     * The last worker is never removed.
     *
     * @throws RpcException
     */
    public function removeWorker(string $pool): void
    {
        $this->rpc->call('informer.RemoveWorker', $pool);
    }

    /** Replace every worker; returns once new ones serve. @throws RpcException */
    public function reset(string $pool): void
    {
        $this->rpc->call('resetter.Reset', $pool);
    }
}
