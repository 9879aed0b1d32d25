<?php

declare(strict_types=1);

namespace TrioRunner\Http\Codec;

use TrioRunner\Exception\ProtocolException;
use TrioRunner\Frame;
use TrioRunner\Http\Request;
use TrioRunner\Protobuf\WireReader;
use TrioRunner\Protobuf\WireWriter;

/**
 * The protobuf contexts of PROTOCOL.md 4.2 and 4.6, hand-written:
 *
 *     message Request {
 *       string remote_addr = 1;  string protocol = 2;  string method = 3;
 *       string uri = 4;  map<string, HeaderValue> header = 5;
 *       map<string, HeaderValue> cookies = 6;  string raw_query = 7;
 *       bool parsed = 8;  bytes uploads = 9;  // JSON of the file tree
 *       map<string, HeaderValue> attributes = 10;
 *     }
 *     message Response { int64 status = 1; map<string, HeaderValue> headers = 2; }
 *     message HeaderValue { repeated bytes value = 1; }
 *
 * A map is a repeated embedded message {key = 1; value = 2}. Unknown fields
 * are skipped. As in RoadRunner's PHP, cookie values are joined with ","
 * and only the first value of each attribute is kept.
 */
final class ProtoCodec implements ContextCodec
{
    public function flag(): int
    {
        return Frame::CODEC_PROTO;
    }

    public function decodeRequest(string $context, string $body = ''): Request
    {
        $f = [
            'remoteAddr' => '', 'protocol' => '', 'method' => '', 'uri' => '',
            'headers' => [], 'cookies' => [], 'rawQuery' => '', 'parsed' => false,
            'uploads' => null, 'attributes' => [],
        ];
        $reader = new WireReader($context, 'http.v1.Request context');
        while ($reader->next()) {
            match ($reader->field()) {
                1 => $f['remoteAddr'] = $reader->bytes(),
                2 => $f['protocol'] = $reader->bytes(),
                3 => $f['method'] = $reader->bytes(),
                4 => $f['uri'] = $reader->bytes(),
                5 => self::readMapEntry($reader, 'header', $f['headers']),
                6 => self::readMapEntry($reader, 'cookies', $f['cookies']),
                7 => $f['rawQuery'] = $reader->bytes(),
                8 => $f['parsed'] = $reader->varint() !== 0,
                9 => $f['uploads'] = self::decodeUploads($reader->bytes()),
                10 => self::readMapEntry($reader, 'attributes', $f['attributes']),
                default => $reader->skip(),
            };
        }

        return new Request(
            method: $f['method'],
            uri: $f['uri'],
            protocol: $f['protocol'],
            remoteAddr: $f['remoteAddr'],
            headers: $f['headers'],
            cookies: array_map(static fn (array $v): string => implode(',', $v), $f['cookies']),
            rawQuery: $f['rawQuery'],
            body: $body,
            parsed: $f['parsed'],
            uploads: $f['uploads'],
            attributes: array_map(static fn (array $v): string => $v[0] ?? '', $f['attributes']),
        );
    }

    public function encodeResponse(int $status, array $headers): string
    {
        // Once per response: strings rather than a WireWriter per field.
        $out = $status !== 0 ? "\x08" . WireWriter::encodeVarint($status) : '';
        foreach ($headers as $name => $values) {
            $out .= self::mapEntry(2, (string) $name, $values);
        }

        return $out;
    }

    public function encodeRequest(Request $request): string
    {
        $w = new WireWriter();
        $strings = [
            1 => $request->remoteAddr,
            2 => $request->protocol,
            3 => $request->method,
            4 => $request->uri,
        ];
        foreach ($strings as $field => $value) {
            if ($value !== '') {
                $w->bytes($field, $value);
            }
        }
        self::writeMap($w, 5, $request->headers);
        self::writeMap($w, 6, array_map(static fn ($v): array => [(string) $v], $request->cookies));
        if ($request->rawQuery !== '') {
            $w->bytes(7, $request->rawQuery);
        }
        if ($request->parsed) {
            $w->varint(8, 1);
        }
        if ($request->uploads !== null) {
            $uploads = json_encode($request->uploads, JSON_THROW_ON_ERROR | JSON_UNESCAPED_SLASHES);
            $w->bytes(9, $uploads);
        }
        $attributes = array_map(
            static fn ($v): array => is_array($v)
                ? array_map('strval', array_values($v))
                : [(string) $v],
            $request->attributes,
        );
        self::writeMap($w, 10, $attributes);

        return $w->toString();
    }

    public function decodeResponse(string $context): array
    {
        $status = 0;
        $headers = [];
        $reader = new WireReader($context, 'http.v1.Response context');
        while ($reader->next()) {
            match ($reader->field()) {
                1 => $status = $reader->varint(),
                2 => self::readMapEntry($reader, 'headers', $headers),
                default => $reader->skip(),
            };
        }

        return [$status, $headers];
    }

    /**
     * Read one map<string, HeaderValue> entry into $map (last one wins, as
     * protobuf maps do).
     *
     * @param array<string, list<string>> $map
     */
    private static function readMapEntry(WireReader $reader, string $name, array &$map): void
    {
        $entry = $reader->message("map entry of '$name'");
        $key = '';
        $values = [];
        while ($entry->next()) {
            match ($entry->field()) {
                1 => $key = $entry->bytes(),
                2 => $values = self::readHeaderValue($entry->message('HeaderValue')),
                default => $entry->skip(),
            };
        }
        $map[$key] = $values;
    }

    /** @return list<string> */
    private static function readHeaderValue(WireReader $reader): array
    {
        $values = [];
        while ($reader->next()) {
            if ($reader->field() === 1) {
                $values[] = $reader->bytes();
            } else {
                $reader->skip();
            }
        }

        return $values;
    }

    /**
     * @param array<array-key, list<string>> $map
     */
    private static function writeMap(WireWriter $w, int $field, array $map): void
    {
        foreach ($map as $key => $values) {
            $w->append(self::mapEntry($field, (string) $key, $values));
        }
    }

    /**
     * Field $field holding one map<string, HeaderValue> entry, encoded.
     *
     * @param list<string> $values
     */
    private static function mapEntry(int $field, string $key, array $values): string
    {
        $value = '';
        foreach ($values as $v) {
            $value .= WireWriter::lengthDelimited(1, $v);
        }

        return WireWriter::lengthDelimited(
            $field,
            WireWriter::lengthDelimited(1, $key) . WireWriter::lengthDelimited(2, $value),
        );
    }

    /** @return array<array-key, mixed>|null */
    private static function decodeUploads(string $json): ?array
    {
        if ($json === '') {
            return null;
        }
        $tree = json_decode($json, true);
        if ($tree !== null && !is_array($tree)) {
            throw new ProtocolException(
                'the uploads field of the request context is not a JSON object: '
                . substr($json, 0, 200),
            );
        }
        if ($tree === null && json_last_error() !== JSON_ERROR_NONE) {
            throw new ProtocolException(
                'the uploads field of the request context is not valid JSON ('
                . json_last_error_msg() . '): ' . substr($json, 0, 200),
            );
        }

        return $tree;
    }
}
