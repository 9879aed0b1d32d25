<?php

declare(strict_types=1);

namespace TrioRunner\Http\Codec;

use TrioRunner\Exception\ProtocolException;
use TrioRunner\Frame;
use TrioRunner\Http\Request;

/**
 * The legacy JSON contexts (RoadRunner up to 2023.3):
 *
 *     request:  {"remoteAddr","protocol","method","uri","headers":{name:[v]},
 *                "cookies":{name:v},"rawQuery","parsed","uploads","attributes"}
 *     response: {"status":200,"headers":{name:[v]}}
 */
final class JsonCodec implements ContextCodec
{
    private const ENCODE = JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES
        | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE;

    public function flag(): int
    {
        return Frame::CODEC_JSON;
    }

    public function decodeRequest(string $context, string $body = ''): Request
    {
        $c = json_decode($context, true);
        if (!self::isObject($c)) {
            throw new ProtocolException(
                'the JSON request context is not a JSON object: ' . substr($context, 0, 200),
            );
        }
        $uploads = $c['uploads'] ?? null;

        return new Request(
            method: self::string($c, 'method'),
            uri: self::string($c, 'uri'),
            protocol: self::string($c, 'protocol'),
            remoteAddr: self::string($c, 'remoteAddr'),
            headers: self::lists($c['headers'] ?? []),
            cookies: array_map(
                static fn (array $v): string => implode(',', $v),
                self::lists($c['cookies'] ?? []),
            ),
            rawQuery: self::string($c, 'rawQuery'),
            body: $body,
            parsed: (bool) ($c['parsed'] ?? false),
            uploads: is_array($uploads) ? $uploads : null,
            attributes: is_array($c['attributes'] ?? null) ? $c['attributes'] : [],
        );
    }

    public function encodeResponse(int $status, array $headers): string
    {
        return json_encode(
            ['status' => $status, 'headers' => $headers === [] ? new \stdClass() : $headers],
            self::ENCODE,
        );
    }

    public function encodeRequest(Request $request): string
    {
        $object = static fn (array $a): array|\stdClass => $a === [] ? new \stdClass() : $a;

        return json_encode([
            'remoteAddr' => $request->remoteAddr,
            'protocol' => $request->protocol,
            'method' => $request->method,
            'uri' => $request->uri,
            'headers' => $object($request->headers),
            'cookies' => $object($request->cookies),
            'rawQuery' => $request->rawQuery,
            'parsed' => $request->parsed,
            'uploads' => $request->uploads,
            'attributes' => $object($request->attributes),
        ], self::ENCODE);
    }

    public function decodeResponse(string $context): array
    {
        $c = json_decode($context, true);
        if (!self::isObject($c)) {
            throw new ProtocolException(
                'the JSON response context is not a JSON object: ' . substr($context, 0, 200),
            );
        }

        return [(int) ($c['status'] ?? 0), self::lists($c['headers'] ?? [])];
    }

    /** @phpstan-assert-if-true array<string, mixed> $decoded */
    private static function isObject(mixed $decoded): bool
    {
        return is_array($decoded) && ($decoded === [] || !array_is_list($decoded));
    }

    /** @param array<string, mixed> $c */
    private static function string(array $c, string $key): string
    {
        $value = $c[$key] ?? '';

        return is_scalar($value) ? (string) $value : '';
    }

    /**
     * name => value or [values] becomes name => list of strings.
     *
     * @return array<string, list<string>>
     */
    private static function lists(mixed $map): array
    {
        if (!is_array($map)) {
            return [];
        }
        $out = [];
        foreach ($map as $name => $values) {
            $values = is_array($values) ? $values : [$values];
            $out[(string) $name] = array_values(array_map(
                static fn ($v): string => is_scalar($v) ? (string) $v : '',
                $values,
            ));
        }

        return $out;
    }
}
