<?php

declare(strict_types=1);

namespace TrioRunner\Exception;

/**
 * The server answered an RPC call with an error. getMessage() is the
 * server's text exactly (e.g. "rpc: can't find method informer.Nope"), so
 * code can match it; $method and $address say which call failed where.
 */
class RpcException extends \RuntimeException implements TrioRunnerException
{
    public function __construct(
        string $message,
        public readonly string $method = '',
        public readonly string $address = '',
    ) {
        parent::__construct($message);
    }
}
