<?php

// An HTTP worker whose app fails while booting, before the handshake: the
// server must fail start-up with this message instead of retrying.

declare(strict_types=1);

require getenv('TRIO_RUNNER_PHP');

throw new RuntimeException('the app cannot boot: database unreachable');
