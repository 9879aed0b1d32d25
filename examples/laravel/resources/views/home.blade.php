<!DOCTYPE html>
<html lang="{{ str_replace('_', '-', app()->getLocale()) }}">
<head>
    <meta charset="utf-8">
    <title>{{ config('app.name') }}</title>
</head>
<body>
    <h1>Laravel {{ $version }} on trio_runner</h1>
    <p>Served by worker process {{ $pid }}; this page is the <code>/{{ $path === '/' ? '' : $path }}</code> route.</p>
    <ul>
        <li><a href="{{ url('/api/info') }}">/api/info</a> (JSON)</li>
        <li><a href="{{ route('users.show', ['id' => 5]) }}">/users/5</a> (route parameter)</li>
        <li><a href="{{ route('counter') }}">/counter</a> (session)</li>
        <li><a href="{{ url('/nope') }}">/nope</a> (404 page)</li>
    </ul>
</body>
</html>
