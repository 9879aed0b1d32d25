"""A trio_runner server in a child process, for tests that are not async.

``ServerProcess`` starts ``python -m trio_runner serve``, reads its log
until the ready line names the bound URL, and fails fast with the server's
own output if it exits first. Its log keeps being read in a thread, so a
chatty server never blocks on a full pipe, and ``output`` holds it all for
assertions. ``stop`` sends SIGTERM (graceful), then SIGKILL after a bound.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["ServerProcess", "ServerStartError"]

_READY = re.compile(r"serving on (https?://\S+?)(?:\s|\"|$)")


class ServerStartError(RuntimeError):
    """The server exited or stayed silent instead of becoming ready."""


class ServerProcess:
    """One ``python -m trio_runner serve`` child process.

    Args:
        config: the ``roadrunner.toml`` to serve.
        overrides: ``-o key=value`` items; ``http.address`` defaults to
            ``127.0.0.1:0`` (a free port) unless given here.
        args: more command-line arguments for ``serve``.
        env: the child's environment (default: this process's).
        start_timeout: seconds to wait for the ready line.
    """

    def __init__(
        self,
        config: str | os.PathLike[str],
        *,
        overrides: Sequence[str] = (),
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.config = Path(config)
        items = list(overrides)
        if not any(item.startswith("http.address=") for item in items):
            items.append("http.address=127.0.0.1:0")
        self.argv = [sys.executable, "-m", "trio_runner", "serve", "-c", str(config)]
        for item in items:
            self.argv += ["-o", item]
        self.argv += list(args)
        self.env = env
        self.start_timeout = start_timeout
        self.url: str | None = None
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> ServerProcess:
        """Start the server and wait until it serves; return self.

        Raises:
            ServerStartError: it exited first or was not ready in time; the
                message quotes its output.
        """
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=self.env,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None:
                self._reader.join(2)
                raise ServerStartError(
                    f"trio_runner exited with code {self.process.returncode} "
                    f"before it was ready:\n{self.output}"
                )
            if time.monotonic() > deadline:
                self.kill()
                self.wait()
                raise ServerStartError(
                    f"trio_runner was not ready after {self.start_timeout:g} s:\n"
                    f"{self.output}"
                )
        return self

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        # The reader owns the pipe and closes it at EOF: an unclosed pipe is
        # a ResourceWarning, an error under -W error.
        with self.process.stdout as output:
            for line in output:
                line = line.rstrip("\n")
                self.lines.append(line)
                if self.url is None:
                    match = _READY.search(line)
                    if match:
                        self.url = match.group(1)
                        self._ready.set()

    def send_signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        assert self.process is not None
        code = self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(5)
        return code

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait up to ``timeout``, then SIGKILL; return the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
