"""resetter.Reset's failures: new workers that cannot start, and its bound."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from tests.fakes import FakeSpawner
from tests.pool.test_pool import running, sleepy
from trio_runner.errors import RpcError
from trio_runner.protocol import Payload
from trio_runner.rpc import Resetter


async def test_resetter_reports_a_reset_that_cannot_start_at_once(
    autojump_clock,
) -> None:
    spawner = FakeSpawner()
    async with running(spawner, num_workers=1, reset_timeout=5.0) as pool:

        async def broken_boot(process) -> None:
            process.exit(255)  # the new deploy dies at boot

        spawner.boot = broken_boot
        start = trio.current_time()
        with pytest.raises(RpcError) as info:
            await Resetter({"http": pool}).reset("http")
        assert trio.current_time() - start < 1
        spawner.boot = None
    assert str(info.value).startswith(
        "pool http: the reset failed, the old workers serve on (the pool keeps "
        "trying): fake worker failed to start"
    )


async def test_resetter_reports_a_reset_that_cannot_finish(autojump_clock) -> None:
    spawner = FakeSpawner(sleepy)
    async with running(spawner, num_workers=1, reset_timeout=5.0) as pool:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(pool.exec, Payload(b"{}", b"30"))  # a long one
            await trio.testing.wait_all_tasks_blocked()
            start = trio.current_time()
            with pytest.raises(RpcError) as info:
                await Resetter({"http": pool}).reset("http")
            assert trio.current_time() - start == pytest.approx(5.0)
    assert str(info.value) == (
        "pool http: the reset did not finish within 5 s (reset_timeout)"
    )
