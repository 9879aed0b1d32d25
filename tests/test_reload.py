"""``[reload]``: real files, real watchers, a fake pool that counts resets."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import watchfiles

from trio_runner.config import ReloadConfig, ReloadServiceConfig
from trio_runner.errors import ConfigError
from trio_runner.reload import ChangeFilter, reset_when_quiet, watch_for_reload


class CountingPool:
    def __init__(self) -> None:
        self.resets = 0
        self.reset_done = trio.Event()

    async def reset(self) -> None:
        self.resets += 1
        self.reset_done.set()


def reload_config(poll: bool = False, **services: ReloadServiceConfig) -> ReloadConfig:
    return ReloadConfig(interval=0.05, poll=poll, services=services)


async def touch_until_reset(path: Path, pool: CountingPool) -> None:
    # The watcher starts a moment after watch_for_reload returns; keep
    # changing the file until the reset shows it noticed.
    with trio.fail_after(10):
        n = 0
        while not pool.reset_done.is_set():
            n += 1
            await trio.Path(path).write_text(f"<?php // {n}\n")
            with trio.move_on_after(0.3):
                await pool.reset_done.wait()


@pytest.mark.parametrize("poll", [False, True], ids=["events", "polling"])
async def test_reload_resets_the_pool_on_a_php_change(
    tmp_path: Path, poll: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="trio_runner.reload")
    (tmp_path / "src").mkdir()
    pool = CountingPool()
    config = reload_config(poll, http=ReloadServiceConfig(dirs=("src",)))
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_for_reload, config, {"http": pool}, tmp_path)
        await touch_until_reset(tmp_path / "src" / "App.php", pool)
        nursery.cancel_scope.cancel()
    assert "App.php changed; resetting pool http" in caplog.text


async def test_reload_resets_only_the_pools_that_watch_the_change(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    watching_a, watching_b = CountingPool(), CountingPool()
    config = reload_config(
        http=ReloadServiceConfig(dirs=("a",)), jobs=ReloadServiceConfig(dirs=("b",))
    )
    pools = {"http": watching_a, "jobs": watching_b}
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_for_reload, config, pools, tmp_path)
        await touch_until_reset(tmp_path / "a" / "x.php", watching_a)
        await trio.sleep(0.3)
        nursery.cancel_scope.cancel()
    assert watching_b.resets == 0


@pytest.mark.parametrize(
    ("relative", "counts"),
    [
        ("App.php", True),
        ("src/Http/Kernel.php", True),
        ("README.md", False),
        ("vendor/lib/Thing.php", False),
        ("src/vendor/Thing.php", False),
        ("storage/cache/views.php", False),
        ("app.log.php", False),
        (".git/hooks/x.php", False),
    ],
)
def test_reload_change_filter(tmp_path: Path, relative: str, counts: bool) -> None:
    changes = ChangeFilter(
        (tmp_path,), (".php",), ("vendor", "storage/**", "*.log.php")
    )
    assert changes(watchfiles.Change.modified, str(tmp_path / relative)) is counts


async def test_reload_refuses_a_service_without_a_pool(tmp_path: Path) -> None:
    config = reload_config(jobs=ReloadServiceConfig())
    with pytest.raises(ConfigError, match="no pool 'jobs' to reset"):
        await watch_for_reload(config, {"http": CountingPool()}, tmp_path)


async def test_reload_refuses_a_missing_directory(tmp_path: Path) -> None:
    config = reload_config(http=ReloadServiceConfig(dirs=("nope",)))
    with pytest.raises(ConfigError, match=r"dirs: 'nope' is not a directory"):
        await watch_for_reload(config, {"http": CountingPool()}, tmp_path)


async def test_reload_resets_once_changes_have_stopped_for_the_interval(
    autojump_clock,
) -> None:
    # A save every 150 ms for 1.5 s, then quiet: one reset, 1 s after the
    # last save, naming every file.
    pool = CountingPool()
    reset_at: list[float] = []

    async def reset() -> None:
        reset_at.append(trio.current_time())

    pool.reset = reset  # type: ignore[method-assign]
    send, receive = trio.open_memory_channel[set[tuple[watchfiles.Change, str]]](10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reset_when_quiet, "http", pool, receive, 1.0)
        for n in range(10):
            await send.send({(watchfiles.Change.modified, f"/app/{n}.php")})
            await trio.sleep(0.15)
        last = trio.current_time() - 0.15
        await trio.sleep(5)
        assert reset_at == [pytest.approx(last + 1.0)]
        # A later change is a reset of its own.
        await send.send({(watchfiles.Change.modified, "/app/late.php")})
        await trio.sleep(2)
        assert len(reset_at) == 2
        nursery.cancel_scope.cancel()
