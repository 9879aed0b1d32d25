"""``[reload]``: reset a pool when the PHP files it watches change.

One watcher per ``[reload.services.<pool>]`` section, built on watchfiles
(inotify on Linux; polling with ``poll = true`` for mounts where change
events never arrive). A reset follows once changes have stopped for
``interval``, so a burst of saves is one reset. A change
resets only the pools whose section watches it, and the log names the file.

A reset lets requests in flight finish on the old workers and sends new
ones to fresh workers (``Pool.reset``), so reloading never fails a request.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Protocol

import attrs
import trio
import watchfiles

from trio_runner.config.model import ReloadConfig, ReloadServiceConfig
from trio_runner.errors import ConfigError, WorkerStartError

__all__ = ["ChangeFilter", "reset_when_quiet", "watch_for_reload"]

logger = logging.getLogger(__name__)

# How often, when polling, every watched file is looked at.
_POLL_DELAY_MS = 300

Changes = set[tuple[watchfiles.Change, str]]


class Resettable(Protocol):
    async def reset(self) -> None: ...


@attrs.frozen
class ChangeFilter:
    """Which changed paths count for one service.

    A path counts when its name ends with one of ``patterns`` and no
    ``ignore`` glob matches it: globs are tried against the path relative to
    the watched directory and against each part of that path, so
    ``"vendor"`` leaves out everything under any ``vendor`` directory.
    watchfiles' defaults (``.git``, editor swap files, ...) stay out too.
    """

    dirs: tuple[Path, ...]
    patterns: tuple[str, ...]
    ignore: tuple[str, ...] = ()
    _default: watchfiles.DefaultFilter = attrs.field(
        factory=watchfiles.DefaultFilter, init=False
    )

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        if not path.endswith(self.patterns) or not self._default(change, path):
            return False
        relative = self._relative(Path(path))
        for pattern in self.ignore:
            if fnmatch.fnmatch(relative.as_posix(), pattern):
                return False
            if any(fnmatch.fnmatch(part, pattern) for part in relative.parts):
                return False
        return True

    def _relative(self, path: Path) -> PurePosixPath:
        for directory in self.dirs:
            if path.is_relative_to(directory):
                return PurePosixPath(path.relative_to(directory))
        return PurePosixPath(path)


async def watch_for_reload(
    config: ReloadConfig,
    pools: Mapping[str, Resettable],
    working_dir: Path,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Watch every configured service; reset its pool on a change.

    Runs until cancelled.

    Raises:
        ConfigError: a service names no pool, or a directory is missing.
    """
    watchers = [
        (name, _dirs(name, service, working_dir), service)
        for name, service in config.services.items()
    ]
    for name, _, _ in watchers:
        if name not in pools:
            known = ", ".join(pools) or "none"
            raise ConfigError(
                f"reload.services.{name}: there is no pool {name!r} to reset "
                f"(pools: {known})"
            )
    if not watchers:
        logger.warning(
            "reload: no [reload.services.<pool>] section, so nothing is watched"
        )
    async with trio.open_nursery() as nursery:
        for name, dirs, service in watchers:
            patterns = service.patterns or config.patterns
            changes = ChangeFilter(dirs, patterns, service.ignore)
            nursery.start_soon(
                _watch, name, pools[name], dirs, changes, config, service.recursive
            )
            logger.info(
                "reload: pool %s follows %s in %s",
                name,
                " ".join(f"*{pattern}" for pattern in patterns),
                ", ".join(str(directory) for directory in dirs),
                extra={"pool": name},
            )
        task_status.started()


def _dirs(
    name: str, service: ReloadServiceConfig, working_dir: Path
) -> tuple[Path, ...]:
    dirs = []
    for entry in service.dirs:
        directory = (working_dir / entry).resolve()
        if not directory.is_dir():
            raise ConfigError(
                f"reload.services.{name}.dirs: {entry!r} is not a directory "
                f"(looked for {directory})"
            )
        dirs.append(directory)
    return tuple(dirs)


async def _watch(
    name: str,
    pool: Resettable,
    dirs: Sequence[Path],
    changes: ChangeFilter,
    config: ReloadConfig,
    recursive: bool,
) -> None:
    # watchfiles waits for changes in a thread that cancellation cannot
    # interrupt; it checks this event every ``step`` (50 ms) instead.
    stop = trio.Event()
    watching = watchfiles.awatch(
        *dirs,
        watch_filter=changes,
        debounce=int(config.interval * 1000),
        recursive=recursive,
        force_polling=config.poll,
        poll_delay_ms=_POLL_DELAY_MS,
        stop_event=stop,
    )

    send, receive = trio.open_memory_channel[Changes](math.inf)

    async def follow() -> None:
        async with contextlib.aclosing(watching), send:
            async for batch in watching:
                send.send_nowait(batch)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow)
        nursery.start_soon(reset_when_quiet, name, pool, receive, config.interval)
        try:
            await trio.sleep_forever()
        finally:
            stop.set()


async def reset_when_quiet(
    name: str,
    pool: Resettable,
    batches: trio.MemoryReceiveChannel[Changes],
    interval: float,
) -> None:
    """Reset ``pool`` once changes have stopped for ``interval`` seconds.

    watchfiles ends a batch after 50 ms without changes, so a save every
    150 ms (an editor, ``git checkout``, a build writing files) would
    otherwise reset the pool again and again. Changes that arrive during
    a reset make one more reset after it.
    """
    async with batches:
        async for batch in batches:
            pending = set(batch)
            while True:
                with trio.move_on_after(interval) as quiet:
                    pending |= await batches.receive()
                if quiet.cancelled_caught:
                    break
            await _reset(name, pool, pending)


async def _reset(name: str, pool: Resettable, batch: Changes) -> None:
    paths = sorted(path for _, path in batch)
    more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
    logger.info(
        "reload: %s changed%s; resetting pool %s",
        paths[0],
        more,
        name,
        extra={"pool": name, "reason": "reload"},
    )
    try:
        await pool.reset()
    except WorkerStartError as exc:
        # A save with a typo in it: the old workers serve on, the pool
        # keeps trying, and the next save (the fix) resets again.
        logger.error(
            "reload: pool %s: the new workers cannot start, the old ones "
            "serve on until a change fixes it: %s",
            name,
            exc.summary,
            extra={"pool": name, "reason": "reload"},
        )
