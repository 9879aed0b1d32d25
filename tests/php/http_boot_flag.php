<?php

// An HTTP worker that exits at boot, before the handshake, while the file
// named by $BOOT_FLAG exists: a deploy that broke the app. Once the file is
// gone it boots and answers "pid N".

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

$flag = (string) getenv('BOOT_FLAG');
if ($flag !== '' && file_exists($flag)) {
    fwrite(STDERR, "http_boot_flag: {$flag} exists; exiting at boot\n");
    exit(1);
}

$http = TrioRunner\Http\HttpWorker::create();

while ($http->waitRequest()) {
    $http->respond(200, sprintf('pid %d', getmypid()), ['Content-Type' => 'text/plain']);
}
