"""PHP worker processes: spawning, relays, the worker lifecycle, termination.

``reaper.py`` kills the workers of a server that died without stopping them.
"""

from __future__ import annotations

from trio_runner.process.relay import PipeRelay, SocketRelay, open_relay
from trio_runner.process.spawn import (
    PHP_LIBRARY,
    ProcessSpawner,
    Spawned,
    Spawner,
    worker_environment,
)
from trio_runner.process.worker import Retirement, Worker, WorkerState

__all__ = [
    "PHP_LIBRARY",
    "PipeRelay",
    "ProcessSpawner",
    "Retirement",
    "SocketRelay",
    "Spawned",
    "Spawner",
    "Worker",
    "WorkerState",
    "open_relay",
    "worker_environment",
]
