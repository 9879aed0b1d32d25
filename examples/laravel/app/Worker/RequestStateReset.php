<?php

namespace App\Worker;

use Closure;
use Illuminate\Contracts\Foundation\Application;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Facade;

/**
 * Puts the long-lived application back the way it was after boot, once a
 * request has been handled and terminated.
 *
 * Under PHP-FPM every request starts from a fresh process state; in a worker
 * the container and its singletons survive, so whatever a request leaves in
 * them would be seen by the next one. This class takes a snapshot right
 * after boot and undoes the per-request changes of the services the example
 * uses (and of a few common ones it does not, in case you add them).
 *
 * It cannot know about state your own code keeps in singletons or static
 * properties: reset that in reset() too (or avoid it).
 */
final class RequestStateReset
{
    /** @var array<string, mixed> */
    private array $config;

    private string $locale;

    private ?string $fallbackLocale = null;

    /** @var array<string, mixed> */
    private array $viewShared = [];

    /** @var array<int, callable|string> */
    private array $terminating;

    private Request $idleRequest;

    public function __construct(private Application $app)
    {
        $this->config = $app['config']->all();
        $this->locale = $app->getLocale();
        if ($app->resolved('translator')) {
            $this->fallbackLocale = $app['translator']->getFallback();
        }
        if ($app->resolved('view')) {
            $this->viewShared = $app['view']->getShared();
        }
        $this->terminating = self::peek($app, fn () => $this->terminatingCallbacks);

        $this->idleRequest = $app->bound('request')
            ? $app['request']
            : Request::create((string) ($this->config['app']['url'] ?? 'http://localhost'));
    }

    public function reset(): void
    {
        $app = $this->app;

        // Instances registered with $app->scoped() live for one request.
        $app->forgetScopedInstances();

        // Sessions: the manager caches its Store, and Store::start() merges
        // what it loads into the attributes it already holds. Drop it; the
        // next request's StartSession gets a fresh, empty one.
        if ($app->resolved('session')) {
            $session = $app['session'];
            foreach ($session->getDrivers() as $store) {
                // The cookie handler points back at the request, which
                // points at the store: cut the cycle so that refcounting,
                // not the cycle collector, frees the old request.
                if ($store->handlerNeedsRequest()) {
                    $store->setRequestOnHandler($this->idleRequest);
                }
            }
            $session->forgetDrivers();
            $app->forgetInstance('session.store');
            Facade::clearResolvedInstance('session.store');
            // The redirector (also held by the response factory) keeps a
            // reference to the store for flashing; point it at the new one.
            if ($app->resolved('redirect')) {
                $app['redirect']->setSession($app['session.store']);
            }
        }

        // Cookies queued with Cookie::queue() that no response picked up.
        if ($app->resolved('cookie')) {
            $app['cookie']->flushQueuedCookies();
        }

        // Authenticated users are cached on the guards.
        if ($app->resolved('auth')) {
            $app['auth']->forgetGuards();
            $app->forgetInstance('auth.driver');
        }

        // config([...]) during a request. Comparing against the very same
        // array is free while nothing changed (copy-on-write identity).
        $config = $app['config'];
        $configChanged = $config->all() !== $this->config;

        // App::setLocale() during a request. It writes app.locale, so an
        // unchanged config means an unchanged locale: getLocale() (a
        // container and a config lookup) is only asked when it changed.
        if ($configChanged && $app->getLocale() !== $this->locale) {
            $app->setLocale($this->locale);
        }
        if ($this->fallbackLocale !== null && $app->resolved('translator')
            && $app['translator']->getFallback() !== $this->fallbackLocale) {
            $app['translator']->setFallback($this->fallbackLocale);
        }

        // setLocale() above changed the config too; the snapshot puts it back.
        if ($configChanged) {
            $snapshot = $this->config;
            self::poke($config, function () use ($snapshot) {
                $this->items = $snapshot;
            });
        }

        // View::share() during a request (ShareErrorsFromSession shares
        // "errors" on every web request), and any half-finished sections.
        if ($app->resolved('view')) {
            $view = $app['view'];
            $view->flushState();
            if ($view->getShared() !== $this->viewShared) {
                $shared = $this->viewShared;
                self::poke($view, function () use ($shared) {
                    $this->shared = $shared;
                });
            }
        }

        // Log::withContext() during a request.
        if ($app->resolved('log')) {
            self::poke($app['log'], function () {
                foreach ($this->channels as $channel) {
                    if (method_exists($channel, 'withoutContext')) {
                        $channel->withoutContext();
                    }
                }
            });
        }

        // $app->terminating() callbacks added by a request would otherwise
        // run again after every later request.
        $terminating = $this->terminating;
        self::poke($app, function () use ($terminating) {
            if (count($this->terminatingCallbacks) !== count($terminating)) {
                $this->terminatingCallbacks = $terminating;
            }
        });

        // The router remembers the last matched route and request.
        if ($app->resolved('router')) {
            self::poke($app['router'], function () {
                $this->current = null;
                $this->currentRequest = null;
            });
        }

        // Between requests the container holds the boot-time placeholder,
        // not the previous request (and its body, files and session).
        $app->instance('request', $this->idleRequest);
        Facade::clearResolvedInstance('request');
    }

    /** Run $fn with $this bound to $object, even for protected members. */
    private static function poke(object $object, Closure $fn): void
    {
        Closure::bind($fn, $object, get_class($object))();
    }

    private static function peek(object $object, Closure $fn): mixed
    {
        return Closure::bind($fn, $object, get_class($object))();
    }
}
