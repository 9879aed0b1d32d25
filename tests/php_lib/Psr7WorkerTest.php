<?php

declare(strict_types=1);

namespace TrioRunner\Tests;

use Nyholm\Psr7\Factory\Psr17Factory;
use PHPUnit\Framework\TestCase;
use Psr\Http\Message\ResponseInterface;
use Psr\Http\Message\ServerRequestInterface;
use Psr\Http\Message\StreamInterface;
use Psr\Http\Message\UploadedFileInterface;
use Psr\Http\Server\RequestHandlerInterface;
use TrioRunner\Frame;
use TrioRunner\Http\Codec\ProtoCodec;
use TrioRunner\Http\Psr15;
use TrioRunner\Http\Psr7Worker;
use TrioRunner\Http\Request;
use TrioRunner\Log;
use TrioRunner\Tests\Support\Frames;
use TrioRunner\Tests\Support\Golden;
use TrioRunner\Tests\Support\MemoryRelay;
use TrioRunner\Worker;

/** PSR-7 / PSR-15 on Debian's nyholm/psr7. */
final class Psr7WorkerTest extends TestCase
{
    /** @var list<string> */
    private array $tempFiles = [];

    protected function setUp(): void
    {
        Log::$stream = fopen('php://memory', 'w+b');
    }

    protected function tearDown(): void
    {
        Log::$stream = null;
        array_map('unlink', array_filter($this->tempFiles, 'is_file'));
    }

    private static function psr7(MemoryRelay $relay): Psr7Worker
    {
        $f = new Psr17Factory();

        return new Psr7Worker(new Worker($relay, redirectOutput: false), $f, $f, $f);
    }

    public function testGoldenRequestBecomesServerRequest(): void
    {
        $relay = new MemoryRelay(Golden::frame('a_server_pid_handshake'), Golden::frame('g_http_request'));
        $psr = self::psr7($relay)->waitRequest();

        self::assertSame('GET', $psr->getMethod());
        self::assertSame('http://localhost/?a=1', (string) $psr->getUri());
        self::assertSame('1.1', $psr->getProtocolVersion());
        self::assertSame(['*/*'], $psr->getHeader('Accept'));
        self::assertSame('localhost', $psr->getHeaderLine('Host'), 'Host comes from the URI');
        self::assertSame(['a' => '1'], $psr->getQueryParams());
        $server = $psr->getServerParams();
        self::assertSame('127.0.0.1', $server['REMOTE_ADDR']);
        self::assertSame('GET', $server['REQUEST_METHOD']);
        self::assertSame('/?a=1', $server['REQUEST_URI']);
        self::assertSame('a=1', $server['QUERY_STRING']);
        self::assertSame('*/*', $server['HTTP_ACCEPT']);
        self::assertSame('localhost', $server['HTTP_HOST']);
        self::assertSame(80, $server['SERVER_PORT']);
        self::assertSame('HTTP/1.1', $server['SERVER_PROTOCOL']);
    }

