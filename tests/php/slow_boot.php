<?php

// Says what it is waiting for on stderr, then never becomes a worker: the
// start-up timeout must quote those words.

declare(strict_types=1);

fwrite(STDERR, "slow_boot: waiting for the database\n");
sleep(60);
