<?php

namespace App\Http\Controllers;

use App\Support\WorkerStats;
use Illuminate\Http\Request;

class InfoController extends Controller
{
    /**
     * GET /api/info: who answered, and how long this worker has been up.
     * "requests" keeps counting up within one worker process, which shows
     * that the application is booted once and reused.
     */
    public function info(WorkerStats $stats)
    {
        return response()->json([
            'framework' => 'laravel',
            'version' => app()->version(),
            'php' => PHP_VERSION,
            'pid' => getmypid(),
            'booted_at' => $stats->bootedAt,
            'requests' => $stats->requests,
            'memory' => memory_get_usage(),
            'locale' => app()->getLocale(),
        ]);
    }

    /**
     * ANY /api/echo: what the application saw of the request.
     */
    public function echo(Request $request)
    {
        return response()->json([
            'method' => $request->method(),
            'url' => $request->fullUrl(),
            'path' => $request->path(),
            'query' => $request->query(),
            'input' => $request->all(),
            'cookies' => $request->cookies->all(),
            'content_type' => $request->header('Content-Type'),
            'body_length' => strlen($request->getContent()),
            'files' => array_map(
                static fn ($file) => [
                    'name' => $file->getClientOriginalName(),
                    'size' => $file->getSize(),
                ],
                array_filter($request->allFiles(), static fn ($f) => !is_array($f))
            ),
            'ip' => $request->ip(),
            'secure' => $request->isSecure(),
            'host' => $request->getHttpHost(),
        ]);
    }
}
