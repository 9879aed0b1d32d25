"""Byte streams for the hot path: they yield to trio only when they must wait.

Every trio stream operation is a checkpoint: ``send_all`` on a socket or a
pipe passes through the scheduler once even when the kernel took the bytes
at once, and ``receive_some`` does the same when data was waiting. On the
path of one HTTP request (client socket, worker pipe, worker pipe, client
socket) those round trips cost about as much as everything else the server
does, so the two classes here skip them:

- ``send_nowait`` writes what the kernel takes now and returns the count;
  ``send_all`` waits (``wait_writable``) only for what is left;
- ``receive_some`` reads at once after a read that filled the buffer (more
  is likely waiting) and otherwise waits for the descriptor first, which
  is where the task would end up anyway.

So an operation that does not block is not a checkpoint: a caller that
loops must reach a real wait somewhere, as the HTTP connection (waiting
for the next request) and the worker (waiting for PHP's answer) do. Both
implement ``trio.abc.HalfCloseableStream`` and can stand in for trio's own
streams; no other task may use them at the same time (there is no
conflict detection).
"""

from __future__ import annotations

import abc
import errno
import os
import socket

import trio

__all__ = ["DirectStream", "PipeStream", "SocketStream"]

# What trio's low-level waits take: a socket, or a file descriptor.
Waitable = socket.socket | int

_DEFAULT_READ = 64 * 1024


class DirectStream(trio.abc.HalfCloseableStream):
    """What both kinds share: the read heuristic and the write loop."""

    def __init__(self, readable: Waitable, writable: Waitable) -> None:
        # What trio's wait_readable and wait_writable wait on, called
        # directly: a coroutine frame of ours around them would be resumed
        # through on every wait.
        self._readable = readable
        self._writable = writable
        self._read_filled = False
        self._closed = False

    @abc.abstractmethod
    def _write(self, data: memoryview) -> int:
        """One non-blocking write; raises BlockingIOError when full."""

    @abc.abstractmethod
    def _read(self, max_bytes: int) -> bytes:
        """One non-blocking read; raises BlockingIOError when empty."""

    @abc.abstractmethod
    def receive_fileno(self) -> int:
        """The descriptor ``receive_some`` reads, for ``poll``."""

    def send_nowait(self, data: bytes | bytearray | memoryview) -> int:
        """Write what the kernel takes now; return how many bytes that was.

        Raises:
            trio.ClosedResourceError: this stream was closed.
            trio.BrokenResourceError: the peer is gone.
        """
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        try:
            return self._write(memoryview(data))
        except BlockingIOError:
            return 0
        except OSError as error:
            raise self._broken(error) from error

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        sent = self.send_nowait(view)
        while sent < len(view):
            await trio.lowlevel.wait_writable(self._writable)
            sent += self.send_nowait(view[sent:])

    async def wait_send_all_might_not_block(self) -> None:
        await trio.lowlevel.wait_writable(self._writable)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        max_bytes = max_bytes or _DEFAULT_READ
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        if not self._read_filled:
            await trio.lowlevel.wait_readable(self._readable)
        while True:
            try:
                data = self._read(max_bytes)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(self._readable)
                continue
            except OSError as error:
                raise self._broken(error) from error
            self._read_filled = len(data) == max_bytes
            return data

    def _broken(self, error: OSError) -> Exception:
        if error.errno == errno.EBADF or self._closed:
            return trio.ClosedResourceError("the stream was closed")
        return trio.BrokenResourceError(error)


class SocketStream(DirectStream):
    """A connected non-blocking stdlib socket, which this stream owns."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(sock, sock)
        sock.setblocking(False)
        self.socket = sock

    def receive_fileno(self) -> int:
        return self.socket.fileno()

    def _write(self, data: memoryview) -> int:
        return self.socket.send(data)

    def _read(self, max_bytes: int) -> bytes:
        return self.socket.recv(max_bytes)

    async def send_eof(self) -> None:
        await trio.lowlevel.checkpoint()
        if self._closed:
            raise trio.ClosedResourceError("the stream was closed")
        try:
            self.socket.shutdown(socket.SHUT_WR)
        except OSError as error:
            raise self._broken(error) from error

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            trio.lowlevel.notify_closing(self.socket)
            self.socket.close()
        await trio.lowlevel.checkpoint()


class PipeStream(DirectStream):
    """A child's stdin and stdout (trio's ``FdStream``s, which own the fds)."""

    def __init__(
        self,
        send_stream: trio.lowlevel.FdStream,
        receive_stream: trio.lowlevel.FdStream,
    ) -> None:
        super().__init__(receive_stream.fileno(), send_stream.fileno())
        self._send_stream = send_stream
        self._receive_stream = receive_stream
        self._send_fd = send_stream.fileno()
        self._receive_fd = receive_stream.fileno()

    def receive_fileno(self) -> int:
        return self._receive_fd

    def _write(self, data: memoryview) -> int:
        return os.write(self._send_fd, data)

    def _read(self, max_bytes: int) -> bytes:
        return os.read(self._receive_fd, max_bytes)

    async def send_eof(self) -> None:
        await self._send_stream.aclose()

    async def aclose(self) -> None:
        self._closed = True
        try:
            await self._send_stream.aclose()
        finally:
            await self._receive_stream.aclose()
