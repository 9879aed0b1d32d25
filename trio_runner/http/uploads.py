"""Uploaded files: each file part of a multipart body in a temp file for PHP.

A ``TempFiles`` store belongs to one request. Each file part is streamed
into ``<dir>/upload<random>`` as it arrives, through a buffer of at most
``WRITE_CHUNK`` bytes written from a worker thread, so neither memory nor
the event loop grows with the file. The store deletes every file it made
when its ``open_temp_files`` block ends: after the response has been
written, and as well when the worker failed, the client went away or the
request was refused. A file that turns out unwanted (too large, a failed
write) is deleted at once. Deleting runs in a thread too: unlinking a
large file takes a while (about 20 ms for 200 MB on ext4).

Each file ends as an ``UploadedFile``, the leaf of the uploads tree
(PROTOCOL.md 4.5), with PHP's error codes: 8 for an extension that is
forbidden or not allowed (checked first, lower-cased, with the dot), 4 for
an empty file input, 6 when no temp file can be made, 7 when writing it
fails, and 1 (PHP's "larger than upload_max_filesize") for a file over
``max_file_size``, a limit RoadRunner does not have. A file with an error
has no temp file and size 0.
"""

from __future__ import annotations

import enum
import logging
import os
import pwd
import tempfile
from collections.abc import Iterable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Protocol

import attrs
import trio

from trio_runner.errors import ConfigError
from trio_runner.http.forms import decode_text

__all__ = [
    "WRITE_CHUNK",
    "FileReceiver",
    "TempFiles",
    "UploadError",
    "UploadOptions",
    "UploadedFile",
    "open_temp_files",
]

logger = logging.getLogger(__name__)

WRITE_CHUNK = 256 * 1024
"""Bytes gathered before each write: one thread hop per 256 KiB."""

_MB = 1024 * 1024

# How long a request's end may wait for its temp files to be deleted; the
# deletion goes on in its thread if it takes longer.
_DELETE_TIMEOUT = 10.0


class UploadError(enum.IntEnum):
    """PHP's ``UPLOAD_ERR_*`` codes that trio_runner gives."""

    OK = 0
    INI_SIZE = 1
    NO_FILE = 4
    NO_TMP_DIR = 6
    CANT_WRITE = 7
    EXTENSION = 8


@attrs.frozen
class UploadedFile:
    """One leaf of the uploads tree.

    Attributes:
        name: the client's file name, without directories.
        mime: the part's Content-Type, as the client sent it.
        size: bytes in the temp file (0 on error).
        error: the PHP upload error code.
        tmp_name: the temp file's absolute path, ``""`` on error.
    """

    name: str
    mime: str
    size: int = 0
    error: UploadError = UploadError.OK
    tmp_name: str = ""

    def to_data(self) -> dict[str, str | int]:
        """The JSON object PHP reads, keys in RoadRunner's order."""
        return {
            "name": self.name,
            "mime": self.mime,
            "size": self.size,
            "error": int(self.error),
            "tmpName": self.tmp_name,
        }


class _UploadsSection(Protocol):
    @property
    def dir(self) -> str: ...
    @property
    def forbid(self) -> tuple[str, ...]: ...
    @property
    def allow(self) -> tuple[str, ...]: ...
    @property
    def max_file_size(self) -> int: ...


@attrs.frozen(kw_only=True)
class UploadOptions:
    """Where temp files go and which files are taken.

    Attributes:
        dir: the directory for temp files; "" is the system temp dir
            (``$TMPDIR``, else ``/tmp``), read when a request needs it.
        forbid: extensions refused, lower-case with the dot; wins over allow.
        allow: the only extensions taken, unless empty (then all are).
        max_file_size: the most bytes one file may have; 0 is no limit.
        owner: ``(uid, gid)`` to give each temp file (``server.user``), so
            a worker running as another user can read it.
    """

    dir: str = ""
    forbid: frozenset[str] = frozenset({".php", ".exe", ".bat"})
    allow: frozenset[str] = frozenset()
    max_file_size: int = 0
    owner: tuple[int, int] | None = None

    @classmethod
    def from_config(
        cls,
        uploads: _UploadsSection,
        *,
        working_dir: str | os.PathLike[str] | None = None,
        user: str = "",
    ) -> UploadOptions:
        """From ``[http.uploads]``; a relative dir is under ``working_dir``.

        Raises:
            ConfigError: ``user`` does not exist.
        """
        directory = uploads.dir
        if directory and working_dir is not None:
            directory = str(Path(working_dir) / directory)
        owner = None
        if user:
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                raise ConfigError(
                    f"server.user {user!r} does not exist on this machine"
                ) from None
            owner = (entry.pw_uid, entry.pw_gid)
        return cls(
            dir=directory,
            forbid=frozenset(ext.lower() for ext in uploads.forbid),
            allow=frozenset(ext.lower() for ext in uploads.allow),
            max_file_size=uploads.max_file_size * _MB,
            owner=owner,
        )

    def extension_allowed(self, filename: str) -> bool:
        extension = _extension(filename).lower()
        if extension in self.forbid:
            return False
        return not self.allow or extension in self.allow


def _extension(filename: str) -> str:
    """From the last dot on, as Go's ``path.Ext``: ``.htaccess`` included."""
    dot = filename.rfind(".")
    return filename[dot:] if dot >= 0 else ""


