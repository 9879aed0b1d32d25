<?php

use App\Http\Controllers\HomeController;
use App\Http\Controllers\UserController;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Route;

Route::get('/', HomeController::class)->name('home');

Route::get('/users/{id}', [UserController::class, 'show'])
    ->where('id', '[0-9]{1,18}')        // fits in an int
    ->name('users.show');

// Per-visitor state kept in the session: each client (cookie) counts on its
// own, and a client without a cookie always starts at 1.
Route::get('/counter', function (Request $request) {
    $count = $request->session()->get('count', 0) + 1;
    $request->session()->put('count', $count);

    return response()->json(['count' => $count]);
})->name('counter');

// A failing request: rendered as Laravel's 500 page, the worker keeps going.
Route::get('/boom', function () {
    throw new RuntimeException('Deliberate failure from /boom');
})->name('boom');
