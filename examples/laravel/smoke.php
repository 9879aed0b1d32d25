<?php

/*
 * Smoke test of the Laravel side, without the server or the trio_runner PHP
 * library: boot the application once, then push a few hundred requests
 * through LaravelBridge in this one process, checking responses, that no
 * state leaks from one request to the next, and that memory stays flat.
 *
 *     php examples/laravel/smoke.php [-v] [requests=200]
 *
 * Exit status 0 when every check passed.
 */

declare(strict_types=1);

use App\Worker\LaravelBridge;
use Illuminate\Http\Request as LaravelRequest;
use Illuminate\Support\Facades\App;
use Illuminate\Support\Facades\Cookie;
use Illuminate\Support\Facades\Log;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\Facades\View;

$args = array_slice($argv, 1);
$verbose = in_array('-v', $args, true);
$args = array_values(array_filter($args, static fn ($a) => $a !== '-v'));
$total = (int) ($args[0] ?? 200);

$started = microtime(true);
$app = require __DIR__ . '/bootstrap/app.php';
$bootMs = (microtime(true) - $started) * 1000;
$bridge = new LaravelBridge($app);

/** Same public shape as TrioRunner\Http\Request. */
final class FakeRequest
{
    public readonly array $query;

    public function __construct(
        public readonly string $method,
        public readonly string $uri,
        public readonly array $headers = [],
        public readonly array $cookies = [],
        public readonly string $body = '',
        public readonly bool $parsed = false,
        public readonly ?array $uploads = null,
        public readonly string $protocol = 'HTTP/1.1',
        public readonly string $remoteAddr = '127.0.0.1',
        public readonly array $attributes = [],
        public readonly ?array $form = null,
    ) {
        $q = parse_url($uri, PHP_URL_QUERY);
        $this->rawQuery = is_string($q) ? $q : '';
        parse_str($this->rawQuery, $query);
        $this->query = $query;
    }

    public readonly string $rawQuery;

    public function parsedBody(): ?array
    {
        return $this->form;
    }
}

function req(string $method, string $path, array $headers = [], array $cookies = [], string $body = '', ...$more): FakeRequest
{
    $headers += ['Host' => ['127.0.0.1:8080'], 'User-Agent' => ['smoke']];

    return new FakeRequest($method, 'http://127.0.0.1:8080' . $path, $headers, $cookies, $body, ...$more);
}

$failures = 0;
function check(bool $ok, string $what): void
{
    global $failures, $verbose;
    if (!$ok) {
        $failures++;
        fwrite(STDOUT, "FAIL  {$what}\n");
    } elseif ($verbose) {
        fwrite(STDOUT, "ok    {$what}\n");
    }
}

function header_of(array $headers, string $name): array
{
    foreach ($headers as $k => $v) {
        if (strcasecmp($k, $name) === 0) {
            return $v;
        }
    }

    return [];
}

function cookies_from(array $headers): array
{
    $jar = [];
    foreach (header_of($headers, 'Set-Cookie') as $line) {
        [$pair] = explode(';', $line, 2);
        [$name, $value] = explode('=', $pair, 2);
        $jar[$name] = urldecode($value);
    }

    return $jar;
}

function show(int $status, array $headers, string $body, string $label): void
{
    $type = header_of($headers, 'Content-Type')[0] ?? '-';
    $first = substr(preg_replace('/\s+/', ' ', $body), 0, 60);
    fwrite(STDOUT, sprintf("%-22s %d  %-32s %s\n", $label, $status, $type, $first));
}

// Routes that deliberately leave state behind, to prove it is cleaned up.
// (Registered at runtime on the booted router; the real routes are in
// routes/*.php.)
Route::middleware('api')->get('/_smoke/dirty', function () {
    App::setLocale('fr');
    config(['app.name' => 'dirty', 'smoke.added' => true]);
    View::share('leaked', 'yes');
    Cookie::queue('leaked_cookie', 'yes', 10);  // api group: never sent
    Log::withContext(['leaked' => 'yes']);
    app()->terminating(function () {
        $GLOBALS['smoke_terminating_runs'] = ($GLOBALS['smoke_terminating_runs'] ?? 0) + 1;
    });

    return response()->json(['dirty' => true]);
});
Route::middleware('web')->get('/_smoke/session-put', function (LaravelRequest $request) {
    $request->session()->put('secret', 'from-' . $request->query('who'));

    return response()->json(['stored' => true]);
});
Route::middleware('web')->get('/_smoke/check', function (LaravelRequest $request) {
    $logContext = (function () {
        return $this->context;
    })->call(Log::driver());

    return response()->json([
        'locale' => app()->getLocale(),
        'name' => config('app.name'),
        'added' => config('smoke.added'),
        'shared' => View::shared('leaked'),
        'secret' => $request->session()->get('secret'),
        'log_context' => $logContext,
    ]);
});
Route::middleware('web')->get('/_smoke/echo-and-dump', function () {
    echo "echoed by a route\n";
    dump('dumped by a route');

    return 'ok';
});
app('router')->getRoutes()->refreshNameLookups();