    public function testFullRequestWithUploadsCookiesAndMultiValueHeaders(): void
    {
        $tmp = tempnam(sys_get_temp_dir(), 'upload');
        $this->tempFiles[] = $tmp;
        file_put_contents($tmp, 'file content');
        $file = static fn (string $name, string $mime, int $size = 12, int $error = 0, ?string $path = null) => [
            'name' => $name, 'mime' => $mime, 'size' => $size, 'error' => $error, 'tmpName' => $path ?? $tmp,
        ];
        $uploads = [
            'avatar' => $file('me.png', 'image/png'),
            'docs' => [
                $file('a.txt', 'text/plain'),
                $file('bad.exe', 'application/octet-stream', 0, UPLOAD_ERR_EXTENSION, ''),
            ],
            'nested' => ['deep' => $file('n.txt', 'text/plain')],
        ];
        $request = new Request(
            method: 'POST',
            uri: 'https://example.com:8443/upload?x=1&y[]=2',
            protocol: 'HTTP/2.0',
            remoteAddr: '2001:db8::1',
            headers: [
                'Content-Type' => ['multipart/form-data; boundary=xyz'],
                'Accept' => ['text/html', 'application/json'],
                'X-Forwarded-For' => ['1.1.1.1', '2.2.2.2'],
            ],
            cookies: ['sid' => 'abc 123'],
            rawQuery: 'x=1&y[]=2',
            body: '{"title":"Holiday","tags":["a","b"]}',
            parsed: true,
            uploads: $uploads,
            attributes: ['route' => 'upload'],
        );
        $psr = self::psr7(new MemoryRelay(Frames::request(new ProtoCodec(), $request)))->waitRequest();

        self::assertSame('POST', $psr->getMethod());
        self::assertSame('2', $psr->getProtocolVersion());
        self::assertSame(['text/html', 'application/json'], $psr->getHeader('accept'));
        self::assertSame('1.1.1.1, 2.2.2.2', $psr->getHeaderLine('X-Forwarded-For'));
        self::assertSame('example.com:8443', $psr->getHeaderLine('Host'));
        self::assertSame(['sid' => 'abc 123'], $psr->getCookieParams());
        self::assertSame(['x' => '1', 'y' => ['2']], $psr->getQueryParams());
        self::assertSame(['title' => 'Holiday', 'tags' => ['a', 'b']], $psr->getParsedBody());
        self::assertSame('', (string) $psr->getBody(), 'a parsed form has no raw body');
        self::assertSame('upload', $psr->getAttribute('route'));

        $files = $psr->getUploadedFiles();
        self::assertInstanceOf(UploadedFileInterface::class, $files['avatar']);
        self::assertSame('me.png', $files['avatar']->getClientFilename());
        self::assertSame('image/png', $files['avatar']->getClientMediaType());
        self::assertSame(12, $files['avatar']->getSize());
        self::assertSame(UPLOAD_ERR_OK, $files['avatar']->getError());
        self::assertSame('file content', (string) $files['avatar']->getStream());
        self::assertSame('a.txt', $files['docs'][0]->getClientFilename());
        self::assertSame(UPLOAD_ERR_EXTENSION, $files['docs'][1]->getError());
        self::assertSame('n.txt', $files['nested']['deep']->getClientFilename());

        $server = $psr->getServerParams();
        self::assertSame('on', $server['HTTPS']);
        self::assertSame(8443, $server['SERVER_PORT']);
        self::assertSame('multipart/form-data; boundary=xyz', $server['CONTENT_TYPE']);
        self::assertSame('1.1.1.1, 2.2.2.2', $server['HTTP_X_FORWARDED_FOR']);
        self::assertSame('2001:db8::1', $server['REMOTE_ADDR']);
        self::assertSame('/upload?x=1&y[]=2', $server['REQUEST_URI']);
    }

    public function testRawBodyIsTheStream(): void
    {
        $request = new Request(
            method: 'PUT',
            uri: 'http://h/doc',
            headers: ['Content-Type' => ['application/json']],
            body: '{"raw":true}',
        );
        $psr = self::psr7(new MemoryRelay(Frames::request(new ProtoCodec(), $request)))->waitRequest();

        self::assertSame('{"raw":true}', (string) $psr->getBody());
        self::assertNull($psr->getParsedBody());
    }

    public function testProtocolVersions(): void
    {
        self::assertSame('1.0', Psr7Worker::protocolVersion('HTTP/1.0'));
        self::assertSame('1.1', Psr7Worker::protocolVersion('HTTP/1.1'));
        self::assertSame('2', Psr7Worker::protocolVersion('HTTP/2.0'));
        self::assertSame('3', Psr7Worker::protocolVersion('HTTP/3.0'));
    }

    public function testRespondKeepsMultiValuedHeadersSeparate(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $psr7 = self::psr7($relay);
        $psr7->waitRequest();
        $f = new Psr17Factory();

        $psr7->respond($f->createResponse(201)
            ->withHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/'])
            ->withHeader('Content-Type', 'text/plain')
            ->withBody($f->createStream('made')));

        self::assertCount(1, $relay->sent);
        $frame = $relay->sent[0];
        self::assertSame(Frame::CODEC_PROTO, $frame->flags);
        self::assertSame(0, $frame->stream);
        [$context, $body] = Frames::split($frame);
        self::assertSame(
            [201, ['Set-Cookie' => ['a=1; Path=/', 'b=2; Path=/'], 'Content-Type' => ['text/plain']]],
            (new ProtoCodec())->decodeResponse($context),
        );
        self::assertSame('made', $body);
    }

