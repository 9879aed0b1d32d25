<?php

declare(strict_types=1);

namespace TrioRunner;

/**
 * What a data frame carries: a context (the request or response metadata,
 * e.g. an encoded http.v1.Request) and a body. On the wire the frame's one
 * option is strlen($context) and its payload is $context . $body.
 */
final class Payload
{
    /**
     * @param string $context metadata; for HTTP the encoded request/response
     * @param string $body the body bytes
     * @param int $codec frame flags: received ones on requests, the codec to
     *                   send on responses (Frame::CODEC_PROTO, CODEC_JSON, 0)
     * @param bool $more responses: more chunks follow (byte 10 STREAM bit);
     *                   requests: the STREAM bit as received
     */
    public function __construct(
        public readonly string $context = '',
        public readonly string $body = '',
        public readonly int $codec = 0,
        public readonly bool $more = false,
    ) {
    }
}
