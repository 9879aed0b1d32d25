<?php

/*
 * Root of the library's exceptions. Catch this to catch everything the
 * library throws on purpose:
 *
 *   TrioRunnerException (interface)
 *   ├── ConfigException        you passed something unusable (bad RR_RELAY,
 *   │                          no PSR-17 factories); fix the call or the env
 *   ├── RelayException         the link to the server failed; the worker
 *   │   ├── RelayClosedException   should exit and will be replaced
 *   │   └── RelayTimeoutException
 *   ├── FrameException         bytes that are not a goridge frame (bad CRC,
 *   │                          bad header); the stream is out of sync, exit
 *   ├── ProtocolException      a well-formed frame that makes no sense here
 *   │                          (unknown control command, undecodable context)
 *   ├── RpcException           the server answered an RPC call with an error;
 *   │                          the message is its text
 *   └── StreamStoppedException the server cancelled a streamed response;
 *                              stop producing chunks
 */

declare(strict_types=1);

namespace TrioRunner\Exception;

interface TrioRunnerException extends \Throwable
{
}