fwrite(STDOUT, sprintf("booted Laravel %s in %.1f ms (pid %d)\n", $app->version(), $bootMs, getmypid()));

// ---------------------------------------------------------------- one pass
[$s, $h, $b] = $bridge->handle(req('GET', '/'));
show($s, $h, $b, 'GET /');
check($s === 200 && str_contains($b, 'Laravel 8.') && str_contains($b, '<html'), 'GET / renders the home view');

[$s, $h, $b] = $bridge->handle(req('GET', '/api/info'));
show($s, $h, $b, 'GET /api/info');
$info = json_decode($b, true);
check($s === 200 && str_starts_with(header_of($h, 'Content-Type')[0] ?? '', 'application/json'), '/api/info is JSON');
check(($info['framework'] ?? null) === 'laravel' && ($info['version'] ?? null) === $app->version()
    && ($info['pid'] ?? null) === getmypid(), '/api/info content');

[$s, $h, $b] = $bridge->handle(req('GET', '/users/5'));
show($s, $h, $b, 'GET /users/5');
check($s === 200 && (json_decode($b, true)['id'] ?? null) === 5, '/users/5 sees its parameter');

[$s, $h, $b] = $bridge->handle(req('GET', '/nope'));
show($s, $h, $b, 'GET /nope');
check($s === 404 && str_contains($b, 'Not Found') && str_contains($b, '<html'), '/nope is the framework 404 page');

[$s, $h, $b] = $bridge->handle(req('GET', '/users/abc'));
check($s === 404, '/users/abc (constraint fails) is 404');

[$s, $h, $b] = $bridge->handle(req('GET', '/nope', ['Accept' => ['application/json']]));
check($s === 404 && is_array(json_decode($b, true)), '404 as JSON for Accept: application/json');

[$s, $h, $b] = $bridge->handle(req('GET', '/boom'));
show($s, $h, $b, 'GET /boom');
check($s === 500 && str_contains($b, 'Server Error') && !str_contains($b, 'Deliberate failure'),
    '/boom is the 500 page, without details (APP_DEBUG off)');

[$s, $h, $b] = $bridge->handle(req('HEAD', '/'));
check($s === 200 && $b === '', 'HEAD / has no body');

[$s, $h, $b] = $bridge->handle(req('POST', '/api/echo?x=1', ['Content-Type' => ['application/json']], [], '{"a":1,"b":"two"}'));
$e = json_decode($b, true);
check($s === 200 && $e['input'] == ['x' => '1', 'a' => 1, 'b' => 'two'], 'POST JSON body reaches $request->all()');

[$s, $h, $b] = $bridge->handle(req('POST', '/api/echo', ['Content-Type' => ['application/x-www-form-urlencoded']], [], 'name=%20Ann%20&empty='));
$e = json_decode($b, true);
check($s === 200 && $e['input'] === ['name' => 'Ann', 'empty' => null], 'POST urlencoded body (TrimStrings, ConvertEmptyStringsToNull)');

[$s, $h, $b] = $bridge->handle(req('POST', '/api/echo', ['Content-Type' => ['multipart/form-data; boundary=x']], [], '', true, null, 'HTTP/1.1', '127.0.0.1', [], ['field' => 'v']));
$e = json_decode($b, true);
check($s === 200 && $e['input'] === ['field' => 'v'], 'pre-parsed form body (parsed=true) reaches $request->all()');

$tmp = tempnam(sys_get_temp_dir(), 'smoke');
file_put_contents($tmp, 'hello');
[$s, $h, $b] = $bridge->handle(req('POST', '/api/echo', ['Content-Type' => ['multipart/form-data; boundary=x']], [], '', true,
    ['doc' => ['name' => 'hello.txt', 'mime' => 'text/plain', 'size' => 5, 'error' => 0, 'tmpName' => $tmp]],
    'HTTP/1.1', '127.0.0.1', [], []));
$e = json_decode($b, true);
check($s === 200 && ($e['files']['doc'] ?? null) === ['name' => 'hello.txt', 'size' => 5], 'uploaded file reaches $request->file()');
@unlink($tmp);

[$s, $h, $b] = $bridge->handle(req('GET', '/api/echo', ['X-Forwarded-For' => ['1.2.3.4']], ['a' => 'b'], '', false, null, 'HTTP/1.1', '10.0.0.7:5555'));
$e = json_decode($b, true);
check($e['input'] === [] && $e['query'] === [] && $e['cookies'] === ['a' => 'b'] && $e['ip'] === '10.0.0.7'
    && $e['host'] === '127.0.0.1:8080' && $e['url'] === 'http://127.0.0.1:8080/api/echo',
    'next request sees none of the previous input; remote address and host');

[$s, $h, $b] = $bridge->handle(new FakeRequest('GET', 'https://example.test/api/echo?y=2', ['Host' => ['example.test']]));
$e = json_decode($b, true);
check($e['secure'] === true && $e['url'] === 'https://example.test/api/echo?y=2', 'https URL');

