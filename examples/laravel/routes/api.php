<?php

use App\Http\Controllers\InfoController;
use Illuminate\Support\Facades\Route;

Route::get('/info', [InfoController::class, 'info'])->name('api.info');

Route::any('/echo', [InfoController::class, 'echo'])->name('api.echo');
