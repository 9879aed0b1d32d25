"""resetter.Reset's bound: it says so when new workers do not come up."""

from __future__ import annotations

import pytest
import trio

from tests.fakes import FakeSpawner
from tests.pool.test_pool import running
from trio_runner.errors import RpcError
from trio_runner.rpc import Resetter


async def test_resetter_reports_a_reset_that_cannot_finish(autojump_clock) -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=1, reset_timeout=5.0) as pool:

        async def broken_boot(process) -> None:
            process.exit(255)  # the new deploy dies at boot

        spawner.boot = broken_boot
        start = trio.current_time()
        with pytest.raises(RpcError) as info:
            await Resetter({"http": pool}).reset("http")
        assert trio.current_time() - start == pytest.approx(5.0)
        spawner.boot = None
    assert str(info.value).startswith(
        "pool http: the reset did not finish within 5 s (reset_timeout): "
        "fake worker failed to start"
    )
