<?php

namespace App\Worker;

use Illuminate\Http\Request;
use Symfony\Component\HttpFoundation\File\UploadedFile;
use Symfony\Component\HttpFoundation\Request as SymfonyRequest;
use Symfony\Component\HttpFoundation\Response;

/**
 * Conversions between the worker's plain request/response values and
 * Laravel's (Symfony HttpFoundation) objects.
 *
 * The incoming request is read by duck typing: any object with the public
 * properties of TrioRunner\Http\Request (method, uri, protocol, remoteAddr,
 * headers, cookies, rawQuery, query, body, parsed, uploads, attributes) and
 * a parsedBody() method will do, so this class does not need the trio_runner
 * PHP library to be loaded.
 */
final class HttpMessages
{
    /**
     * Build an Illuminate request the way PHP's SAPI would have filled the
     * superglobals, without touching the real superglobals.
     */
    public static function toLaravelRequest(object $in): Request
    {
        $method = strtoupper((string) $in->method);
        [$scheme, $authority, $path, $uriQuery] = self::splitUri((string) $in->uri);
        $authority = (string) preg_replace('~^[^@]*@~', '', $authority);   // no user info
        [$host, $port] = self::splitAuthority($authority);
        $port ??= $scheme === 'https' ? 443 : 80;
        $rawQuery = (string) ($in->rawQuery ?? $uriQuery);

        $now = microtime(true);
        $server = [
            'SERVER_SOFTWARE' => 'trio_runner',
            'SERVER_PROTOCOL' => (string) ($in->protocol ?: 'HTTP/1.1'),
            'SERVER_NAME' => $host,
            'SERVER_PORT' => (string) $port,
            'REQUEST_METHOD' => $method,
            'REQUEST_URI' => $path . ($rawQuery !== '' ? '?' . $rawQuery : ''),
            'QUERY_STRING' => $rawQuery,
            'REMOTE_ADDR' => self::ipOnly((string) $in->remoteAddr),
            'REQUEST_TIME' => (int) $now,
            'REQUEST_TIME_FLOAT' => $now,
            // No front controller in the URL: the base URL is empty, exactly
            // as with the usual "rewrite everything to index.php" setup.
            'SCRIPT_NAME' => '',
            'SCRIPT_FILENAME' => '',
            'PHP_SELF' => '',
        ];
        if ($scheme === 'https') {
            $server['HTTPS'] = 'on';
        }

        foreach ($in->headers as $name => $values) {
            $values = is_array($values) ? $values : [(string) $values];
            $key = strtoupper(str_replace('-', '_', (string) $name));
            $value = implode($key === 'COOKIE' ? '; ' : ', ', $values);
            if ($key === 'CONTENT_TYPE' || $key === 'CONTENT_LENGTH') {
                $server[$key] = $value;
            } else {
                $server['HTTP_' . $key] = $value;
            }
        }
        if (!isset($server['HTTP_HOST'])) {
            // trio_runner sends no Host header: the authority of the URI is it.
            $server['HTTP_HOST'] = $authority !== '' ? $authority : $host;
        }

        $body = (string) $in->body;
        $post = [];
        $content = $body;
        if ($in->parsed) {
            // The server already decoded a form/multipart body; the raw bytes
            // are not available (as with PHP's own multipart handling).
            $post = $in->parsedBody() ?? [];
            $content = '';
        } elseif ($body !== '' && self::isUrlEncodedForm($server['CONTENT_TYPE'] ?? '')) {
            parse_str($body, $post);
        }
        if (!isset($server['CONTENT_LENGTH']) && $body !== '') {
            $server['CONTENT_LENGTH'] = (string) strlen($body);
        }

        $request = new Request(
            is_array($in->query) ? $in->query : [],
            $post,
            is_array($in->attributes ?? null) ? $in->attributes : [],
            is_array($in->cookies) ? $in->cookies : [],
            self::uploadedFiles(is_array($in->uploads ?? null) ? $in->uploads : []),
            $server,
            $content
        );

        return $request;
    }

