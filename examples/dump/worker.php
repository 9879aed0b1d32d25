<?php

/**
 * A debugging app: every request is answered with JSON of what PHP received.
 *
 * Point a client or a proxy at it to see the request as your app would:
 *
 *     python -m trio_runner serve -c roadrunner.toml
 *     curl -s 'http://127.0.0.1:8090/path?a[]=1' -F note=hi -F file=@report.bin
 *
 * The answer has method, uri, protocol, remoteAddr, headers (every value),
 * cookies, rawQuery, query (as parse_str reads it), parsed, parsedBody (the
 * form fields the server parsed, or null), bodySize and bodySha256 of the
 * body PHP got, body (that body itself when it is not parsed and at most
 * 64 KiB), files (the uploads tree; each file with name, mime, size, error,
 * tmpName, readable and the sha256 of its temp file), attributes, pid and
 * requests (how many requests this worker has served, this one included).
 *
 * JSON holds only UTF-8 text, so other bytes are written reversibly: a
 * string value that is not valid UTF-8 becomes {"base64": "<its bytes>"}
 * and such an array key becomes "base64:<its bytes>".
 *
 * A few query parameters change the answer instead, to see what the server
 * makes of it (they are still shown in the dump):
 *
 *     status=204        answer with this status (200-599); 204 and 304
 *                       reach the client without the body PHP wrote
 *     set-cookie=a=1    add this Set-Cookie line; repeat it for more
 *     text=hello        answer this text as text/plain instead of the dump,
 *                       with no Content-Length (the server adds it)
 *     die=1             exit without answering, as a crashing app does
 *                       (the client gets 500 and a new worker starts)
 */

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Http\HttpWorker;
use TrioRunner\Http\Request;

const MAX_BODY_SHOWN = 65536;

/** A string as JSON can carry it: itself when UTF-8, else its bytes in base64. */
function text(string $value): string|array
{
    return mb_check_encoding($value, 'UTF-8') ? $value : ['base64' => base64_encode($value)];
}

function key_text(int|string $key): int|string
{
    return is_int($key) || mb_check_encoding($key, 'UTF-8') ? $key : 'base64:' . base64_encode($key);
}

/** Every string in a tree made JSON-safe; a map stays a map even when empty. */
function tree(mixed $value, bool $map = false): mixed
{
    if (is_string($value)) {
        return text($value);
    }
    if (!is_array($value)) {
        return $value;
    }
    $out = [];
    foreach ($value as $key => $item) {
        $out[key_text($key)] = tree($item);
    }

    return $map && $out === [] ? new stdClass() : $out;
}

/** The uploads tree with each file's temp file checked and hashed. */
function files(array $node): array|stdClass
{
    $out = [];
    foreach ($node as $key => $item) {
        if (!is_array($item)) {
            continue;
        }
        $out[key_text($key)] = array_key_exists('tmpName', $item) && !is_array($item['tmpName'])
            ? file_leaf($item)
            : files($item);
    }

    return $out === [] ? new stdClass() : $out;
}

function file_leaf(array $leaf): array
{
    $path = (string) ($leaf['tmpName'] ?? '');
    $readable = $path !== '' && is_readable($path);

    return [
        'name' => text((string) ($leaf['name'] ?? '')),
        'mime' => text((string) ($leaf['mime'] ?? '')),
        'size' => (int) ($leaf['size'] ?? 0),
        'error' => (int) ($leaf['error'] ?? 0),
        'tmpName' => text($path),
        'readable' => $readable,
        'sha256' => $readable ? hash_file('sha256', $path) : null,
    ];
}

function dump(Request $request, int $served): array
{
    return [
        'method' => $request->method,
        'uri' => text($request->uri),
        'protocol' => $request->protocol,
        'remoteAddr' => $request->remoteAddr,
        'headers' => tree($request->headers, map: true),
        'cookies' => tree($request->cookies, map: true),
        'rawQuery' => text($request->rawQuery),
        'query' => tree($request->query, map: true),
        'parsed' => $request->parsed,
        'parsedBody' => $request->parsed ? tree($request->parsedBody(), map: true) : null,
        'bodySize' => strlen($request->body),
        'bodySha256' => hash('sha256', $request->body),
        'body' => !$request->parsed && strlen($request->body) <= MAX_BODY_SHOWN
            ? text($request->body)
            : null,
        'files' => $request->uploads === null ? null : files($request->uploads),
        'attributes' => tree($request->attributes, map: true),
        'pid' => getmypid(),
        'requests' => $served,
    ];
}

/**
 * The knobs in a raw query. parse_str keeps only the last of repeated keys,
 * so the pairs are read one by one, in order.
 */
function knobs(string $rawQuery): array
{
    $knobs = ['status' => 200, 'set-cookie' => [], 'text' => null, 'die' => false];
    foreach (explode('&', $rawQuery) as $pair) {
        [$key, $value] = array_pad(explode('=', $pair, 2), 2, '');
        $value = urldecode($value);
        match (urldecode($key)) {
            'status' => $knobs['status'] = ctype_digit($value) && $value >= 200 && $value <= 599
                ? (int) $value
                : 200,
            'set-cookie' => $knobs['set-cookie'][] = $value,
            'text' => $knobs['text'] = $value,
            'die' => $knobs['die'] = $value !== '' && $value !== '0',
            default => null,
        };
    }

    return $knobs;
}

$served = 0;

HttpWorker::create()->serve(static function (Request $request) use (&$served): array {
    $knobs = knobs($request->rawQuery);
    if ($knobs['die']) {
        exit(1);
    }
    $headers = ['Set-Cookie' => $knobs['set-cookie'] ?: null];
    if ($knobs['text'] !== null) {
        ++$served;

        return [$knobs['status'], ['Content-Type' => 'text/plain'] + $headers, $knobs['text']];
    }
    $json = json_encode(
        dump($request, ++$served),
        JSON_THROW_ON_ERROR | JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE,
    );

    return [$knobs['status'], ['Content-Type' => 'application/json'] + $headers, $json . "\n"];
});
