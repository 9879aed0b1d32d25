"""The metrics service: pools read at scrape time, HTTP requests, the endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from tests.fakes import FakePHP, FakeSpawner
from tests.metrics.scrape import samples, types, value
from trio_runner.config import CollectorConfig, MetricsConfig, PoolConfig
from trio_runner.errors import BindError, ConfigError, QueueFull
from trio_runner.http.asgi import DISCONNECT_EXTENSION, Message, Receive, Scope, Send
from trio_runner.metrics import (
    HttpMetrics,
    MetricsService,
    PoolCollector,
    RequestMetrics,
    pool_prefix,
    status_class,
)
from trio_runner.pool import Pool
from trio_runner.process.worker import Retirement
from trio_runner.protocol import Payload

LOCAL = MetricsConfig(address="127.0.0.1:0")


async def gated(php: FakePHP, payload: Payload) -> None:
    if payload.body == b"wait":
        await GATE.wait()
    await php.respond(b"{}", payload.body)


GATE = trio.Event()


@asynccontextmanager
async def running_pool(num_workers: int = 2, **options: object) -> AsyncIterator[Pool]:
    config = PoolConfig(num_workers=num_workers, **options)  # type: ignore[arg-type]
    pool = Pool("http", FakeSpawner(gated), config)
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        await pool.aclose()


def scrape(service: MetricsService) -> bytes:
    return service.exposition()


async def test_metrics_pool_figures_are_read_when_scraped(autojump_clock) -> None:
    global GATE
    GATE = trio.Event()
    async with running_pool(2, max_queue_size=1) as pool:
        rss = {worker.pid: 1000 * (i + 1) for i, worker in enumerate(pool.workers)}
        registry = CollectorRegistry()
        registry.register(
            PoolCollector({"http": pool}, memory=lambda worker: rss.get(worker.pid))
        )
        await pool.exec(Payload(b"{}", b"one"))
        text = generate_latest(registry)
        assert value(text, "rr_http_total_workers") == 2
        assert value(text, "rr_http_workers_ready") == 2
        assert value(text, "rr_http_execs_total") == 1
        assert value(text, "rr_http_workers_memory_bytes") == 3000
        for worker in pool.workers:
            pid = str(worker.pid)
            assert (
                value(text, "rr_http_worker_memory_bytes", pid=pid) == rss[worker.pid]
            )
            assert value(text, "rr_http_worker_state", pid=pid, state="ready") == 1
        execs = [
            value(text, "rr_http_worker_execs_total", pid=str(w.pid))
            for w in pool.workers
        ]
        assert sorted(execs) == [0, 1]

        async with trio.open_nursery() as nursery:
            for _ in range(3):  # two busy workers, one request waiting
                nursery.start_soon(pool.exec, Payload(b"{}", b"wait"))
            await trio.testing.wait_all_tasks_blocked()
            text = generate_latest(registry)
            assert value(text, "rr_http_workers_working") == 2
            assert value(text, "rr_http_workers_ready") == 0
            assert value(text, "rr_http_requests_queue") == 1
            with pytest.raises(QueueFull):
                await pool.exec(Payload(b"{}", b"late"))
            text = generate_latest(registry)
            assert value(text, "rr_http_no_free_workers_total") == 1
            GATE.set()

        pool.retire(pool.workers[0], Retirement.TTL)
        await trio.testing.wait_all_tasks_blocked()
        text = generate_latest(registry)
        assert value(text, "rr_http_worker_restarts_total", reason="ttl") == 1
        assert types(text)["rr_http_worker_restarts_total"] == "counter"
        assert value(text, "rr_http_total_workers") == 2


async def test_metrics_pools_added_later_show_up() -> None:
    pools: dict[str, Pool] = {}
    service = MetricsService(LOCAL, pools)
    assert b"rr_http_total_workers" not in scrape(service)
    async with running_pool(1) as pool:
        pools["http"] = pool
        assert value(scrape(service), "rr_http_total_workers") == 1


def test_metrics_pool_prefix_makes_a_metric_name() -> None:
    assert pool_prefix("http") == "rr_http"
    assert pool_prefix("jobs-high.prio") == "rr_jobs_high_prio"


@pytest.mark.parametrize(
    ("status", "name"),
    [(101, "1xx"), (200, "2xx"), (304, "3xx"), (404, "4xx"), (503, "5xx"), (0, "5xx")],
)
def test_metrics_status_class(status: int, name: str) -> None:
    assert status_class(status) == name


class Answer:
    def __init__(self, status: int | None, *, fail: bool = False) -> None:
        self.status = status
        self.fail = fail

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await trio.sleep(0.25)
        if self.status is not None:
            await send({"type": "http.response.start", "status": self.status})
            await send({"type": "http.response.body", "body": b"x"})
        if self.fail:
            raise RuntimeError("boom")


async def call(app: RequestMetrics) -> None:
    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": "/"}
    await app(scope, receive, send)


async def test_metrics_count_an_app_cancelled_for_a_leaving_client_as_499(
    autojump_clock,
) -> None:
    # The lean server cancels an app that subscribed with cancel=True when
    # its client leaves: no answer, and not a failure of the app.
    service = MetricsService(LOCAL, {})
    gone: list[object] = []

    def subscribe(callback, cancel: bool = False) -> None:
        gone.append(callback)

    async def waits(scope: Scope, receive: Receive, send: Send) -> None:
        await trio.sleep_forever()

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        pass

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "extensions": {DISCONNECT_EXTENSION: {"subscribe": subscribe}},
    }
    with trio.move_on_after(1):  # the server's cancellation
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                RequestMetrics(waits, service.http), scope, receive, send
            )
            await trio.sleep(0.5)
            for callback in gone:
                callback()  # the client left
    with trio.move_on_after(1):  # a stop: the client did not leave
        await RequestMetrics(waits, service.http)(
            {"type": "http", "method": "GET", "path": "/"}, receive, send
        )
    text = scrape(service)
    assert value(text, "rr_http_request_total", status="4xx") == 1
    assert value(text, "rr_http_request_total", status="5xx") == 1


async def test_metrics_requests_by_status_class_with_latency(autojump_clock) -> None:
    service = MetricsService(LOCAL, {})
    metrics: HttpMetrics = service.http
    for status in (200, 201, 404):
        await call(RequestMetrics(Answer(status), metrics))
    await call(RequestMetrics(Answer(None), metrics))  # the client left: 499
    with pytest.raises(RuntimeError):
        await call(RequestMetrics(Answer(None, fail=True), metrics))
    text = scrape(service)
    assert value(text, "rr_http_request_total", status="2xx") == 2
    assert value(text, "rr_http_request_total", status="4xx") == 2
    assert value(text, "rr_http_request_total", status="5xx") == 1
    assert value(text, "rr_http_request_duration_seconds_count", status="2xx") == 2
    # perf_counter is the real clock: each took at least the app's sleep of
    # 0.25 s of trio's (virtual) clock, so nothing is asserted about it
    # beyond the bucket structure.
    assert (
        "rr_http_request_duration_seconds_bucket",
        frozenset({("status", "2xx"), ("le", "+Inf")}),
    ) in samples(text)


async def test_metrics_lifespan_and_websocket_pass_through() -> None:
    seen = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    metrics = MetricsService(LOCAL, {}).http
    wrapped = RequestMetrics(app, metrics)
    await wrapped({"type": "lifespan"}, None, None)  # type: ignore[arg-type]
    assert seen == ["lifespan"]
    assert metrics.requests.labels("2xx")._value.get() == 0


def test_metrics_leave_out_created_series_and_use_the_text_format() -> None:
    config = MetricsConfig(
        address="127.0.0.1:0",
        collect={"jobs": CollectorConfig(type="counter")},
    )
    text = MetricsService(config, {}).exposition().decode()
    assert "jobs_total 0.0" in text
    assert "_created" not in text


def test_metrics_service_refuses_a_collector_clashing_with_a_builtin() -> None:
    config = MetricsConfig(
        address="127.0.0.1:0",
        collect={"request_total": CollectorConfig(type="gauge", namespace="rr_http")},
    )
    clash = r"metrics\.collect\.request_total: collector"
    with pytest.raises(ConfigError, match=clash):
        MetricsService(config, {})


async def test_metrics_service_serves_metrics_and_says_where_else() -> None:
    config = MetricsConfig(
        address="127.0.0.1:0", collect={"jobs": CollectorConfig(type="counter")}
    )
    service = MetricsService(config, {})
    async with trio.open_nursery() as nursery:
        address = await nursery.start(service.run)
        assert service.url == f"http://{address}/metrics"
        service.app.add("jobs", 2, [])
        async with httpx.AsyncClient() as client:
            reply = await client.get(service.url)
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert value(reply.text, "jobs_total") == 2
            head = await client.head(service.url)
            assert (head.status_code, head.content) == (200, b"")
            other = await client.get(f"http://{address}/")
            assert other.status_code == 404
            assert "/metrics" in other.text
            post = await client.post(service.url)
            assert (post.status_code, post.headers["allow"]) == (405, "GET, HEAD")
        nursery.cancel_scope.cancel()


async def test_metrics_service_bind_error_names_the_setting() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        service = MetricsService(MetricsConfig(address=f"127.0.0.1:{port}"), {})
        async with trio.open_nursery() as nursery:
            with pytest.raises(
                BindError, match=r"^metrics: cannot listen .*metrics\.address"
            ):
                await nursery.start(service.run)
