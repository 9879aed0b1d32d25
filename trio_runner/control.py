"""The control commands: ``workers``, ``reset`` and ``stop``, as ``rr`` has them.

``workers`` and ``reset`` talk to a running server over RPC, at the
``rpc.listen`` address of the same config ``serve`` read (``-c``, ``-o``);
``stop`` signals the process named by the pid file ``serve -p`` wrote.
Each returns an exit code and prints one clear line when it cannot do its
job, e.g. when no server answers at the address.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from trio_runner.config import Config
from trio_runner.errors import RpcError, RpcUnreachable
from trio_runner.rpc.client import RpcClient

__all__ = ["format_age", "format_memory", "reset", "stop", "workers", "workers_table"]

EXIT_FAILED = 1

# How often ``workers -i`` refreshes the table.
_REFRESH = 1.0


def rpc_client(config: Config, *, timeout: float | None = 10.0) -> RpcClient:
    """A client for the server ``config`` describes.

    Raises:
        RpcError: the config has no ``[rpc]`` section.
    """
    if config.rpc is None:
        where = config.source or "the configuration"
        raise RpcError(
            f"{where} has no [rpc] section, so the server does not listen for "
            'RPC; add [rpc] with listen = "tcp://127.0.0.1:6001" and restart it'
        )
    return RpcClient(config.rpc.listen, timeout=timeout, base_dir=config.working_dir)


def unreachable(config: Config, exc: RpcUnreachable) -> str:
    """The one line shown when no server answers."""
    listen = config.rpc.listen if config.rpc else "?"
    return f'{exc}; is the server running with [rpc] listen = "{listen}"?'


def workers(
    config: Config,
    pools: Sequence[str],
    *,
    interactive: bool = False,
    console: Console | None = None,
) -> int:
    """Print a table of each pool's workers (all pools when none is named).

    With ``interactive`` the tables are redrawn every second until Ctrl-C.
    """
    console = console or Console()
    return _run(
        config,
        console,
        lambda client: _workers(client, pools, interactive, console),
    )


def _workers(
    client: RpcClient, pools: Sequence[str], interactive: bool, console: Console
) -> int:
    names = list(pools) or client.call("informer.List", True)
    missing: list[str] = []

    def tables(*, say_missing: bool = True) -> Group:
        now = time.time()
        parts: list[Table | Text] = []
        for name in names:
            listed = client.call("informer.Workers", name).get("workers")
            if listed is None:
                missing.append(name)
                if say_missing:
                    parts.append(Text(f"pool {name}: no such pool", style="red"))
            else:
                parts.append(workers_table(name, listed, now=now))
        return Group(*parts)

    if not interactive:
        console.print(tables(say_missing=False))
        if missing:
            known = ", ".join(client.call("informer.List", True)) or "none"
            for name in dict.fromkeys(missing):
                # As reset says it: on stderr, so stdout holds only tables.
                print(
                    f"trio_runner: no pool named {name!r} (pools: {known})",
                    file=sys.stderr,
                )
            return EXIT_FAILED
        return 0
    if not console.is_terminal:
        # Piped or redirected: nothing to redraw, so the tables follow one
        # another, a new set each second (as ``top -b`` does).
        try:
            while True:
                console.print(tables())
                console.file.flush()
                time.sleep(_REFRESH)
        except KeyboardInterrupt:
            return 0
        except BrokenPipeError:  # `| head` has read enough
            return 0
    try:
        with Live(tables(), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(_REFRESH)
                live.update(tables(), refresh=True)
    except KeyboardInterrupt:
        return 0


def workers_table(pool: str, workers: list[dict[str, Any]], *, now: float) -> Table:
    """The table of one pool: pid, status, execs, memory, CPU, age."""
    table = Table(
        title=f"Workers of pool {pool} ({len(workers)})", title_justify="left"
    )
    table.add_column("PID", justify="right")
    table.add_column("Status")
    table.add_column("Execs", justify="right")
    table.add_column("Memory", justify="right")
    table.add_column("CPU", justify="right")
    table.add_column("Age", justify="right")
    for worker in workers:
        table.add_row(
            str(worker["pid"]),
            str(worker["statusStr"]),
            str(worker["numExecs"]),
            format_memory(worker["memoryUsage"]),
            f"{worker['CPUPercent']:.2f}%",
            format_age(now - worker["created"] / 1e9),
        )
    return table


def reset(
    config: Config, pools: Sequence[str], *, console: Console | None = None
) -> int:
    """Reset each pool (all when none is named); return once each is done."""
    console = console or Console()
    return _run(
        config, console, lambda client: _reset(client, pools, console), timeout=None
    )


def _reset(client: RpcClient, pools: Sequence[str], console: Console) -> int:
    names = list(pools) or client.call("resetter.List", True)
    for name in names:
        start = time.monotonic()
        client.call("resetter.Reset", name)
        console.print(f"pool {name}: reset done in {time.monotonic() - start:.1f} s")
    return 0


def _run(
    config: Config,
    console: Console,
    command: Callable[[RpcClient], int],
    *,
    timeout: float | None = 10.0,
) -> int:
    """Run ``command`` with a client; one line and exit 1 on failure."""
    try:
        with rpc_client(config, timeout=timeout) as client:
            return command(client)
    except RpcUnreachable as exc:
        print(f"trio_runner: {unreachable(config, exc)}", file=sys.stderr)
    except RpcError as exc:
        print(f"trio_runner: {exc}", file=sys.stderr)
    return EXIT_FAILED


def stop(pid_file: Path, *, force: bool = False, timeout: float = 60.0) -> int:
    """Signal the server named by ``pid_file``; wait until it has exited.

    SIGTERM stops it gracefully. ``force`` adds SIGINT: a second stop
    signal, which makes the server stop at once (workers are still killed
    and reaped). Two different signals, because the same one sent twice may
    arrive as one.
    """
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        print(
            f"trio_runner: no pid file at {pid_file}: is the server running with "
            "serve -p? (pass its path with --pid-file)",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except OSError as exc:
        print(f"trio_runner: cannot read {pid_file}: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILED
    if not text.isdigit() or int(text) <= 1:
        print(
            f"trio_runner: {pid_file} does not hold a process id (got {text[:40]!r})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    pid = int(text)
    other = _not_trio_runner(pid)
    if other is not None:
        print(
            f"trio_runner: process {pid} (from {pid_file}) is not trio_runner "
            f"(it runs {other[:60]!r}); the pid file is stale, not signalling it",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        os.kill(pid, signal.SIGTERM)
        if force:
            os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        print(
            f"trio_runner: no process {pid} (from {pid_file}) is running; "
            "the pid file is stale",
            file=sys.stderr,
        )
        return EXIT_FAILED
    except PermissionError:
        print(f"trio_runner: not allowed to signal process {pid}", file=sys.stderr)
        return EXIT_FAILED
    deadline = time.monotonic() + timeout
    while _running(pid):
        if time.monotonic() > deadline:
            print(
                f"trio_runner: process {pid} still runs {timeout:g} s after "
                "SIGTERM; stop -f stops it at once",
                file=sys.stderr,
            )
            return EXIT_FAILED
        time.sleep(0.05)
    print(f"trio_runner (pid {pid}) stopped")
    return 0


def read_pid(pid_file: Path) -> int | None:
    """The pid ``pid_file`` holds, or None if it holds none (or is gone).

    Raises:
        OSError: it cannot be read (other than not existing).
    """
    try:
        text = pid_file.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() and int(text) > 1 else None


def why_not_a_server(pid: int) -> str | None:
    """Why ``pid`` is not a running trio_runner, or None if it may be one.

    What ``stop`` checks before it signals a pid, for ``serve -p`` to tell
    a live server's pid file from a stale one. A process whose command
    line cannot be read counts as a server: refusing to take its pid file
    is the safe side.
    """
    if pid == os.getpid():
        return "it is this process"
    if not _running(pid):
        return f"process {pid} is not running"
    other = _not_trio_runner(pid)
    if other is not None:
        return f"process {pid} is not trio_runner (it runs {other[:60]!r})"
    return None


def _not_trio_runner(pid: int) -> str | None:
    """The command line of ``pid`` if it is visibly not trio_runner.

    A pid file outlives a crashed server, and its pid may be reused by
    anything; that must not be signalled. None when it is trio_runner or
    cannot be told (then ``os.kill`` reports what is wrong).
    """
    try:
        command = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if not command or "trio_runner" in command or "trio-runner" in command:
        return None
    return command


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def format_memory(size: int) -> str:
    """``23.4 MB``: bytes in (binary) megabytes, as RoadRunner shows them."""
    return f"{size / (1 << 20):.1f} MB"


def format_age(seconds: float) -> str:
    """``1h02m03s``, ``4m05s``, ``12s``."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
