"""An in-memory PHP worker that speaks the real goridge protocol.

``FakeSpawner`` hands the pool workers whose "process" is a trio task on the
other end of a memory stream. The task decodes real frames and answers with
real frames, so everything above the byte stream (worker lifecycle, pool,
fronts) runs exactly as with PHP, under the autojump clock if wanted.

A behaviour is an async function ``(php, payload) -> None`` that answers the
request by calling ``php.respond`` / ``php.error`` / ``php.stop_me`` /
``php.crash``; the default echoes the request.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable

import attrs
import trio
import trio.testing

from trio_runner.errors import RemoteProtocolError, WorkerStartError
from trio_runner.process.output import OutputTail
from trio_runner.process.relay import handshake
from trio_runner.process.spawn import Spawned
from trio_runner.protocol import FrameDecoder, Payload, StreamFlag, encode_frame

Behaviour = Callable[["FakePHP", Payload], Awaitable[None]]

_pids = itertools.count(10_000)


class FakeProcess:
    """Stands in for ``trio.Process``: a pid, an exit code, kill and wait."""

    def __init__(self) -> None:
        self.pid = next(_pids)
        self.returncode: int | None = None
        self.scope = trio.CancelScope()
        self._exited = trio.Event()
        self.killed = False

    def exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
            self.scope.cancel()
            self._exited.set()

    def kill(self) -> None:
        self.killed = True
        self.exit(-9)

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode


class FakePHP:
    """The PHP end of one fake worker."""

    def __init__(self, stream: trio.abc.Stream, process: FakeProcess) -> None:
        self.stream = stream
        self.process = process
        self.decoder = FrameDecoder()
        self.requests: list[Payload] = []
        self.ignore_stop = False

    async def read_frame(self) -> tuple[int, tuple[int, ...], bytes, int]:
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                return frame.flags, frame.options, frame.payload, frame.stream
            data = await self.stream.receive_some(65536)
            if not data:
                raise EOFError
            self.decoder.feed(data)

    async def respond(
        self,
        context: bytes = b"",
        body: bytes = b"",
        *,
        more: bool = False,
        ping: bool = False,
        flags: int = 0,
    ) -> None:
        stream = (StreamFlag.STREAM if more else 0) | (StreamFlag.PING if ping else 0)
        await self.stream.send_all(
            encode_frame(flags, context + body, (len(context),), int(stream))
        )

    async def error(self, message: str) -> None:
        await self.stream.send_all(encode_frame(0x40, message.encode()))

    async def stop_me(self) -> None:
        await self.respond(b'{"stop":true}')

    async def write_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    def crash(self, code: int = 255) -> None:
        self.process.exit(code)

    async def serve(self, behaviour: Behaviour) -> None:
        flags, _, payload, _ = await self.read_frame()
        assert flags & 0x01 and json.loads(payload)["pid"] > 0
        await self.stream.send_all(
            encode_frame(0x01, json.dumps({"pid": self.process.pid}).encode())
        )
        while True:
            flags, options, data, stream = await self.read_frame()
            if flags & 0x01:
                if json.loads(data).get("stop") and not self.ignore_stop:
                    self.process.exit(0)
                    return
                continue
            if stream & (StreamFlag.STOP | StreamFlag.PONG):
                continue  # stray, as PHP ignores them between requests
            split = options[0]
            request = Payload(data[:split], data[split:], flags)
            self.requests.append(request)
            await behaviour(self, request)


async def echo(php: FakePHP, payload: Payload) -> None:
    await php.respond(payload.context, payload.body)


@attrs.define
class FakeSpawner:
    """Spawns fake workers running ``behaviour``; records what it started."""

    behaviour: Behaviour = echo
    boot: Callable[[FakeProcess], Awaitable[None]] | None = None
    started: list[FakeProcess] = attrs.field(factory=list)
    php: list[FakePHP] = attrs.field(factory=list)
    command: str = "php fake.php"
    # Set when a worker's stderr reaches its end; None: at once.
    drained: trio.Event | None = None
    # Workers that never act on the stop frame (a PHP loop that ignores it).
    ignore_stop: bool = False

    async def spawn(
        self,
        *,
        task_nursery: trio.Nursery,
        timeout: float,  # noqa: ASYNC109
    ) -> Spawned:
        process = FakeProcess()
        self.started.append(process)
        server_end, php_end = trio.testing.memory_stream_pair()
        php = FakePHP(php_end, process)
        php.ignore_stop = self.ignore_stop
        self.php.append(php)

        async def run_php() -> None:
            with process.scope:
                if self.boot is not None:
                    await self.boot(process)
                try:
                    await php.serve(self.behaviour)
                except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
            await php_end.aclose()
            process.exit(0)

        task_nursery.start_soon(run_php)
        try:
            with trio.fail_after(timeout):
                link = await handshake(server_end)
        except (RemoteProtocolError, trio.TooSlowError) as exc:
            process.kill()
            raise WorkerStartError(
                f"fake worker failed to start: {exc!r}", pid=process.pid
            ) from exc
        drained = self.drained
        if drained is None:
            drained = trio.Event()
            drained.set()  # a fake writes nothing to stderr
        return Spawned(process, link, OutputTail(), drained)

    @property
    def alive(self) -> list[FakeProcess]:
        return [process for process in self.started if process.returncode is None]
