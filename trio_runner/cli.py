"""The command line: ``python -m trio_runner serve -c roadrunner.toml``.

``serve`` runs the server; ``workers``, ``reset`` and ``stop`` control a
running one (``trio_runner.control``): the first two over RPC at the
config's ``rpc.listen``, ``stop`` through the pid file ``serve -p`` wrote.

Exit codes: 0 after a clean stop, 1 when start-up failed (bad config, a
worker that cannot start) or a control command could not do its job, 2
for bad command-line usage, 130 when forced by a second signal. A signal
during start-up stops at once, with 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import trio
from dotenv import load_dotenv

from trio_runner import control
from trio_runner._version import RR_VERSION, __version__
from trio_runner.config import DEFAULT_PATH, Config, load_config
from trio_runner.errors import ConfigError, TrioRunnerError
from trio_runner.log import configure_logging
from trio_runner.process.spawn import PHP_LIBRARY
from trio_runner.server import Server

__all__ = ["main"]

logger = logging.getLogger("trio_runner.server")

EXIT_STARTUP_FAILED = 1
EXIT_FORCED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trio_runner",
        description=(
            "A PHP application server on trio. It keeps PHP workers alive "
            "between requests and speaks RoadRunner's worker protocol."
        ),
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"trio_runner {__version__} (RoadRunner protocol {RR_VERSION})",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    # The config options every command that reads the config shares.
    config = argparse.ArgumentParser(add_help=False)
    config.add_argument(
        "-c",
        "--config",
        default=DEFAULT_PATH,
        help=f"configuration file (default: {DEFAULT_PATH})",
    )
    config.add_argument(
        "-w",
        "--workdir",
        help="working directory of the workers (default: the config's directory)",
    )
    config.add_argument(
        "-o",
        "--override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. -o http.address=127.0.0.1:9000 (repeatable)",
    )
    config.add_argument(
        "--dotenv",
        metavar="FILE",
        help="read KEY=VALUE lines from FILE into the environment before the "
        "config (variables already set win)",
    )

    serve = commands.add_parser(
        "serve",
        parents=[config],
        help="start the server",
        description="Start the workers and the fronts configured in the file.",
    )
    serve.add_argument("-s", "--silent", action="store_true", help="log only errors")
    serve.add_argument(
        "-p",
        "--pid-file",
        nargs="?",
        const=".pid",
        metavar="FILE",
        help="write the server's pid to FILE (default with -p alone: .pid), "
        "for `stop`; removed at exit",
    )

    workers = commands.add_parser(
        "workers",
        parents=[config],
        help="show the workers of a running server",
        description=(
            "Print each pool's workers (pid, status, requests served, memory, "
            "CPU, age), asked over RPC at the config's rpc.listen."
        ),
    )
    workers.add_argument(
        "-i", "--interactive", action="store_true", help="refresh every second"
    )
    workers.add_argument("pools", nargs="*", metavar="POOL", help="default: all")

    reset = commands.add_parser(
        "reset",
        parents=[config],
        help="replace the workers of a running server",
        description=(
            "Reset pools over RPC: fresh workers, no request lost. Returns "
            "once each reset is done."
        ),
    )
    reset.add_argument("pools", nargs="*", metavar="POOL", help="default: all")

    stop = commands.add_parser(
        "stop",
        help="stop a running server",
        description="Signal the server whose pid `serve -p` wrote, and wait.",
    )
    stop.add_argument(
        "-p",
        "--pid-file",
        default=".pid",
        metavar="FILE",
        help="the pid file (default: .pid)",
    )
    stop.add_argument(
        "-f", "--force", action="store_true", help="stop at once, not gracefully"
    )

    commands.add_parser(
        "php-lib",
        help="print the path of the bundled PHP worker library's autoload.php",
        description=(
            "Print the absolute path of the PHP library's autoload.php, for "
            "`require`. Workers also get it as the TRIO_RUNNER_PHP variable."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "php-lib":
        print(PHP_LIBRARY)
        return 0
    if args.command == "serve":
        return _serve(args)
    if args.command == "stop":
        return control.stop(Path(args.pid_file), force=args.force)
    if args.command in ("workers", "reset"):
        config = _config(args)
        if config is None:
            return EXIT_STARTUP_FAILED
        if args.command == "workers":
            return control.workers(config, args.pools, interactive=args.interactive)
        return control.reset(config, args.pools)
    parser.print_help()
    return 2


def _config(args: argparse.Namespace) -> Config | None:
    """The config the arguments name, or None after printing why not."""
    if args.dotenv is not None:
        if not Path(args.dotenv).is_file():
            print(f"trio_runner: --dotenv {args.dotenv}: no such file", file=sys.stderr)
            return None
        load_dotenv(args.dotenv, override=False)
    try:
        return load_config(
            Path(args.config), overrides=args.override, working_dir=args.workdir
        )
    except ConfigError as exc:
        print(f"trio_runner: {exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    config = _config(args)
    if config is None:
        return EXIT_STARTUP_FAILED
    try:
        output = configure_logging(config.logs, silent=args.silent)
    except ConfigError as exc:
        print(f"trio_runner: {exc}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    pid_file = Path(args.pid_file) if args.pid_file else None
    try:
        if pid_file is not None and not _claim_pid_file(pid_file):
            return EXIT_STARTUP_FAILED
        return _serve_config(config)
    finally:
        if pid_file is not None:
            _remove_pid_file(pid_file)
        output.close()


def _claim_pid_file(pid_file: Path) -> bool:
    """Write this process's pid to ``pid_file``, unless a server's is there.

    A live trio_runner's pid file is never taken over: ``stop`` could no
    longer reach that server, and this one would delete the file on its
    way out. A stale one (its process is gone, or is not trio_runner) is
    replaced, with a warning. The file is created exclusively, so of two
    servers starting at once only one gets it.
    """
    for _ in range(3):
        try:
            fd = os.open(pid_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            try:
                pid = control.read_pid(pid_file)
            except OSError as exc:
                return _pid_file_error(pid_file, exc)
            reason = (
                "it holds no server pid"
                if pid is None
                else control.why_not_a_server(pid)
            )
            if reason is None:
                print(
                    f"trio_runner: the pid file {pid_file} names a running "
                    f"trio_runner (pid {pid}); stop that one first (trio_runner "
                    f"stop -p {pid_file}) or give this one another pid file",
                    file=sys.stderr,
                )
                return False
            logger.warning("replacing the stale pid file %s: %s", pid_file, reason)
            try:
                pid_file.unlink(missing_ok=True)
            except OSError as exc:
                return _pid_file_error(pid_file, exc)
            continue
        except OSError as exc:
            return _pid_file_error(pid_file, exc)
        with os.fdopen(fd, "w") as file:
            file.write(f"{os.getpid()}\n")
        return True
    # Recreated under our feet each time: other servers start on it too.
    return _pid_file_error(pid_file, "other servers keep creating it")


def _pid_file_error(pid_file: Path, reason: OSError | str) -> bool:
    if isinstance(reason, OSError):
        reason = reason.strerror or str(reason)
    print(
        f"trio_runner: cannot write the pid file {pid_file}: {reason}", file=sys.stderr
    )
    return False


def _remove_pid_file(pid_file: Path) -> None:
    """Remove ``pid_file`` if it still names this process."""
    try:
        if control.read_pid(pid_file) == os.getpid():
            pid_file.unlink()
    except OSError:
        pass


def _serve_config(config: Config) -> int:
    try:
        return trio.run(_run_server, config)
    except TrioRunnerError as exc:
        logger.error("start-up failed: %s", exc)
        return EXIT_STARTUP_FAILED
    except KeyboardInterrupt:
        return EXIT_FORCED


async def _run_server(config: Config) -> int:
    """Serve until a signal: the first stops gracefully, a second forces.

    SIGUSR1 resets every pool: fresh workers, no request lost.
    """
    server = Server(config)
    forced = False
    failure: TrioRunnerError | None = None

    async def watch(
        signals: AsyncIterator[int], scope: trio.CancelScope, resets: trio.Nursery
    ) -> None:
        nonlocal forced
        async for signum in signals:
            name = signal.Signals(signum).name
            if signum == signal.SIGUSR1:
                if server.started and not server.stopping:
                    logger.info("%s: resetting the workers of every pool", name)
                    resets.start_soon(server.reset)
                continue
            if server.started and not server.stopping:
                logger.info("%s: stopping gracefully (send it again to force)", name)
                server.stop()
                continue
            if server.started:
                logger.warning("%s again: stopping now", name)
                forced = True
            else:
                # Nothing is served yet, so nothing is cut: a plain stop.
                logger.info("%s during start-up: stopping", name)
            scope.cancel()
            return

    wanted = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    with trio.open_signal_receiver(*wanted) as signals:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch, signals, nursery.cancel_scope, nursery)
            try:
                await server.run()
            except TrioRunnerError as exc:
                failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    if forced:
        logger.warning("stopped at once; requests in flight were cut")
        return EXIT_FORCED
    return 0