    public function testGoldenResponseBytesThroughPsr7(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $psr7 = self::psr7($relay);
        $psr7->waitRequest();
        $f = new Psr17Factory();
        $psr7->respond($f->createResponse(200)
            ->withHeader('Content-Type', 'text/plain')
            ->withBody($f->createStream('hello')));

        self::assertSame(Golden::bytes('h_http_response'), $relay->sent[0]->encode());
    }

    public function testLargeBodyIsStreamedInChunks(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'));
        $psr7 = self::psr7($relay);
        $psr7->chunkSize = 4;
        $psr7->waitRequest();
        $f = new Psr17Factory();
        $stream = $f->createStream('0123456789');
        $stream->read(3); // a handler that left the stream mid-way
        $psr7->respond($f->createResponse(200)->withBody($stream));

        $bodies = array_map(static fn (Frame $fr) => Frames::split($fr)[1], $relay->sent);
        self::assertSame(['0123', '4567', '89', ''], $bodies);
        self::assertSame([Frame::STREAM, Frame::STREAM, Frame::STREAM, 0], Frames::streamBytes($relay->sent));
    }

    public function testBodyStreamFailureMidStreamEndsWithAnErrorFrame(): void
    {
        $relay = new MemoryRelay(Golden::frame('g_http_request'), Golden::frame('g_http_request'));
        $psr7 = self::psr7($relay);
        $f = new Psr17Factory();
        // Unknown size, so streamed; the second read fails (a lost file, say).
        // Untyped parameters fit psr/http-message 1 (Debian's) and 2.
        $failing = new class () implements StreamInterface {
            private int $reads = 0;

            public function read($length): string
            {
                if (++$this->reads > 1) {
                    throw new \RuntimeException('export file vanished');
                }

                return 'first rows';
            }

            public function getSize(): ?int { return null; }
            public function eof(): bool { return false; }
            public function isSeekable(): bool { return false; }
            public function isReadable(): bool { return true; }
            public function isWritable(): bool { return false; }
            public function __toString(): string { return ''; }
            public function close(): void {}
            public function detach() { return null; }
            public function tell(): int { return 0; }
            public function seek($offset, $whence = SEEK_SET): void {}
            public function rewind(): void {}
            public function write($string): int { return 0; }
            public function getContents(): string { return ''; }
            public function getMetadata($key = null) { return null; }
        };
        $calls = 0;

        $psr7->serve(static function () use ($f, $failing, &$calls): ResponseInterface {
            return ++$calls === 1
                ? $f->createResponse(200)->withBody($failing)
                : $f->createResponse(200)->withBody($f->createStream('next'));
        });

        self::assertCount(3, $relay->sent, 'chunk, error frame, next response');
        self::assertSame('first rows', Frames::split($relay->sent[0])[1]);
        self::assertSame(Frame::STREAM, $relay->sent[0]->stream);
        self::assertSame([Frame::ERROR, [], 'export file vanished', 0], Frames::fields($relay->sent[1]));
        self::assertSame('next', Frames::split($relay->sent[2])[1]);
    }

    public function testPsr15ServeReportsExceptionsAndGoesOn(): void
    {
        $relay = new MemoryRelay(
            Golden::frame('a_server_pid_handshake'),
            Golden::frame('g_http_request'),
            Golden::frame('g_http_request'),
            Golden::frame('c_server_stop'),
        );
        $handler = new class () implements RequestHandlerInterface {
            public int $calls = 0;

            public function handle(ServerRequestInterface $request): ResponseInterface
            {
                if (++$this->calls === 1) {
                    throw new \RuntimeException('first request fails');
                }
                $f = new Psr17Factory();

                return $f->createResponse(200)->withBody($f->createStream('second works'));
            }
        };

        Psr15::serve($handler, worker: new Worker($relay, redirectOutput: false));

        self::assertSame(2, $handler->calls);
        self::assertCount(3, $relay->sent, 'pid reply, error, response');
        self::assertSame(Frame::ERROR, $relay->sent[1]->flags);
        self::assertSame('first request fails', $relay->sent[1]->payload);
        self::assertSame('second works', Frames::split($relay->sent[2])[1]);
    }

    public function testPsr15InterfacesAreAvailable(): void
    {
        self::assertTrue(interface_exists(RequestHandlerInterface::class));
        self::assertTrue(interface_exists(\Psr\Http\Server\MiddlewareInterface::class));
    }
}