@attrs.define(eq=False)
class TempFiles:
    """The temp files of one request; see ``open_temp_files``."""

    options: UploadOptions
    _paths: list[str] = attrs.field(factory=list, init=False)
    _receivers: list[FileReceiver] = attrs.field(factory=list, init=False)
    _reported: bool = attrs.field(default=False, init=False)

    @property
    def paths(self) -> list[str]:
        """The temp files made so far and not yet deleted."""
        return list(self._paths)

    async def receive(self, filename: bytes, mime: bytes) -> FileReceiver:
        """Start a file part: the receiver takes its bytes as they come.

        Never raises for a file it cannot keep; the error code says why.
        """
        name, content_type = decode_text(filename), decode_text(mime)
        receiver = FileReceiver(self, UploadedFile(name, content_type))
        if not filename:
            receiver.refuse(UploadError.NO_FILE)
        elif not self.options.extension_allowed(name):
            receiver.refuse(UploadError.EXTENSION)
        else:
            try:
                receiver.fd, receiver.path = await trio.to_thread.run_sync(
                    _make_temp_file, self.options.dir, self.options.owner
                )
            except OSError as error:
                self._report(error)
                receiver.refuse(UploadError.NO_TMP_DIR)
            else:
                self._paths.append(receiver.path)
                self._receivers.append(receiver)
        return receiver

    def close_all(self) -> None:
        """Close the files of parts cut short (the client left, a limit)."""
        for receiver in self._receivers:
            receiver.close()
        self._receivers.clear()

    async def delete(self, paths: Iterable[str]) -> None:
        """Delete temp files (in a thread); missing ones are fine."""
        paths = list(paths)
        self._paths = [path for path in self._paths if path not in paths]
        if paths:
            failures = await trio.to_thread.run_sync(
                _unlink_all, paths, abandon_on_cancel=True
            )
            for path, error in failures:
                logger.warning(
                    "could not delete the upload temp file %s: %s",
                    path,
                    error.strerror or error,
                    extra={"reason": "upload_cleanup"},
                )

    def _report(self, error: OSError) -> None:
        if not self._reported:  # once per request is enough to act on
            self._reported = True
            logger.error(
                "cannot create upload temp files in %s: %s (set http.uploads.dir "
                "to a writable directory)",
                self.options.dir or tempfile.gettempdir(),
                error.strerror or error,
                extra={"reason": "upload_tmp_dir"},
            )


@attrs.define(eq=False)
class FileReceiver:
    """Writes one file part into its temp file, or drops it with an error."""

    store: TempFiles
    file: UploadedFile
    fd: int = -1
    path: str = ""
    size: int = 0
    _pending: list[bytes] = attrs.field(factory=list)
    _pending_size: int = 0

    async def write(self, data: bytes) -> None:
        """Take the next bytes; they reach the file in ``WRITE_CHUNK`` pieces."""
        if self.fd < 0:
            return  # the file is refused: its bytes go nowhere
        limit = self.store.options.max_file_size
        self.size += len(data)
        if limit and self.size > limit:
            await self.fail(UploadError.INI_SIZE)
            return
        self._pending.append(data)
        self._pending_size += len(data)
        if self._pending_size >= WRITE_CHUNK:
            await self._flush()

    async def finish(self) -> UploadedFile:
        """Write what is left, close the file, and say how it went."""
        if self.fd >= 0:
            await self._flush()
        if self.fd >= 0:
            if not self.close():
                await self.fail(UploadError.CANT_WRITE)
                return self.file
            self.file = attrs.evolve(self.file, size=self.size, tmp_name=self.path)
        return self.file

    def close(self) -> bool:
        """Close the temp file if it is open; False if closing failed."""
        if self.fd < 0:
            return True
        fd, self.fd = self.fd, -1
        try:
            os.close(fd)
        except OSError:
            return False
        return True

    def refuse(self, error: UploadError) -> None:
        """Take no file at all, for the reason ``error`` gives."""
        self.file = attrs.evolve(self.file, error=error, size=0, tmp_name="")

    async def fail(self, error: UploadError) -> None:
        """Give up on the file: close and delete it, drop its bytes."""
        self.close()
        self._pending.clear()
        self.refuse(error)
        if self.path:
            path, self.path = self.path, ""
            await self.store.delete([path])

    async def _flush(self) -> None:
        data = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        try:
            await trio.to_thread.run_sync(_write_all, self.fd, data)
        except OSError as error:
            logger.warning(
                "could not write the upload temp file %s: %s",
                self.path,
                error.strerror or error,
                extra={"reason": "upload_write"},
            )
            await self.fail(UploadError.CANT_WRITE)


def _make_temp_file(directory: str, owner: tuple[int, int] | None) -> tuple[int, str]:
    fd, path = tempfile.mkstemp(prefix="upload", dir=directory or None)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
    except OSError:
        os.close(fd)
        os.unlink(path)
        raise
    return fd, os.path.abspath(path)


def _unlink_all(paths: list[str]) -> list[tuple[str, OSError]]:
    failures = []
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as error:
            failures.append((path, error))
    return failures


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def open_temp_files(options: UploadOptions) -> AbstractAsyncContextManager[TempFiles]:
    """A request's temp file store; every file in it is closed and deleted
    on exit.

    The deletion runs however the block ends, shielded from cancellation;
    past ``_DELETE_TIMEOUT`` it goes on in its thread while the block ends.
    """
    return _TempFilesBlock(TempFiles(options))


class _TempFilesBlock:
    # A class rather than a generator: every HTTP request enters one, and
    # most never make a file.
    __slots__ = ("_store",)

    def __init__(self, store: TempFiles) -> None:
        self._store = store

    async def __aenter__(self) -> TempFiles:
        return self._store

    async def __aexit__(self, *exc_info: object) -> None:
        store = self._store
        store.close_all()
        if not store.paths:
            return
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + _DELETE_TIMEOUT
            await store.delete(store.paths)
