<?php

namespace App\Providers;

use App\Support\WorkerStats;
use Illuminate\Support\ServiceProvider;

class AppServiceProvider extends ServiceProvider
{
    public function register()
    {
        $this->app->instance(WorkerStats::class, new WorkerStats(microtime(true)));
    }

    public function boot()
    {
        //
    }
}
