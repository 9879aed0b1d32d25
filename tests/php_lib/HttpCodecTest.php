<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use PHPUnit\Framework\TestCase;
use TrioRunner\Exception\ProtocolException;
use TrioRunner\Http\Codec\JsonCodec;
use TrioRunner\Http\Codec\ProtoCodec;
use TrioRunner\Http\Request;
use TrioRunner\Protobuf\WireReader;
use TrioRunner\Protobuf\WireWriter;
use TrioRunner\Tests\Support\Golden;

/** The http.v1 protobuf and legacy JSON contexts (PROTOCOL.md 4.2, 4.6). */
final class HttpCodecTest extends TestCase
{
    public function testDecodesGoldenProtobufRequest(): void
    {
        $request = (new ProtoCodec())->decodeRequest(Golden::context('g_http_request'));

        self::assertSame('127.0.0.1', $request->remoteAddr);
        self::assertSame('HTTP/1.1', $request->protocol);
        self::assertSame('GET', $request->method);
        self::assertSame('http://localhost/?a=1', $request->uri);
        self::assertSame(['Accept' => ['*/*']], $request->headers);
        self::assertSame('a=1', $request->rawQuery);
        self::assertSame(['a' => '1'], $request->query);
        self::assertSame([], $request->cookies);
        self::assertFalse($request->parsed);
        self::assertNull($request->uploads);
        self::assertSame([], $request->attributes);
        self::assertSame('', $request->body);
    }

    public function testEncodesGoldenProtobufResponse(): void
    {
        $context = (new ProtoCodec())->encodeResponse(200, ['Content-Type' => ['text/plain']]);

        self::assertSame(Golden::context('h_http_response'), $context);
    }

    public function testEncodesGoldenProtobufRequest(): void
    {
        $codec = new ProtoCodec();
        $request = $codec->decodeRequest(Golden::context('g_http_request'));

        self::assertSame(Golden::context('g_http_request'), $codec->encodeRequest($request));
    }

    public function testProtobufRequestRoundTripsEveryField(): void
    {
        $uploads = ['file' => [
            'name' => 'a.txt', 'mime' => 'text/plain', 'size' => 3, 'error' => 0, 'tmpName' => '/tmp/x',
        ]];
        $request = new Request(
            method: 'POST',
            uri: 'https://example.com:8443/p?x[]=1&x[]=2',
            protocol: 'HTTP/2.0',
            remoteAddr: '::1',
            headers: ['Accept' => ['a', 'b'], 'X-Bin' => ["\xff\x00"]],
            cookies: ['sid' => 'abc'],
            rawQuery: 'x[]=1&x[]=2',
            body: 'ignored',
            parsed: true,
            uploads: $uploads,
            attributes: ['route' => 'home'],
        );
        $codec = new ProtoCodec();
        $back = $codec->decodeRequest($codec->encodeRequest($request), 'b');

        self::assertSame('POST', $back->method);
        self::assertSame($request->uri, $back->uri);
        self::assertSame('HTTP/2.0', $back->protocol);
        self::assertSame('::1', $back->remoteAddr);
        self::assertSame($request->headers, $back->headers);
        self::assertSame(['sid' => 'abc'], $back->cookies);
        self::assertSame(['x' => ['1', '2']], $back->query);
        self::assertTrue($back->parsed);
        self::assertSame($uploads, $back->uploads);
        self::assertSame(['route' => 'home'], $back->attributes);
        self::assertSame('b', $back->body);
    }

    public function testUnknownFieldsOfEveryWireTypeAreSkipped(): void
    {
        $known = Golden::context('g_http_request');
        $unknown = WireWriter::encodeVarint((20 << 3) | 0) . WireWriter::encodeVarint(-5)
            . WireWriter::encodeVarint((21 << 3) | 1) . str_repeat("\x01", 8)
            . WireWriter::encodeVarint((22 << 3) | 2) . "\x03abc"
            . WireWriter::encodeVarint((23 << 3) | 5) . str_repeat("\x02", 4);
        // An unknown field inside a header map entry and inside a HeaderValue too.
        $entry = (new WireWriter())
            ->bytes(1, 'X-A')
            ->varint(9, 1)
            ->bytes(2, (new WireWriter())->bytes(1, 'v')->varint(7, 300)->toString())
            ->toString();
        $context = $unknown . $known . $unknown . (new WireWriter())->bytes(5, $entry)->toString();

        $request = (new ProtoCodec())->decodeRequest($context);

        self::assertSame('GET', $request->method);
        self::assertSame(['Accept' => ['*/*'], 'X-A' => ['v']], $request->headers);
        self::assertSame('a=1', $request->rawQuery);
    }

    public function testGroupWireTypeIsRejectedClearly(): void
    {
        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('unsupported wire type 3 in field 30');
        (new ProtoCodec())->decodeRequest(WireWriter::encodeVarint((30 << 3) | 3));
    }