// Sessions: two clients, no crosstalk. Alice keeps her cookies like a
// browser would (with SESSION_DRIVER=cookie the session *is* the cookie).
$persistent = config('session.driver') !== 'array';
[$s, $h, $b] = $bridge->handle(req('GET', '/counter'));
$alice = cookies_from($h);
check(json_decode($b, true) === ['count' => 1] && isset($alice['laravel_session']), 'first /counter visit: 1, session cookie set');
[$s, $h, $b] = $bridge->handle(req('GET', '/counter', [], $alice));
$alice = cookies_from($h) + $alice;
check(!$persistent || json_decode($b, true) === ['count' => 2], 'same client: 2');
[$s, $h, $b] = $bridge->handle(req('GET', '/counter'));
check(json_decode($b, true) === ['count' => 1], 'new client without cookie: 1 (no session leak)');
[$s, $h, $b] = $bridge->handle(req('GET', '/_smoke/session-put?who=alice', [], $alice));
$alice = cookies_from($h) + $alice;
[$s, $h, $b] = $bridge->handle(req('GET', '/_smoke/check'));
$c = json_decode($b, true);
check(is_array($c) && array_key_exists('secret', $c) && $c['secret'] === null, 'cookie-less client does not see the previous session');
[$s, $h, $b] = $bridge->handle(req('GET', '/_smoke/check', [], $alice));
check(!$persistent || (json_decode($b, true)['secret'] ?? null) === 'from-alice', 'alice still sees her session');

// Global state left behind by a request.
[$s, $h, $b] = $bridge->handle(req('GET', '/_smoke/dirty'));
check($s === 200 && $GLOBALS['smoke_terminating_runs'] === 1, 'dirty route ran, terminating callback ran once');
[$s, $h, $b] = $bridge->handle(req('GET', '/_smoke/check'));
$c = json_decode($b, true);
check($c['locale'] === 'en', 'locale reset');
check($c['name'] !== 'dirty' && $c['added'] === null, 'config reset');
check($c['shared'] === null, 'View::share reset');
check($c['log_context'] === [], 'log context reset');
check(!isset(cookies_from($h)['leaked_cookie']), 'queued cookie not sent to the next client');
check($GLOBALS['smoke_terminating_runs'] === 1, 'terminating callback did not run again');

// Output from the application goes to stderr, not into the response.
[$s, $h, $b] = $bridge->handle(req('GET', '/_smoke/echo-and-dump'));
check($s === 200 && $b === 'ok', 'echo/dump kept out of the response');

// ---------------------------------------------------------------- loop
$paths = ['/', '/api/info', '/users/%d?q=%d', '/nope'];
$memory = array_fill(1, $total, 0);   // preallocated: no growth of our own
$lastRequests = null;
$gcCollected = 0;
for ($i = 1; $i <= $total; $i++) {
    $path = sprintf($paths[$i % 4], $i, $i);
    [$s, $h, $b] = $bridge->handle(req('GET', $path));
    switch ($i % 4) {
        case 0:
            $ok = $s === 200 && str_contains($b, 'Laravel');
            break;
        case 1:
            $d = json_decode($b, true);
            $ok = $s === 200 && $d['pid'] === getmypid() && ($lastRequests === null || $d['requests'] === $lastRequests + 4);
            $lastRequests = $d['requests'];
            break;
        case 2:
            $ok = $s === 200 && json_decode($b, true) === ['id' => $i, 'name' => "user-{$i}", 'query' => ['q' => (string) $i]];
            break;
        default:
            $ok = $s === 404 && str_contains($b, 'Not Found');
    }
    if (!$ok) {
        check(false, "loop request {$i}: {$path} -> {$s}");
    }
    if ($i <= 4 || $verbose) {
        show($s, $h, $b, "#{$i} GET " . $path);
    }
    $gcCollected += gc_collect_cycles();   // measure live memory, not garbage
    $memory[$i] = memory_get_usage();
}

$at = static fn (int $i) => $memory[min($i, $total)];
fwrite(STDOUT, sprintf(
    "memory over %d requests: #1 %.0f KiB, #%d %.0f KiB, #%d %.0f KiB (peak %.1f MiB, %d cycles collected)\n",
    $total, $at(1) / 1024, intdiv($total, 2), $at(intdiv($total, 2)) / 1024, $total, $at($total) / 1024,
    memory_get_peak_usage() / 1048576, $gcCollected
));
if ($total >= 100) {
    $growth = $at($total) - $at(intdiv($total, 2));
    check($growth < 64 * 1024, sprintf('memory flat over the second half (%+d bytes)', $growth));
}

fwrite(STDOUT, sprintf("%d requests in %.2f s, %s\n", $total + 30, microtime(true) - $started,
    $failures === 0 ? 'all checks passed' : "{$failures} FAILED"));
exit($failures === 0 ? 0 : 1);
