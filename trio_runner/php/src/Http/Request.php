<?php

declare(strict_types=1);

namespace TrioRunner\Http;

use TrioRunner\Exception\ProtocolException;

/**
 * One HTTP request as the server described it (PROTOCOL.md 4.2): a plain
 * value, no PSR-7 needed.
 *
 * Header names are canonical (`Content-Type`, `X-Forwarded-For`); there is
 * no `Host` header, the host is in $uri. When $parsed is true the body is
 * not the raw request body but the JSON data tree of the form fields; read
 * it with parsedBody().
 */
final class Request
{
    /** @var array<array-key, mixed> $rawQuery parsed with parse_str() */
    public readonly array $query;

    /**
     * @param string $method e.g. GET
     * @param string $uri the absolute URL, e.g. http://localhost/path?a=1
     * @param string $protocol e.g. HTTP/1.1, HTTP/2.0
     * @param string $remoteAddr the client IP, without port
     * @param array<string, list<string>> $headers name => values
     * @param array<string, string> $cookies name => value (URL-decoded)
     * @param string $rawQuery the query string without `?`
     * @param string $body raw bytes, or the JSON data tree when $parsed
     * @param bool $parsed true when $body is the JSON tree of form fields
     * @param array<array-key, mixed>|null $uploads the uploaded-file tree
     *        (leaves: name, mime, size, error, tmpName), null for none
     * @param array<string, mixed> $attributes set by server middleware
     */
    public function __construct(
        public readonly string $method = 'GET',
        public readonly string $uri = '',
        public readonly string $protocol = 'HTTP/1.1',
        public readonly string $remoteAddr = '',
        public readonly array $headers = [],
        public readonly array $cookies = [],
        public readonly string $rawQuery = '',
        public readonly string $body = '',
        public readonly bool $parsed = false,
        public readonly ?array $uploads = null,
        public readonly array $attributes = [],
    ) {
        parse_str($rawQuery, $query);
        $this->query = $query;
    }

    /**
     * The body as decoded form fields when $parsed, else null. An empty
     * parsed body (a form without fields) gives [].
     *
     * @return array<array-key, mixed>|null
     *
     * @throws ProtocolException when a parsed body is not a JSON object
     */
    public function parsedBody(): ?array
    {
        if (!$this->parsed) {
            return null;
        }
        if ($this->body === '') {
            return [];
        }
        $tree = json_decode($this->body, true);
        if (!is_array($tree)) {
            throw new ProtocolException(
                'the request says its body is a parsed form (JSON) but it does not decode'
                . ' as a JSON object: ' . json_last_error_msg(),
            );
        }

        return $tree;
    }

    /** All values of a header (name matched case-insensitively). @return list<string> */
    public function headerValues(string $name): array
    {
        if (isset($this->headers[$name])) {
            return $this->headers[$name];
        }
        foreach ($this->headers as $key => $values) {
            if (strcasecmp((string) $key, $name) === 0) {
                return $values;
            }
        }

        return [];
    }

    /** A header's values joined with ", ", or null when it is absent. */
    public function header(string $name): ?string
    {
        $values = $this->headerValues($name);

        return $values === [] ? null : implode(', ', $values);
    }

    public function hasHeader(string $name): bool
    {
        return $this->headerValues($name) !== [];
    }

    /** The path of $uri, `/` when it has none. */
    public function path(): string
    {
        // Not parse_url(): it gives up on some URLs the server can send.
        preg_match('~^(?:[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*)?([^?#]*)~', $this->uri, $m);

        return ($m[1] ?? '') !== '' ? $m[1] : '/';
    }
}
