"""The four example apps, end to end through ``python -m trio_runner serve``.

Each app is served from its own ``roadrunner.toml`` with
``-o http.address=127.0.0.1:0``, once by the lean HTTP/1.1 server and once
by hypercorn; one server per app and server kind is started on first use
and shared by the module's tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psutil
import pytest

from tests.servers import EXAMPLES, running, worker_pids
from trio_runner.config import load_config
from trio_runner.testing.process import ServerProcess

pytestmark = pytest.mark.php

APPS = ("hello", "psr15", "slim", "laravel")
TIMEOUT = 10.0

Serve = Callable[[str], ServerProcess]


@pytest.fixture(scope="module", params=["auto", "hypercorn"])
def example(request: pytest.FixtureRequest) -> Iterator[Serve]:
    """``example("slim")`` is the running server of examples/slim, on the
    lean HTTP/1.1 server (``http.server = "auto"``) or on hypercorn."""
    servers: dict[str, ServerProcess] = {}

    def serve(app: str) -> ServerProcess:
        if app not in servers:
            server = ServerProcess(
                EXAMPLES / app / "roadrunner.toml",
                overrides=[f"http.server={request.param}"],
                start_timeout=TIMEOUT,
            )
            servers[app] = server
            server.start()
        return servers[app]

    yield serve
    for server in servers.values():
        server.stop(timeout=TIMEOUT)


def get(server: ServerProcess, path: str) -> httpx.Response:
    assert server.url is not None
    return httpx.get(server.url + path, timeout=TIMEOUT)


@pytest.mark.parametrize(
    ("app", "content_type", "text"),
    [
        ("hello", "text/plain", "Hello from PHP (pid "),
        ("psr15", "text/plain", "Hello from PSR-15 (pid "),
        ("slim", "text/html", "<h1>Slim 3 on trio_runner</h1>"),
        ("laravel", "text/html", "Laravel 8."),
    ],
)
def test_example_serves_its_home_page(
    example: Serve, app: str, content_type: str, text: str
) -> None:
    response = get(example(app), "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(content_type)
    assert text in response.text


@pytest.mark.parametrize(
    ("app", "path", "expected"),
    [
        ("psr15", "/json?a=1", {"path": "/json", "query": {"a": "1"}}),
        ("slim", "/api/status", {"status": "ok"}),
        ("laravel", "/api/info", {"framework": "laravel"}),
        ("laravel", "/users/5?x=1", {"id": 5, "name": "user-5", "query": {"x": "1"}}),
    ],
)
def test_example_json_route_answers_json(
    example: Serve, app: str, path: str, expected: dict[str, Any]
) -> None:
    server = example(app)
    response = get(server, path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body | expected == body
    if "pid" in body:
        assert body["pid"] in worker_pids(server.output)


def test_slim_route_argument_reaches_the_handler(example: Serve) -> None:
    response = get(example("slim"), "/hello/Ann")
    assert response.status_code == 200
    assert response.text == "Hello, Ann!"


@pytest.mark.parametrize(
    ("app", "text"),
    [
        ("psr15", "Not found: /no/such/page"),
        ("slim", "<title>Page Not Found</title>"),
        ("laravel", "<title>Not Found</title>"),  # its errors::404 view
    ],
)
def test_example_unknown_path_is_the_apps_404(
    example: Serve, app: str, text: str
) -> None:
    response = get(example(app), "/no/such/page")
    assert response.status_code == 404
    assert text in response.text


def test_laravel_response_has_one_date_header(example: Serve) -> None:
    response = get(example("laravel"), "/api/info")
    assert len(response.headers.get_list("date")) == 1


def test_hello_serves_100_requests_with_the_same_workers(example: Serve) -> None:
    server = example("hello")
    config = load_config(EXAMPLES / "hello" / "roadrunner.toml")
    assert config.http is not None
    workers = worker_pids(server.output)
    assert len(workers) == config.http.pool.num_workers
    children = {child.pid for child in psutil.Process(server.pid).children()}

    served = set()
    assert server.url is not None
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for _ in range(100):
            response = client.get("/")
            assert response.status_code == 200
            assert response.text.startswith("Hello from PHP (pid ")
            served.add(int(response.text.removeprefix("Hello from PHP (pid ")[:-1]))

    assert served <= set(workers)
    assert running(workers) == workers
    assert {child.pid for child in psutil.Process(server.pid).children()} == children
