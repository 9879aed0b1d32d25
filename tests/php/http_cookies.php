<?php

// Answers every request with two cookies (issue #3, bug input 7): the
// server must send them as two Set-Cookie lines, byte for byte, in order.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$http = TrioRunner\Http\HttpWorker::create();

while ($request = $http->waitRequest()) {
    $http->respond(200, 'two cookies', [
        'Content-Type' => 'text/plain',
        'Set-Cookie' => [
            'a=1; Path=/; HttpOnly',
            'b=2; Path=/; Expires=Wed, 21 Oct 2037 07:28:00 GMT; SameSite=Lax',
        ],
    ]);
}
