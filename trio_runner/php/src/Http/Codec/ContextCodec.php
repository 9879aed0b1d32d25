<?php

declare(strict_types=1);

namespace TrioRunner\Http\Codec;

use TrioRunner\Exception\ProtocolException;
use TrioRunner\Http\Request;

/**
 * How an HTTP request/response context is encoded: protobuf `http.v1`
 * (RoadRunner 2024.1 and later, frame flag 0x80) or the legacy JSON
 * (flag 0x08). The encode-request / decode-response halves are what the
 * server does; tests and fake servers use them.
 */
interface ContextCodec
{
    /** The frame flag that marks this codec, Frame::CODEC_PROTO or CODEC_JSON. */
    public function flag(): int;

    /**
     * @throws ProtocolException when the context does not decode
     */
    public function decodeRequest(string $context, string $body = ''): Request;

    /**
     * @param array<string, list<string>> $headers
     */
    public function encodeResponse(int $status, array $headers): string;

    /** The context of $request (its body is not part of it). */
    public function encodeRequest(Request $request): string;

    /**
     * @return array{int, array<string, list<string>>} status and headers
     *
     * @throws ProtocolException when the context does not decode
     */
    public function decodeResponse(string $context): array;
}
