"""A raw HTTP/2 client on trio, for what httpx hides: frames and error codes.

``open_h2`` connects (h2c with prior knowledge, or TLS with ALPN ``h2``),
and the ``H2Client`` records every h2 event by stream, acknowledges the data
it receives, and sends request bodies as flow control allows. Tests wait on
the events with ``wait_for``; bound them with ``trio.fail_after``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import attrs
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import trio

Headers = Sequence[tuple[str, str]]


@attrs.define(eq=False)
class Answer:
    """What came back on one stream."""

    informational: list[list[tuple[bytes, bytes]]] = attrs.field(factory=list)
    headers: list[tuple[bytes, bytes]] | None = None
    body: bytes = b""
    trailers: list[tuple[bytes, bytes]] | None = None
    ended: bool = False
    reset: h2.errors.ErrorCodes | int | None = None

    @property
    def status(self) -> int:
        assert self.headers is not None, "no response headers yet"
        return int(dict(self.headers)[b":status"])

    def header(self, name: bytes) -> list[bytes]:
        assert self.headers is not None
        return [value for key, value in self.headers if key == name]


@attrs.define(eq=False)
class H2Client:
    stream: trio.abc.Stream
    connection: h2.connection.H2Connection
    authority: str
    scheme: str
    answers: dict[int, Answer] = attrs.field(factory=dict)
    settings: dict[int, int] = attrs.field(factory=dict)
    goaway: h2.events.ConnectionTerminated | None = None
    closed: bool = False

    def answer(self, stream_id: int) -> Answer:
        return self.answers.setdefault(stream_id, Answer())

    async def request(
        self,
        method: str,
        path: str,
        headers: Headers = (),
        *,
        end_stream: bool = True,
    ) -> int:
        stream_id: int = self.connection.get_next_available_stream_id()
        self.connection.send_headers(
            stream_id,
            [
                (":method", method),
                (":path", path),
                (":scheme", self.scheme),
                (":authority", self.authority),
                *headers,
            ],
            end_stream=end_stream,
        )
        self.answer(stream_id)
        await self.flush()
        return stream_id

    async def send_body(self, stream_id: int, data: bytes) -> int:
        """Send ``data`` then END_STREAM; stop early if the stream is reset.

        Returns how many bytes were sent.
        """
        sent = 0
        while sent < len(data) and self.answer(stream_id).reset is None:
            try:
                window = min(
                    self.connection.local_flow_control_window(stream_id),
                    self.connection.max_outbound_frame_size,
                )
            except h2.exceptions.StreamClosedError:
                break
            if window <= 0:
                await self.receive()
                continue
            piece = data[sent : sent + window]
            self.connection.send_data(stream_id, piece)
            sent += len(piece)
            await self.flush()
        if self.answer(stream_id).reset is None:
            self.connection.end_stream(stream_id)
            await self.flush()
        return sent

    async def flush(self) -> None:
        data = self.connection.data_to_send()
        if data:
            await self.stream.send_all(data)

    async def receive(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            self.closed = True
            raise EOFError("the server closed the connection")
        for event in self.connection.receive_data(data):
            self._record(event)
        await self.flush()

    async def wait_for(self, done: Callable[[H2Client], bool]) -> None:
        while not done(self):
            await self.receive()

    async def wait_ended(self, stream_id: int) -> Answer:
        """Wait until the stream ends or is reset."""
        answer = self.answer(stream_id)
        await self.wait_for(lambda _: answer.ended or answer.reset is not None)
        return answer

    def _record(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.InformationalResponseReceived):
            self.answer(event.stream_id).informational.append(list(event.headers))
        elif isinstance(event, h2.events.ResponseReceived):
            self.answer(event.stream_id).headers = list(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            self.answer(event.stream_id).body += event.data
            self.connection.acknowledge_received_data(
                event.flow_controlled_length, event.stream_id
            )
        elif isinstance(event, h2.events.TrailersReceived):
            self.answer(event.stream_id).trailers = list(event.headers)
        elif isinstance(event, h2.events.StreamEnded):
            self.answer(event.stream_id).ended = True
        elif isinstance(event, h2.events.StreamReset):
            answer = self.answer(event.stream_id)
            if answer.reset is None:  # the first reset is the one that counts
                answer.reset = event.error_code
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            for code, change in event.changed_settings.items():
                self.settings[int(code)] = change.new_value


@asynccontextmanager
async def open_h2(
    address: str, *, tls: ssl.SSLContext | None = None
) -> AsyncIterator[H2Client]:
    """An HTTP/2 connection to ``host:port``: h2c, or TLS when ``tls`` is given."""
    host, _, port = address.rpartition(":")
    stream: trio.abc.Stream = await trio.open_tcp_stream(host.strip("[]"), int(port))
    if tls is not None:
        tls.set_alpn_protocols(["h2"])
        ssl_stream = trio.SSLStream(stream, tls, server_hostname="localhost")
        await ssl_stream.do_handshake()
        assert ssl_stream.selected_alpn_protocol() == "h2"
        stream = ssl_stream
    connection = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    connection.initiate_connection()
    client = H2Client(stream, connection, address, "https" if tls else "http")
    async with stream:
        await client.flush()
        yield client
