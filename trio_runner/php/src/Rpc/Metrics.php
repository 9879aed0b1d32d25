<?php

declare(strict_types=1);

namespace TrioRunner\Rpc;

use TrioRunner\Exception\RpcException;

/**
 * Prometheus collectors fed over RPC (the server's metrics.* methods).
 *
 *     $metrics = Metrics::create();
 *     $metrics->declare('orders', Metrics::counter('Orders placed', ['kind']));
 *     $metrics->add('orders', 1, ['book']);
 *
 * Errors come back with the server's text, e.g. "undefined collector X,
 * try first Declare..." or "required labels for collector X".
 */
final class Metrics
{
    public function __construct(private readonly Rpc $rpc)
    {
    }

    public static function create(): self
    {
        return new self(Rpc::fromEnvironment());
    }

    /** @param list<string> $labels @return array<string, mixed> */
    public static function counter(string $help = '', array $labels = []): array
    {
        return ['type' => 'counter', 'help' => $help, 'labels' => $labels];
    }

    /** @param list<string> $labels @return array<string, mixed> */
    public static function gauge(string $help = '', array $labels = []): array
    {
        return ['type' => 'gauge', 'help' => $help, 'labels' => $labels];
    }

    /**
     * @param list<float> $buckets
     * @param list<string> $labels
     *
     * @return array<string, mixed>
     */
    public static function histogram(string $help = '', array $buckets = [], array $labels = []): array
    {
        return ['type' => 'histogram', 'help' => $help, 'buckets' => $buckets, 'labels' => $labels];
    }

    /**
     * @param array<string, float> $objectives quantile => allowed error
     * @param list<string> $labels
     *
     * @return array<string, mixed>
     */
    public static function summary(string $help = '', array $objectives = [], array $labels = []): array
    {
        return ['type' => 'summary', 'help' => $help, 'objectives' => (object) $objectives, 'labels' => $labels];
    }

    /**
     * Declare a collector (keys: type, help, labels, namespace, subsystem,
     * buckets, objectives). Declaring an existing name is not an error.
     *
     * @param array<string, mixed> $collector
     *
     * @throws RpcException
     */
    public function declare(string $name, array $collector): void
    {
        try {
            $this->rpc->call('metrics.Declare', ['name' => $name, 'collector' => $collector]);
        } catch (RpcException $e) {
            if (!str_contains($e->getMessage(), 'tried to register existing collector')) {
                throw $e;
            }
        }
    }

    /** @param list<string> $labels @throws RpcException */
    public function add(string $name, float $value, array $labels = []): void
    {
        $this->operate('metrics.Add', $name, $value, $labels);
    }

    /** @param list<string> $labels @throws RpcException */
    public function sub(string $name, float $value, array $labels = []): void
    {
        $this->operate('metrics.Sub', $name, $value, $labels);
    }

    /** @param list<string> $labels @throws RpcException */
    public function set(string $name, float $value, array $labels = []): void
    {
        $this->operate('metrics.Set', $name, $value, $labels);
    }

    /** @param list<string> $labels @throws RpcException */
    public function observe(string $name, float $value, array $labels = []): void
    {
        $this->operate('metrics.Observe', $name, $value, $labels);
    }

    /** @throws RpcException */
    public function unregister(string $name): void
    {
        $this->rpc->call('metrics.Unregister', $name);
    }

    /** @param list<string> $labels */
    private function operate(string $method, string $name, float $value, array $labels): void
    {
        $this->rpc->call($method, ['name' => $name, 'value' => $value, 'labels' => array_values($labels)]);
    }
}
