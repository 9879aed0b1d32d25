"""pytest fixtures that start PHP backends: a pool, a server, a server process.

Registered as the ``trio_runner`` pytest plugin (an entry point), so a
project that installs trio_runner gets them without a conftest:

``php_pool``
    async factory (pytest-trio): ``pool = await php_pool("worker.php")``
    starts a pool of workers in the test's nursery.
``php_server``
    async factory (pytest-trio): ``server = await php_server("roadrunner.toml")``
    or ``await php_server(script="worker.php")`` runs the whole server
    in-process on a free port; ``server.http_url`` is where it listens.
``php_server_process``
    sync factory: ``srv = php_server_process("roadrunner.toml")`` runs
    ``python -m trio_runner serve`` as a child process; ``srv.url``.

Every factory waits until the backend is ready, fails at once with the
worker's own start-up error, and stops what it started when the test ends:
no PHP process outlives the test.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_runner.config import Config, PoolConfig, config_from_mapping, load_config
from trio_runner.pool import Pool, open_pool
from trio_runner.server import Server
from trio_runner.testing.process import ServerProcess

__all__ = ["php_pool", "php_server", "php_server_process", "script_command"]

PoolFactory = Callable[..., Awaitable[Pool]]
ServerFactory = Callable[..., Awaitable[Server]]


def script_command(script: str | os.PathLike[str]) -> tuple[list[str], Path]:
    """``php <script>`` and the script's directory (the workers' cwd)."""
    path = Path(script).resolve()
    return ["php", str(path)], path.parent


@pytest.fixture
async def php_pool() -> AsyncIterator[PoolFactory]:
    """Start pools of PHP workers; all are stopped when the test ends.

    ``await php_pool(script_or_command, num_workers=1, **pool_settings)``:
    a path ending in ``.php`` runs ``php <path>`` in the script's directory;
    anything else is a command. Other keyword arguments are
    ``[http.pool]`` settings; ``env=`` and ``relay=`` are passed through.
    """
    async with trio.open_nursery() as nursery:

        async def start(
            target: str | os.PathLike[str] | Sequence[str],
            *,
            env: dict[str, str] | None = None,
            relay: str = "pipes",
            **settings: Any,
        ) -> Pool:
            command, cwd = _command(target)
            settings.setdefault("num_workers", 1)
            config = config_from_mapping(
                {"server": {"command": command}, "http": {"pool": settings}}
            )
            assert config.http is not None
            pool_config: PoolConfig = config.http.pool

            async def run(*, task_status: trio.TaskStatus[Pool]) -> None:
                async with open_pool(
                    command, config=pool_config, env=env, cwd=cwd, relay=relay
                ) as pool:
                    task_status.started(pool)
                    await trio.sleep_forever()

            pool: Pool = await nursery.start(run)
            return pool

        yield start
        nursery.cancel_scope.cancel()


@pytest.fixture
async def php_server() -> AsyncIterator[ServerFactory]:
    """Start whole servers in-process on free ports; stopped after the test.

    ``await php_server("roadrunner.toml", overrides=[...])`` or
    ``await php_server(script="worker.php", num_workers=2)``. Unless an
    override sets it, ``http.address`` is ``127.0.0.1:0``.
    """
    async with trio.open_nursery() as nursery:

        async def start(
            config: str | os.PathLike[str] | Config | None = None,
            *,
            script: str | os.PathLike[str] | None = None,
            overrides: Sequence[str] = (),
            **pool_settings: Any,
        ) -> Server:
            loaded = _server_config(config, script, overrides, pool_settings)
            server = Server(loaded)
            await nursery.start(server.run)
            return server

        yield start
        nursery.cancel_scope.cancel()


@pytest.fixture
def php_server_process() -> Iterator[Callable[..., ServerProcess]]:
    """Start ``python -m trio_runner serve`` children; stopped after the test.

    ``php_server_process(config, overrides=[...], args=[...], env=...)``
    returns a started ``ServerProcess`` (``.url``, ``.pid``, ``.output``).
    """
    started: list[ServerProcess] = []

    def start(config: str | os.PathLike[str], **options: Any) -> ServerProcess:
        server = ServerProcess(config, **options)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def _command(
    target: str | os.PathLike[str] | Sequence[str],
) -> tuple[list[str], Path | None]:
    if isinstance(target, str | os.PathLike) and str(target).endswith(".php"):
        command, cwd = script_command(target)
        return command, cwd
    if isinstance(target, str):
        return target.split(), None
    if isinstance(target, os.PathLike):
        return [os.fspath(target)], None
    return [str(part) for part in target], None


def _server_config(
    config: str | os.PathLike[str] | Config | None,
    script: str | os.PathLike[str] | None,
    overrides: Sequence[str],
    pool_settings: dict[str, Any],
) -> Config:
    items = list(overrides)
    if not any(item.startswith("http.address=") for item in items):
        items.append("http.address=127.0.0.1:0")
    if isinstance(config, Config):
        return config
    if config is not None:
        items += [
            f"http.pool.{key}={json.dumps(value)}"
            for key, value in pool_settings.items()
        ]
        return load_config(Path(config), overrides=items)
    if script is None:
        raise TypeError("php_server needs a config file, a Config or script=")
    command, cwd = script_command(script)
    pool_settings.setdefault("num_workers", 1)
    return config_from_mapping(
        {"server": {"command": command}, "http": {"pool": pool_settings}},
        overrides=items,
        working_dir=cwd,
    )
