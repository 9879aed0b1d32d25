<?php

// Writes raw bytes to stdout past the library's output buffer, as a stray
// fwrite(STDOUT) or a C extension would. With the argument "boot" it does
// so before the handshake; otherwise on the request body "garbage", and
// then answers as if nothing happened; on "after", 50 ms after answering,
// while idle, and then says so on stderr. Other bodies get the pid.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP') ?: __DIR__ . '/../../trio_runner/php/autoload.php';

use TrioRunner\Payload;
use TrioRunner\Worker;

$worker = Worker::create();

if (($argv[1] ?? '') === 'boot') {
    fwrite(STDOUT, "writes_to_stdout: debug output at boot\n");
}

while ($payload = $worker->waitPayload()) {
    if ($payload->body === 'garbage') {
        fwrite(STDOUT, "writes_to_stdout: debug output mid-request\n");
    }
    $worker->respond(new Payload('{}', (string) getmypid()));
    if ($payload->body === 'after') {
        usleep(50_000);
        fwrite(STDOUT, "writes_to_stdout: debug output while idle\n");
        fwrite(STDERR, "writes_to_stdout: wrote while idle\n");
    }
}
