<?php

declare(strict_types=1);

namespace TrioRunner\Rpc;

use TrioRunner\Exception\ConfigException;
use TrioRunner\Exception\ProtocolException;
use TrioRunner\Exception\RelayException;
use TrioRunner\Exception\RpcException;
use TrioRunner\Frame;
use TrioRunner\Relay\RelayInterface;
use TrioRunner\Relay\SocketRelay;

/**
 * A goridge RPC client: call the server's methods (PROTOCOL.md 5.1).
 *
 *     $rpc = Rpc::fromEnvironment();              // RR_RPC, else tcp://127.0.0.1:6001
 *     $workers = $rpc->call('informer.Workers', 'http')['workers'];
 *
 * A call is one request frame (options [seq, method length], payload
 * method . body) and one reply frame with the same seq. The seq is shared
 * by every client in the process and starts at 1, as in RoadRunner's PHP
 * library. Calls are synchronous: one at a time per client.
 *
 * Codecs: JSON (the default; values in, decoded values out), RAW and
 * PROTO (strings in and out: bring your own encoded message), MSGPACK
 * (needs the msgpack extension).
 */
final class Rpc
{
    public const DEFAULT_ADDRESS = 'tcp://127.0.0.1:6001';

    private static int $seq = 1;

    private readonly RelayInterface $relay;
    private readonly string $address;

    /**
     * @param RelayInterface|string $relay a relay, or an address
     *                                     (tcp://HOST:PORT, unix://PATH)
     * @param int $codec the codec of call() when it is given none
     *
     * @throws ConfigException when the address is malformed
     */
    public function __construct(RelayInterface|string $relay, private readonly int $codec = Frame::CODEC_JSON)
    {
        if (is_string($relay)) {
            $this->address = $relay;
            $relay = new SocketRelay($relay);
        } else {
            $this->address = $relay instanceof SocketRelay ? $relay->address() : get_class($relay);
        }
        $this->relay = $relay;
    }

    /** A client of the address in RR_RPC, which the server sets from rpc.listen. */
    public static function fromEnvironment(): self
    {
        $address = getenv('RR_RPC');
        if ($address === false || $address === '') {
            $address = $_ENV['RR_RPC'] ?? $_SERVER['RR_RPC'] ?? self::DEFAULT_ADDRESS;
        }

        return new self((string) $address);
    }

    /** The same connection, with another default codec. */
    public function withCodec(int $codec): self
    {
        $copy = new self($this->relay, $codec);

        return $copy;
    }

    public function address(): string
    {
        return $this->address;
    }

    /**
     * Call $method ("Service.Method") with $payload; return the reply.
     *
     * @param mixed $payload JSON/MSGPACK: any encodable value; RAW and
     *                       PROTO: a string of bytes
     * @param int|null $codec Frame::CODEC_*, else this client's codec
     *
     * @return mixed the decoded reply (JSON, MSGPACK) or its bytes (RAW,
     *               PROTO); null for an empty JSON reply
     *
     * @throws RpcException when the server answers with an error
     * @throws RelayException when the server cannot be reached
     * @throws ProtocolException when the reply is not one
     */
    public function call(string $method, mixed $payload = null, ?int $codec = null): mixed
    {
        $codec ??= $this->codec;
        $seq = self::$seq;
        $request = new Frame($codec, [$seq, strlen($method)], $method . self::encode($codec, $payload));
        try {
            $this->relay->send($request);
            $reply = $this->relay->receive();
        } catch (RelayException $e) {
            throw new RelayException(sprintf(
                'RPC %s to %s failed: %s. Is trio_runner running with [rpc] listen'
                . ' = "%s" (workers get it as RR_RPC)?',
                $method,
                $this->address,
                $e->getMessage(),
                $this->address,
            ), 0, $e);
        } finally {
            self::$seq++;
        }
        if (count($reply->options) !== 2 || $reply->options[0] !== $seq) {
            throw new ProtocolException(sprintf(
                'RPC %s: the reply must carry options [%d, method length], got [%s]',
                $method,
                $seq,
                implode(', ', $reply->options),
            ));
        }
        $body = (string) substr($reply->payload, $reply->options[1]);
        if ($reply->isError()) {
            throw new RpcException($body, $method, $this->address);
        }

        return self::decode($codec, $body);
    }

    /**
     * The seq the next call will use.
     *
     * @internal for tests
     */
    public static function nextSequence(?int $set = null): int
    {
        if ($set !== null) {
            self::$seq = $set;
        }

        return self::$seq;
    }

    private static function encode(int $codec, mixed $payload): string
    {
        switch ($codec) {
            case Frame::CODEC_JSON:
                return json_encode($payload, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES | JSON_PRESERVE_ZERO_FRACTION);
            case Frame::CODEC_RAW:
            case Frame::CODEC_PROTO:
                if (!is_string($payload) && $payload !== null) {
                    throw new ConfigException('RAW and PROTO RPC payloads are strings of bytes, got ' . get_debug_type($payload));
                }

                return (string) $payload;
            case Frame::CODEC_MSGPACK:
                self::needMsgpack();

                return \msgpack_pack($payload);
        }

        throw new ConfigException(sprintf(
            'RPC codec 0x%02x is not supported; use Frame::CODEC_JSON, CODEC_PROTO, CODEC_RAW or CODEC_MSGPACK',
            $codec,
        ));
    }

    private static function decode(int $codec, string $body): mixed
    {
        if ($codec === Frame::CODEC_JSON) {
            return $body === '' ? null : json_decode($body, true, 512, JSON_THROW_ON_ERROR);
        }
        if ($codec === Frame::CODEC_MSGPACK) {
            return $body === '' ? null : \msgpack_unpack($body);
        }

        return $body;
    }

    private static function needMsgpack(): void
    {
        if (!function_exists('msgpack_pack')) {
            throw new ConfigException('the MSGPACK codec needs the msgpack extension (pecl install msgpack); use CODEC_JSON instead');
        }
    }
}
