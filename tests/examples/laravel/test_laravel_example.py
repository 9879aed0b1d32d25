"""The Laravel example (examples/laravel) against Debian's Laravel 8 packages.

These need ``php`` and ``php-laravel-framework``; they are skipped without
them. They do not need the HTTP front: the worker is driven directly over
its stdin/stdout with the JSON context codec.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from trio_runner.protocol import FrameDecoder, encode_frame
from trio_runner.protocol.frame import Flag, Frame

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "laravel"
LIBRARY = EXAMPLE.parents[1] / "trio_runner" / "php" / "autoload.php"

pytestmark = [
    pytest.mark.php,
    pytest.mark.skipif(shutil.which("php") is None, reason="needs php"),
    pytest.mark.skipif(
        not Path("/usr/share/php/Illuminate/autoload.php").is_file(),
        reason="needs Debian's php-laravel-framework",
    ),
]


def _php_files() -> list[Path]:
    return sorted(
        p
        for p in EXAMPLE.rglob("*.php")
        if "storage" not in p.relative_to(EXAMPLE).parts
    )


@pytest.mark.parametrize(
    "path", _php_files(), ids=lambda p: str(p.relative_to(EXAMPLE))
)
def test_php_file_parses(path: Path) -> None:
    result = subprocess.run(
        ["php", "-l", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("session_driver", ["cookie", "file"])
def test_smoke_script(session_driver: str) -> None:
    """200+ requests in one process: responses, no state leaks, flat memory."""
    result = subprocess.run(
        ["php", str(EXAMPLE / "smoke.php"), "200"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SESSION_DRIVER": session_driver},
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all checks passed" in result.stdout


class PipeWorker:
    """Just enough of the server side of the protocol, over a child's pipes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["php", "worker.php"],
            cwd=EXAMPLE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "TRIO_RUNNER_PHP": str(LIBRARY)},
        )
        self.decoder = FrameDecoder()
        self._send(encode_frame(Flag.CONTROL | Flag.CODEC_JSON, b'{"pid":1}'))
        reply = self._receive()
        self.pid = json.loads(reply.payload)["pid"]

    def _send(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _receive(self) -> Frame:
        assert self.proc.stdout is not None
        while (frame := self.decoder.next_frame()) is None:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError("worker closed stdout: " + self.stderr())
            self.decoder.feed(chunk)
        return frame

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, list[str]] | None = None,
        cookies: dict[str, str] | None = None,
        body: bytes = b"",
        parsed: bool = False,
    ) -> tuple[int, dict[str, list[str]], bytes]:
        raw_query = path.partition("?")[2]
        context = json.dumps(
            {
                "remoteAddr": "127.0.0.1",
                "protocol": "HTTP/1.1",
                "method": method,
                "uri": "http://127.0.0.1:8080" + path,
                "headers": headers or {},
                "cookies": {k: [v] for k, v in (cookies or {}).items()},
                "rawQuery": raw_query,
                "parsed": parsed,
                "uploads": None,
                "attributes": {},
            }
        ).encode()
        self._send(encode_frame(Flag.CODEC_JSON, context + body, (len(context),)))
        frame = self._receive()
        assert not frame.flags & Flag.ERROR, frame.payload
        split = frame.options[0]
        reply = json.loads(frame.payload[:split])
        return reply["status"], reply["headers"], frame.payload[split:]

    def stop(self) -> int:
        self._send(encode_frame(Flag.CONTROL | Flag.CODEC_JSON, b'{"stop":true}'))
        return self.proc.wait(timeout=10)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")


@pytest.fixture
def worker() -> Iterator[PipeWorker]:
    if not LIBRARY.is_file():
        pytest.skip("the trio_runner PHP library is missing")
    w = PipeWorker()
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()
    for stream in (w.proc.stdin, w.proc.stdout, w.proc.stderr):
        if stream is not None:
            stream.close()


def test_worker_serves_many_requests_from_one_boot(worker: PipeWorker) -> None:
    status, headers, body = worker.request("GET", "/")
    assert status == 200
    assert headers["Content-Type"] == ["text/html; charset=UTF-8"]
    assert b"Laravel 8." in body

    seen = []
    for _ in range(20):
        status, headers, body = worker.request("GET", "/api/info")
        assert status == 200
        assert headers["Content-Type"] == ["application/json"]
        info = json.loads(body)
        assert info["framework"] == "laravel"
        assert info["pid"] == worker.pid
        seen.append((info["booted_at"], info["requests"]))
    assert len({booted for booted, _ in seen}) == 1  # booted once
    counts = [n for _, n in seen]
    assert counts == list(range(counts[0], counts[0] + 20))

    status, _, body = worker.request("GET", "/users/5?x=1")
    assert status == 200
    assert json.loads(body) == {"id": 5, "name": "user-5", "query": {"x": "1"}}

    status, _, body = worker.request("GET", "/nope")
    assert status == 404
    assert b"Not Found" in body

    status, _, body = worker.request("GET", "/boom")
    assert status == 500
    assert b"Server Error" in body
    assert b"Deliberate" not in body

    status, _, body = worker.request(
        "POST",
        "/api/echo?q=1",
        headers={"Content-Type": ["application/x-www-form-urlencoded"]},
        body=b'{"name":"Ann","tags":["a","b"]}',
        parsed=True,
    )
    assert status == 200
    assert json.loads(body)["input"] == {"name": "Ann", "tags": ["a", "b"], "q": "1"}

    status, _, body = worker.request("GET", "/api/echo")
    echo = json.loads(body)
    assert echo["input"] == []  # PHP's empty array; nothing from the POST
    assert echo["query"] == []
    assert echo["host"] == "127.0.0.1:8080"

    status, headers, body = worker.request("GET", "/counter")
    assert json.loads(body) == {"count": 1}
    cookies = dict(c.split(";")[0].split("=", 1) for c in headers["Set-Cookie"])
    assert "laravel_session" in cookies
    jar = {k: unquote(v) for k, v in cookies.items()}
    _, _, body = worker.request("GET", "/counter", cookies=jar)
    assert json.loads(body) == {"count": 2}
    _, _, body = worker.request("GET", "/counter")
    assert json.loads(body) == {"count": 1}

    assert worker.stop() == 0


def test_worker_writes_only_under_storage(worker: PipeWorker) -> None:
    start = time.time() - 1
    for path in ("/", "/api/info", "/users/1", "/nope", "/boom", "/counter"):
        worker.request("GET", path)
    assert worker.stop() == 0
    written = [
        p
        for p in EXAMPLE.rglob("*")
        if p.is_file()
        and p.stat().st_mtime >= start
        and "storage" not in p.relative_to(EXAMPLE).parts
    ]
    assert written == []


def test_worker_survives_an_undecodable_request(worker: PipeWorker) -> None:
    assert worker.request("GET", "/api/info")[0] == 200  # fixes the JSON codec
    context = b"this is not JSON"
    worker._send(encode_frame(Flag.CODEC_JSON, context, (len(context),)))
    frame = worker._receive()
    assert frame.flags & Flag.ERROR
    status, _, body = worker.request("GET", "/users/7")
    assert status == 200
    assert json.loads(body)["id"] == 7
    assert worker.stop() == 0