    /**
     * Flatten a Symfony response into [status, headers, body]. Headers map a
     * name to a list of values; every cookie is its own Set-Cookie value.
     *
     * @return array{0: int, 1: array<string, string[]>, 2: string}
     */
    public static function fromResponse(Response $response, SymfonyRequest $request): array
    {
        // Content-Type charset, HEAD and 204/304 bodies, protocol version.
        // The cookies are taken off the header bag while prepare() runs:
        // ResponseHeaderBag::has() renders every cookie to a string, and
        // prepare() calls it three times, so with the three cookies of a
        // web response (XSRF-TOKEN, session, cookie session data) that was
        // most of the cost of this method (18 of 29 us). prepare() uses
        // cookies only to make them secure on an HTTPS request; that step
        // is done here, on the same objects.
        $bag = $response->headers;
        $cookieObjects = $bag->getCookies();
        foreach ($cookieObjects as $cookie) {
            $bag->removeCookie($cookie->getName(), $cookie->getPath(), $cookie->getDomain());
        }
        try {
            $response->prepare($request);
            $headers = $bag->allPreserveCase();
        } finally {
            // Put back, in their order: terminable middleware sees the
            // response as the application left it.
            foreach ($cookieObjects as $cookie) {
                $bag->setCookie($cookie);
            }
        }
        $secure = $cookieObjects !== [] && $request->isSecure();
        $cookies = [];
        foreach ($cookieObjects as $cookie) {
            if ($secure) {
                $cookie->setSecureDefault(true);
            }
            $cookies[] = (string) $cookie;
        }
        if ($cookies !== []) {
            $headers['Set-Cookie'] = $cookies;
        }

        $body = $response->getContent();
        if ($body === false) {
            // Streamed and file responses write their body out instead of
            // holding it; collect what they write.
            ob_start();
            try {
                $response->sendContent();
            } finally {
                $body = (string) ob_get_clean();
            }
        }

        $list = [];
        foreach ($headers as $name => $values) {
            $list[(string) $name] = array_map('strval', (array) $values);
        }

        return [$response->getStatusCode(), $list, (string) $body];
    }

    /**
     * scheme, authority, path and query of an absolute (or origin-form) URL.
     * A regex rather than parse_url(), which rejects some valid request
     * targets (e.g. "//x" paths or ":" in the path).
     *
     * @return array{0: string, 1: string, 2: string, 3: string}
     */
    private static function splitUri(string $uri): array
    {
        preg_match('~^(?:([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*))?([^?#]*)(?:\?([^#]*))?~', $uri, $m);
        $path = ($m[3] ?? '') === '' ? '/' : $m[3];

        return [strtolower(($m[1] ?? '') !== '' ? $m[1] : 'http'), $m[2] ?? '', $path, $m[4] ?? ''];
    }

    /**
     * host and port of "host", "host:port", "[v6]:port".
     *
     * @return array{0: string, 1: int|null}
     */
    private static function splitAuthority(string $authority): array
    {
        if (!preg_match('~^(\[[^\]]*\]|[^:]*)(?::(\d+))?$~', $authority, $m) || $m[1] === '') {
            return ['localhost', null];
        }

        return [$m[1], isset($m[2]) ? (int) $m[2] : null];
    }

    private static function ipOnly(string $addr): string
    {
        if ($addr === '') {
            return '127.0.0.1';
        }
        if ($addr[0] === '[') {                       // "[::1]:5000"
            $end = strpos($addr, ']');

            return $end === false ? $addr : substr($addr, 1, $end - 1);
        }
        if (substr_count($addr, ':') === 1) {         // "10.0.0.1:5000"
            return substr($addr, 0, strpos($addr, ':'));
        }

        return $addr;                                  // "10.0.0.1", "::1"
    }

    private static function isUrlEncodedForm(string $contentType): bool
    {
        return strncasecmp(ltrim($contentType), 'application/x-www-form-urlencoded', 33) === 0;
    }

    /**
     * The server's upload tree mirrors the form field names; its leaves
     * describe one file each: name, mime, size, error, tmpName.
     *
     * @param array<mixed> $tree
     * @return array<mixed>
     */
    private static function uploadedFiles(array $tree): array
    {
        $files = [];
        foreach ($tree as $field => $node) {
            if (!is_array($node)) {
                continue;
            }
            if (array_key_exists('tmpName', $node) || array_key_exists('error', $node)) {
                $error = (int) ($node['error'] ?? UPLOAD_ERR_NO_FILE);
                $tmp = (string) ($node['tmpName'] ?? '');
                if ($error === UPLOAD_ERR_OK && ($tmp === '' || !is_file($tmp))) {
                    $error = UPLOAD_ERR_NO_FILE;
                }
                if ($error === UPLOAD_ERR_NO_FILE) {
                    continue;               // an empty file input: no entry
                }
                // test mode: the file was not received by PHP's SAPI, so
                // is_uploaded_file()/move_uploaded_file() would refuse it.
                $files[$field] = new UploadedFile(
                    $tmp,
                    (string) ($node['name'] ?? ''),
                    isset($node['mime']) ? (string) $node['mime'] : null,
                    $error,
                    true
                );
            } else {
                $files[$field] = self::uploadedFiles($node);
            }
        }

        return $files;
    }
}
