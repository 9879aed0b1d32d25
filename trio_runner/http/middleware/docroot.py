"""The static document root: which file, if any, a URL path may name.

XXX: this module is the boundary that keeps the server from handing out
files it must not (the app's PHP sources, ``.env``, ``/etc/passwd``). Read
every rule below before changing a line; each one has a test in
``tests/http/middleware/test_docroot.py``.

A URL path maps to a file only when all of these hold, else it is a *miss*
(the request goes on to PHP):

1. The raw path is split on ``/`` *before* percent-decoding, and each
   segment is decoded once. A segment that is empty (``//``, a trailing
   ``/``), ``.`` or ``..``, or that decodes to something holding ``/``,
   ``\\``, NUL or another control character, is refused: ``%2e%2e``,
   ``%2f`` and ``..%5c`` can never climb out of the root.
2. No segment is hidden (starts with ``.``: ``.env``, ``.git/config``),
   except ``.well-known`` at the top.
3. The file name has an extension, not in ``forbid`` and, when ``allow``
   is not empty, in ``allow`` (lower-cased; ``forbid`` wins). A name
   without an extension is never served, as in RoadRunner.
4. The path with every symlink resolved is still inside the root, and the
   resolved name passes rules 2 and 3 too: a link ``logo.png`` pointing at
   ``worker.php`` is refused.
5. What is opened is a regular file (no directory listing, no FIFO or
   device), opened without following a final symlink, so a link swapped
   in after the check is not followed.

Lookups touch the file system, so ``open_file`` is meant to run in a
worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote, unquote_to_bytes

import attrs

__all__ = ["DocumentRoot", "OpenedFile", "scope_segments", "url_segments"]

_WELL_KNOWN = ".well-known"
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
    | getattr(os, "O_CLOEXEC", 0)
)


def url_segments(raw_path: bytes) -> list[str] | None:
    """The decoded segments of a raw URL path, None when any is refused.

    See rule 1 of the module docstring; rule 2 is ``DocumentRoot``'s.
    """
    if not raw_path.startswith(b"/"):
        return None
    segments = []
    for raw in raw_path[1:].split(b"/"):
        decoded = unquote_to_bytes(raw)
        if decoded in (b"", b".", b".."):
            return None
        if any(byte < 0x20 or byte == 0x7F or byte in b"/\\" for byte in decoded):
            return None
        try:
            segments.append(decoded.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return segments


def scope_segments(raw_path: bytes | None, path: str) -> list[str] | None:
    """``url_segments`` of an ASGI scope's ``raw_path``, or of its ``path``.

    ``path`` is already decoded, so it is quoted again first: a ``%2f``
    the server decoded to ``/`` can then only act as a separator.
    """
    if raw_path is None:
        raw_path = quote(path, safe="/").encode("ascii")
    return url_segments(raw_path)


@attrs.frozen
class OpenedFile:
    """A regular file opened for reading; the caller closes ``fd``."""

    fd: int
    name: str
    size: int
    mtime: float
    mtime_ns: int
    device: int
    inode: int


@attrs.frozen
class DocumentRoot:
    """A directory and the extension rules for what may be served from it.

    ``root`` must be absolute with its symlinks resolved (``from_dir``).
    """

    root: str
    forbid: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()

    @classmethod
    def from_dir(
        cls, directory: Path, forbid: Iterable[str] = (), allow: Iterable[str] = ()
    ) -> DocumentRoot:
        return cls(
            os.path.realpath(directory),
            frozenset(ext.lower() for ext in forbid),
            frozenset(ext.lower() for ext in allow),
        )

    def may_serve(self, segments: Sequence[str]) -> bool:
        """Rules 2 and 3, without touching the file system."""
        if not segments:
            return False
        for index, segment in enumerate(segments):
            if segment.startswith(".") and not (index == 0 and segment == _WELL_KNOWN):
                return False
        extension = os.path.splitext(segments[-1])[1].lower()
        if extension in ("", "."):
            return False
        if extension in self.forbid:
            return False
        return not self.allow or extension in self.allow

    def open_file(self, segments: Sequence[str]) -> OpenedFile | None:
        """Open the file ``segments`` name, or None for a miss. Blocking."""
        if not self.may_serve(segments):
            return None
        resolved = os.path.realpath(os.path.join(self.root, *segments))
        if os.path.commonpath([self.root, resolved]) != self.root:
            return None
        inside = os.path.relpath(resolved, self.root).split(os.sep)
        if inside == ["."] or not self.may_serve(inside):
            return None
        try:
            fd = os.open(resolved, _OPEN_FLAGS)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
        except OSError:
            os.close(fd)
            return None
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return None
        return OpenedFile(
            fd=fd,
            name=inside[-1],
            size=info.st_size,
            mtime=info.st_mtime,
            mtime_ns=info.st_mtime_ns,
            device=info.st_dev,
            inode=info.st_ino,
        )
