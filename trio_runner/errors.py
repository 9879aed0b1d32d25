"""Every error trio_runner raises, in one tree split by what the caller must do.

::

    TrioRunnerError
    ├── ConfigError               the configuration is wrong; also a ValueError
    ├── ProtocolError             bytes that break the goridge protocol
    │   ├── LocalProtocolError    we misused it: a bug in trio_runner
    │   └── RemoteProtocolError   the peer (PHP) sent something invalid
    │       ├── FrameCorrupted    header CRC mismatch: stray output on stdout
    │       ├── BadRpcCall        a whole frame that is not an RPC call;
    │       │                     answered with an error, the link goes on
    │       ├── RelayClosed       end of file where a frame was due: the
    │       │                     worker exited or was killed
    │       └── ScriptNotFound    "Could not open input file": the worker
    │                             script path is wrong
    ├── WorkerError               one worker failed; ``pid`` says which
    │   ├── WorkerStartError      it could not be started or handshaken
    │   ├── WorkerCrashed         it died or broke mid-exchange; it was killed
    │   │                         and is being replaced
    │   ├── WorkerTimeout         it ran past exec_ttl; it was killed
    │   └── SoftError             PHP sent an error frame; the worker stays
    ├── NoFreeWorkers             no worker freed up within allocate_timeout
    │   └── QueueFull             the wait queue is full; refused at once
    ├── PoolClosed                the pool is stopping or stopped
    ├── PoolSizeError             the pool cannot grow or shrink that way
    │                             (its last worker, debug mode, 500 workers)
    ├── BindError                 a front cannot listen on its address
    ├── RpcError                  an RPC call failed; the text is what the
    │   │                         caller sees (PHP code matches some texts)
    │   └── RpcUnreachable        no server answers at the RPC address
    ├── LifespanFailed            an ASGI app failed its lifespan start-up
    └── InternalError             a broken invariant: a bug in trio_runner

trio and OS errors are translated into this tree at one boundary each
(``process/worker.py`` for worker I/O, ``config/load.py`` for files), always
with ``raise ... from`` so the original stays in the traceback.
"""

from __future__ import annotations

__all__ = [
    "BadRpcCall",
    "BindError",
    "ConfigError",
    "FrameCorrupted",
    "InternalError",
    "LifespanFailed",
    "LocalProtocolError",
    "NoFreeWorkers",
    "PoolClosed",
    "PoolSizeError",
    "ProtocolError",
    "QueueFull",
    "RelayClosed",
    "RemoteProtocolError",
    "RpcError",
    "RpcUnreachable",
    "ScriptNotFound",
    "SoftError",
    "TrioRunnerError",
    "WorkerCrashed",
    "WorkerCutAtStop",
    "WorkerError",
    "WorkerStartError",
    "WorkerTimeout",
]


class TrioRunnerError(Exception):
    """The root of every error trio_runner raises on purpose."""


class ConfigError(TrioRunnerError, ValueError):
    """The configuration is invalid. The message names the key and the value."""


class ProtocolError(TrioRunnerError):
    """Bytes on a goridge relay that break the protocol."""


class LocalProtocolError(ProtocolError):
    """trio_runner tried to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that are not a valid frame or not valid here."""


class FrameCorrupted(RemoteProtocolError):
    """A frame header failed its CRC check.

    In pipe mode this nearly always means the PHP app wrote to stdout (an
    ``echo`` or ``var_dump`` outside the worker library's output buffer).
    ``data`` holds the offending bytes, cut to a loggable length.
    """

    def __init__(self, message: str, data: bytes = b"") -> None:
        super().__init__(message)
        self.data = data


class BadRpcCall(RemoteProtocolError):
    """An RPC request frame that cannot be a call (wrong option count, ...).

    The frame was whole, so the connection stays usable. ``seq``, ``method``
    and ``codec`` (a flags bit) are what could be read of it, for the error
    reply; ``text`` is the reply's text.
    """

    def __init__(self, text: str, *, seq: int, method: str, codec: int) -> None:
        super().__init__(text)
        self.text = text
        self.seq = seq
        self.method = method
        self.codec = codec


class RelayClosed(RemoteProtocolError):
    """The relay reached end of file between frames, where one was due."""


class ScriptNotFound(RemoteProtocolError):
    """PHP printed "Could not open input file": the worker script is missing."""

    def __init__(self, message: str, output: bytes = b"") -> None:
        super().__init__(message)
        self.output = output


class WorkerError(TrioRunnerError):
    """One worker failed. ``pid`` is its process id, or None before spawn."""

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


class WorkerStartError(WorkerError):
    """A worker could not be spawned or did not complete the handshake.

    ``output`` holds what the process wrote (stdout and stderr) before it
    failed, so the real cause (a PHP fatal error, a missing file) can be
    shown to the operator; the message quotes it. ``summary`` is the
    message without what the log has shown already (each stderr line is
    logged as it arrives), for log records that must not repeat it.
    """

    def __init__(
        self,
        message: str,
        *,
        pid: int | None = None,
        output: str = "",
        summary: str | None = None,
    ) -> None:
        super().__init__(message, pid=pid)
        self.output = output
        self.summary = message if summary is None else summary


class WorkerCrashed(WorkerError):
    """The worker died, closed its relay, or broke the protocol mid-exchange.

    The worker has been killed and the pool replaces it. Only the request
    that was in flight fails. ``output`` holds the last things the worker
    wrote to stderr (a PHP fatal error, usually), for debug responses.
    ``vanished`` is true when the relay simply closed because the process
    died or exited on its own; false when the worker broke the protocol or
    stopped reading, or when trio_runner itself killed it.
    """

    def __init__(
        self,
        message: str,
        *,
        pid: int | None = None,
        output: str = "",
        vanished: bool = False,
    ) -> None:
        super().__init__(message, pid=pid)
        self.output = output
        self.vanished = vanished


class WorkerCutAtStop(WorkerCrashed):
    """The server stopped at once (a forced stop) and killed the worker
    while it ran this request: no fault of the worker's."""


class WorkerTimeout(WorkerError):
    """The request ran past ``exec_ttl``; the worker was killed."""


class SoftError(WorkerError):
    """PHP answered with an error frame. The worker is healthy and stays.

    ``message`` is the text PHP sent; show it to clients only in debug mode.
    """

    def __init__(self, message: str, *, pid: int | None = None) -> None:
        super().__init__(message, pid=pid)
        self.message = message


class NoFreeWorkers(TrioRunnerError):
    """No worker became free within ``allocate_timeout``."""


class QueueFull(NoFreeWorkers):
    """``max_queue_size`` requests are already waiting; refused without waiting."""


class PoolClosed(TrioRunnerError):
    """The pool is shutting down or has shut down."""


class PoolSizeError(TrioRunnerError):
    """A worker cannot be added to or removed from the pool; nothing changed."""


class BindError(TrioRunnerError):
    """A front could not listen on its configured address (in use, say)."""


class RpcError(TrioRunnerError):
    """An RPC call failed. The message is the error text on the wire.

    A method raises it to answer its caller with an error reply carrying
    exactly this text; the RPC client raises it when a reply is an error.
    """


class RpcUnreachable(RpcError):
    """The RPC client could not connect: nothing listens at the address."""


class LifespanFailed(TrioRunnerError):
    """An ASGI app answered ``lifespan.startup.failed``; the message is its own."""


class InternalError(TrioRunnerError):
    """An invariant of trio_runner itself was broken. Please report it."""
