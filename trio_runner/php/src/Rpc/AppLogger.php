<?php

declare(strict_types=1);

namespace TrioRunner\Rpc;

use TrioRunner\Exception\RpcException;
use TrioRunner\Frame;
use TrioRunner\Protobuf\WireWriter;

/**
 * Log through the server's logger (the app.* methods): records land in the
 * server's log as logger "trio_runner.app", with the context as fields.
 *
 *     $log = AppLogger::create();
 *     $log->info('order shipped', ['order' => 42]);
 *     $log->log('raw line for the server\'s stderr');
 *
 * Without context a call is JSON (app.Info); with context it is an
 * applogger.v1.LogEntry in protobuf (app.InfoWithContext). Context values
 * that are not strings are sent JSON-encoded.
 */
final class AppLogger
{
    public function __construct(private readonly Rpc $rpc)
    {
    }

    public static function create(): self
    {
        return new self(Rpc::fromEnvironment());
    }

    /** @param array<string, mixed> $context @throws RpcException */
    public function error(string $message, array $context = []): void
    {
        $this->send('Error', $message, $context);
    }

    /** @param array<string, mixed> $context @throws RpcException */
    public function warning(string $message, array $context = []): void
    {
        $this->send('Warning', $message, $context);
    }

    /** @param array<string, mixed> $context @throws RpcException */
    public function info(string $message, array $context = []): void
    {
        $this->send('Info', $message, $context);
    }

    /** @param array<string, mixed> $context @throws RpcException */
    public function debug(string $message, array $context = []): void
    {
        $this->send('Debug', $message, $context);
    }

    /**
     * Write $message as it is to the server's stderr.
     *
     * @param array<string, mixed> $context
     *
     * @throws RpcException
     */
    public function log(string $message, array $context = []): void
    {
        $this->send('Log', $message, $context);
    }

    /**
     * The protobuf applogger.v1.LogEntry for a message and its context.
     *
     * @param array<string, mixed> $context
     */
    public static function entry(string $message, array $context): string
    {
        $entry = new WireWriter();
        if ($message !== '') {
            $entry->bytes(1, $message);
        }
        foreach ($context as $key => $value) {
            $text = is_string($value) ? $value : json_encode($value, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
            $entry->bytes(2, (new WireWriter())->bytes(1, (string) $key)->bytes(2, $text)->toString());
        }

        return $entry->toString();
    }

    /** @param array<string, mixed> $context */
    private function send(string $level, string $message, array $context): void
    {
        if ($context === []) {
            $this->rpc->call("app.$level", $message, Frame::CODEC_JSON);

            return;
        }
        $this->rpc->call("app.{$level}WithContext", self::entry($message, $context), Frame::CODEC_PROTO);
    }
}