    public function testTruncatedProtobufIsRejectedClearly(): void
    {
        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('malformed http.v1.Request context');
        (new ProtoCodec())->decodeRequest(substr(Golden::context('g_http_request'), 0, 20));
    }

    public function testCookiesJoinAndAttributesKeepFirstValue(): void
    {
        $map = static fn (int $field, string $key, array $values): string => (new WireWriter())->bytes(
            $field,
            (new WireWriter())->bytes(1, $key)->bytes(2, array_reduce(
                $values,
                static fn (string $acc, string $v): string => $acc . (new WireWriter())->bytes(1, $v)->toString(),
                '',
            ))->toString(),
        )->toString();
        $context = $map(6, 'c', ['1', '2']) . $map(10, 'attr', ['first', 'second']);

        $request = (new ProtoCodec())->decodeRequest($context);

        self::assertSame(['c' => '1,2'], $request->cookies);
        self::assertSame(['attr' => 'first'], $request->attributes);
    }

    public function testVarintsRoundTrip(): void
    {
        foreach ([0, 1, 127, 128, 300, 2 ** 31, PHP_INT_MAX, -1, PHP_INT_MIN] as $value) {
            $reader = new WireReader((new WireWriter())->varint(1, $value)->toString());
            self::assertTrue($reader->next());
            self::assertSame($value, $reader->varint(), "varint $value");
        }
        self::assertSame(10, strlen(WireWriter::encodeVarint(-1)));
    }

    public function testProtobufResponseWithMultiValuedHeaders(): void
    {
        $codec = new ProtoCodec();
        $headers = ['Set-Cookie' => ['a=1', 'b=2'], 'X-Empty' => []];

        self::assertSame([404, $headers], $codec->decodeResponse($codec->encodeResponse(404, $headers)));
    }

    public function testDecodesJsonRequest(): void
    {
        $context = json_encode([
            'remoteAddr' => '10.0.0.1',
            'protocol' => 'HTTP/1.0',
            'method' => 'POST',
            'uri' => 'http://h/form?q=1',
            'headers' => ['Content-Type' => ['application/x-www-form-urlencoded']],
            'cookies' => ['theme' => 'dark'],
            'rawQuery' => 'q=1',
            'parsed' => true,
            'uploads' => null,
            'attributes' => ['k' => ['v']],
        ]);

        $request = (new JsonCodec())->decodeRequest($context, '{"name":"Ann"}');

        self::assertSame('10.0.0.1', $request->remoteAddr);
        self::assertSame('HTTP/1.0', $request->protocol);
        self::assertSame('POST', $request->method);
        self::assertSame('http://h/form?q=1', $request->uri);
        self::assertSame(['Content-Type' => ['application/x-www-form-urlencoded']], $request->headers);
        self::assertSame(['theme' => 'dark'], $request->cookies);
        self::assertSame(['q' => '1'], $request->query);
        self::assertTrue($request->parsed);
        self::assertSame(['name' => 'Ann'], $request->parsedBody());
        self::assertNull($request->uploads);
        self::assertSame(['k' => ['v']], $request->attributes);
    }

    public function testEncodesJsonResponse(): void
    {
        $codec = new JsonCodec();

        self::assertSame('{"status":204,"headers":{}}', $codec->encodeResponse(204, []));
        self::assertSame(
            '{"status":200,"headers":{"Content-Type":["text/plain"],"X":["1","2"]}}',
            $codec->encodeResponse(200, ['Content-Type' => ['text/plain'], 'X' => ['1', '2']]),
        );
    }

    public function testJsonRequestRoundTrips(): void
    {
        $codec = new JsonCodec();
        $request = new Request(method: 'GET', uri: 'http://h/', headers: ['A' => ['b']], uploads: ['f' => []]);

        $back = $codec->decodeRequest($codec->encodeRequest($request));

        self::assertSame(['A' => ['b']], $back->headers);
        self::assertSame(['f' => []], $back->uploads);
    }

    public function testMalformedJsonContextIsRejected(): void
    {
        $this->expectException(ProtocolException::class);
        $this->expectExceptionMessage('not a JSON object');
        (new JsonCodec())->decodeRequest('[1,2]');
    }

    public function testRequestHelpers(): void
    {
        $request = new Request(
            uri: 'http://h:8080/a/b?x=1',
            headers: ['X-Multi' => ['1', '2'], 'Content-Type' => ['text/plain']],
            body: '',
            parsed: true,
        );

        self::assertSame('/a/b', $request->path());
        self::assertSame('1, 2', $request->header('x-multi'));
        self::assertSame(['1', '2'], $request->headerValues('X-MULTI'));
        self::assertNull($request->header('Missing'));
        self::assertTrue($request->hasHeader('content-type'));
        self::assertSame([], $request->parsedBody(), 'an empty parsed body is an empty form');
        self::assertNull((new Request(body: '{}'))->parsedBody(), 'not parsed: null');
        self::assertSame('/', (new Request(uri: 'http://h'))->path());
    }
}
