"""The rules that keep files outside ``[http.static] dir`` out of reach.

Every attempt here must be a miss (None), never a file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trio_runner.http.middleware.docroot import (
    DocumentRoot,
    scope_segments,
    url_segments,
)


@pytest.mark.parametrize(
    ("raw", "segments"),
    [
        (b"/index.html", ["index.html"]),
        (b"/css/site.css", ["css", "site.css"]),
        (b"/a%20b.txt", ["a b.txt"]),
        (b"/%C3%BC.txt", ["ü.txt"]),
        (b"/%252e%252e/x.txt", ["%2e%2e", "x.txt"]),  # decoded once only
        (b"/", None),
        (b"", None),
        (b"index.html", None),
        (b"/css/", None),
        (b"//etc/passwd", None),
        (b"/../secret.txt", None),
        (b"/css/../../secret.txt", None),
        (b"/./index.html", None),
        (b"/%2e%2e/secret.txt", None),
        (b"/%2E%2E/secret.txt", None),
        (b"/.%2e/secret.txt", None),
        (b"/%2e/index.html", None),
        (b"/..%2fsecret.txt", None),
        (b"/css%2f..%2f..%2fsecret.txt", None),
        (b"/..%5csecret.txt", None),
        (b"/..\\secret.txt", None),
        (b"/index.html%00.png", None),
        (b"/index.html\x00.png", None),
        (b"/a%0ab.txt", None),
        (b"/%ff.txt", None),  # not UTF-8
    ],
)
def test_url_segments_refuse_every_climb(
    raw: bytes, segments: list[str] | None
) -> None:
    assert url_segments(raw) == segments


def test_scope_segments_quote_a_decoded_path_again() -> None:
    # A server that gives no raw_path has decoded %2f into "/" already; it
    # can then only act as a separator, never as part of a name.
    assert scope_segments(None, "/css/../../secret.txt") is None
    assert scope_segments(None, "/a b%.txt") == ["a b%.txt"]
    assert scope_segments(b"/x%2fy.txt", "/x/y.txt") is None


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A document root ``public`` next to a secret, with every trap in it."""
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "secret.php").write_text("<?php // secret")
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "css" / "site.css").write_text("body {}")
    (public / "index.html").write_text("<h1>hi</h1>")
    (public / "worker.php").write_text("<?php // the app")
    (public / "UPPER.PHP").write_text("<?php // the app")
    (public / "noext").write_text("no extension")
    (public / "trailing.").write_text("trailing dot")
    (public / ".env").write_text("DB_PASSWORD=x")
    (public / ".hidden").mkdir()
    (public / ".hidden" / "x.txt").write_text("hidden")
    (public / ".well-known").mkdir()
    (public / ".well-known" / "security.txt").write_text("Contact: x")
    (public / "dir.txt").mkdir()
    (public / "link_in.css").symlink_to("css/site.css")
    (public / "link_out.txt").symlink_to(tmp_path / "secret.txt")
    (public / "link_php.png").symlink_to("worker.php")
    (public / "link_dir").symlink_to(tmp_path)
    (public / "link_hidden.txt").symlink_to(".hidden/x.txt")
    os.mkfifo(public / "fifo.txt")
    return public


def served(root: DocumentRoot, *segments: str) -> str | None:
    opened = root.open_file(list(segments))
    if opened is None:
        return None
    try:
        return os.pread(opened.fd, 100, 0).decode()
    finally:
        os.close(opened.fd)


@pytest.mark.parametrize(
    ("segments", "content"),
    [
        (["index.html"], "<h1>hi</h1>"),
        (["css", "site.css"], "body {}"),
        (["link_in.css"], "body {}"),
        ([".well-known", "security.txt"], "Contact: x"),
    ],
)
def test_document_root_serves_files_inside(
    tree: Path, segments: list[str], content: str
) -> None:
    root = DocumentRoot.from_dir(tree, forbid=[".php"])
    assert served(root, *segments) == content


@pytest.mark.parametrize(
    "segments",
    [
        pytest.param(["worker.php"], id="forbidden extension"),
        pytest.param(["UPPER.PHP"], id="forbidden extension in capitals"),
        pytest.param(["link_php.png"], id="symlink to a forbidden extension"),
        pytest.param(["link_out.txt"], id="symlink out of the root"),
        pytest.param(["link_dir", "secret.txt"], id="symlinked dir out of the root"),
        pytest.param(["link_dir", "secret.php"], id="symlinked dir to php"),
        pytest.param(["link_hidden.txt"], id="symlink to a hidden file"),
        pytest.param(["..", "secret.txt"], id="dot-dot"),
        pytest.param(["noext"], id="no extension"),
        pytest.param(["trailing."], id="a bare dot"),
        pytest.param([".env"], id="hidden file"),
        pytest.param([".hidden", "x.txt"], id="hidden directory"),
        pytest.param(["css", ".well-known", "x.txt"], id="well-known not at the top"),
        pytest.param(["dir.txt"], id="a directory"),
        pytest.param(["fifo.txt"], id="a fifo"),
        pytest.param(["missing.txt"], id="no such file"),
        pytest.param([], id="the root itself"),
    ],
)
def test_document_root_refuses(tree: Path, segments: list[str]) -> None:
    root = DocumentRoot.from_dir(tree, forbid=[".php"])
    assert served(root, *segments) is None


def test_document_root_allow_list_and_forbid_wins(tree: Path) -> None:
    root = DocumentRoot.from_dir(tree, forbid=[".php", ".css"], allow=[".css", ".HTML"])
    assert served(root, "index.html") == "<h1>hi</h1>"
    assert served(root, "css", "site.css") is None  # in both lists: forbidden
    assert served(root, ".well-known", "security.txt") is None  # not allowed


def test_document_root_refuses_files_it_cannot_read(tree: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    (tree / "locked.txt").write_text("locked")
    (tree / "locked.txt").chmod(0)
    root = DocumentRoot.from_dir(tree)
    assert served(root, "locked.txt") is None
