<?php

// A worker whose app prints to stdout in every way PHP allows; none of it
// may reach the protocol channel.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();
echo "boot echo\n";

while ($request = $http->waitRequest()) {
    echo "echoed during request\n";
    print "printed\n";
    printf("printf %d\n", 42);
    var_dump(['dumped' => true]);
    ini_set('display_errors', '1');
    trigger_error('a warning shown on stdout', E_USER_WARNING);
    ob_start();
    echo "nested buffer content\n";
    ob_end_flush();
    fwrite(STDERR, "direct to stderr\n");
    $http->respond(200, 'still a clean frame', ['Content-Type' => 'text/plain']);
}
