<?php

namespace App\Worker;

use App\Support\WorkerStats;
use Illuminate\Contracts\Debug\ExceptionHandler;
use Illuminate\Contracts\Foundation\Application;
use Illuminate\Contracts\Http\Kernel;
use Illuminate\Http\Request;
use Illuminate\Routing\Route;
use Symfony\Component\HttpFoundation\Response;
use Throwable;

/**
 * Runs requests through an application that was booted once.
 *
 *     $bridge = new LaravelBridge(require 'bootstrap/app.php');
 *     [$status, $headers, $body] = $bridge->run($request);
 *     // ... send the response ...
 *     $bridge->terminate();
 *
 * run() never throws for a failing request: an exception escaping the
 * kernel is reported and rendered by the application's exception handler
 * (a 500 page), and if even that fails a plain-text 500 is returned.
 * terminate() runs Laravel's terminable middleware and terminating
 * callbacks, then resets per-request state (RequestStateReset). Call it
 * after the response has been sent so that the client does not wait for
 * it; run() calls it itself if the previous request was not terminated.
 *
 * Anything the application echoes or prints is kept off stdout (which in a
 * worker is the protocol pipe) and copied to stderr.
 */
final class LaravelBridge
{
    private Kernel $kernel;

    private RequestStateReset $reset;

    private ?WorkerStats $stats;

    /** @var array{0: Request, 1: Response}|null */
    private ?array $pending = null;

    public function __construct(private Application $app)
    {
        $this->kernel = $app->make(Kernel::class);
        $this->stats = $app->bound(WorkerStats::class) ? $app->make(WorkerStats::class) : null;
        $this->reset = new RequestStateReset($app);
    }

    public function app(): Application
    {
        return $this->app;
    }

    /**
     * run() and terminate() in one go.
     *
     * @return array{0: int, 1: array<string, string[]>, 2: string}
     */
    public function handle(object $request): array
    {
        try {
            return $this->run($request);
        } finally {
            $this->terminate();
        }
    }

    /**
     * Handle a worker request (a TrioRunner\Http\Request or any object with
     * the same properties; see HttpMessages::toLaravelRequest()).
     *
     * @return array{0: int, 1: array<string, string[]>, 2: string}
     */
    public function run(object $in): array
    {
        $this->terminate();

        $level = ob_get_level();
        ob_start();
        try {
            try {
                $request = HttpMessages::toLaravelRequest($in);
            } catch (Throwable $e) {
                $request = Request::create('/', 'GET');
                $response = $this->renderThrowable($request, $e);

                return $this->finish($request, $response);
            }

            return $this->finish($request, $this->dispatch($request));
        } finally {
            $this->forwardOutput($level);
        }
    }

    /**
     * Handle an Illuminate request built elsewhere.
     *
     * @return array{0: int, 1: array<string, string[]>, 2: string}
     */
    public function runLaravel(Request $request): array
    {
        $this->terminate();

        $level = ob_get_level();
        ob_start();
        try {
            return $this->finish($request, $this->dispatch($request));
        } finally {
            $this->forwardOutput($level);
        }
    }

    /**
     * Finish the last request: terminable middleware, terminating callbacks,
     * then the per-request reset. A no-op if there is nothing to finish.
     */
    public function terminate(): void
    {
        if ($this->pending === null) {
            return;
        }
        [$request, $response] = $this->pending;
        $this->pending = null;

        $level = ob_get_level();
        ob_start();
        try {
            try {
                $this->kernel->terminate($request, $response);
            } catch (Throwable $e) {
                $this->report($e);
            }

            // Controllers are cached on their Route; under PHP-FPM each
            // request would construct its own.
            $route = $request->route();
            if ($route instanceof Route) {
                $route->flushController();
            }

            try {
                $this->reset->reset();
            } catch (Throwable $e) {
                $this->report($e);
            }
        } finally {
            $this->forwardOutput($level);
        }
    }

    private function dispatch(Request $request): Response
    {
        if ($this->stats !== null) {
            $this->stats->requests++;
        }

        try {
            // Kernel::handle() already turns exceptions from middleware and
            // routes into error responses; this catches the rest.
            return $this->kernel->handle($request);
        } catch (Throwable $e) {
            return $this->renderThrowable($request, $e);
        }
    }

    /**
     * @return array{0: int, 1: array<string, string[]>, 2: string}
     */
    private function finish(Request $request, Response $response): array
    {
        $this->pending = [$request, $response];

        try {
            return HttpMessages::fromResponse($response, $request);
        } catch (Throwable $e) {
            $response = $this->renderThrowable($request, $e);
            $this->pending = [$request, $response];

            try {
                return HttpMessages::fromResponse($response, $request);
            } catch (Throwable $e) {
                return self::plain500();
            }
        }
    }

    private function renderThrowable(Request $request, Throwable $e): Response
    {
        $this->report($e);

        try {
            return $this->app->make(ExceptionHandler::class)->render($request, $e);
        } catch (Throwable $e) {
            $this->report($e);

            return new Response('Internal Server Error', 500, ['Content-Type' => 'text/plain; charset=UTF-8']);
        }
    }

    private function report(Throwable $e): void
    {
        try {
            $this->app->make(ExceptionHandler::class)->report($e);
        } catch (Throwable $ignored) {
            @file_put_contents('php://stderr', sprintf(
                "[laravel worker %d] %s: %s\n", getmypid(), get_class($e), $e->getMessage()
            ));
        }
    }

    /**
     * @return array{0: int, 1: array<string, string[]>, 2: string}
     */
    private static function plain500(): array
    {
        return [500, ['Content-Type' => ['text/plain; charset=UTF-8']], 'Internal Server Error'];
    }

    /** Close our output buffers (and any the application left open). */
    private function forwardOutput(int $level): void
    {
        $echoed = '';
        while (ob_get_level() > $level) {
            $echoed = ob_get_clean() . $echoed;
        }
        if ($echoed !== '') {
            @file_put_contents('php://stderr', $echoed);
        }
    }
}
