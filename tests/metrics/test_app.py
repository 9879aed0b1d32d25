"""The app's collectors: the sink of the metrics.* RPC methods."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from tests.metrics.scrape import types, value
from trio_runner.config import CollectorConfig
from trio_runner.errors import ConfigError, RpcError
from trio_runner.metrics import AppMetrics, QuantileSummary


def scrape(metrics: AppMetrics) -> bytes:
    return generate_latest(metrics._registry)


@pytest.fixture
def metrics() -> AppMetrics:
    return AppMetrics(CollectorRegistry())


def test_app_counter_declared_over_rpc_shows_up_with_its_labels(
    metrics: AppMetrics,
) -> None:
    metrics.declare(
        "orders",
        {"namespace": "shop", "type": "counter", "help": "Orders.", "labels": ["kind"]},
    )
    metrics.add("orders", 2, ["book"])
    metrics.add("orders", 1.5, ["book"])
    metrics.add("orders", 1, ["pen"])
    text = scrape(metrics)
    assert value(text, "shop_orders_total", kind="book") == 3.5
    assert value(text, "shop_orders_total", kind="pen") == 1
    assert types(text)["shop_orders_total"] == "counter"
    assert "# HELP shop_orders_total Orders." in text.decode()


def test_app_declare_takes_go_style_json(metrics: AppMetrics) -> None:
    # Go's JSON decoder matches keys whatever their case and skips nulls
    # and unknown keys; PHP sends an empty objectives map as [].
    metrics.declare(
        "latency",
        {
            "Type": "histogram",
            "Subsystem": "api",
            "buckets": [0.1, 1],
            "objectives": [],
            "labels": None,
            "extra": 1,
        },
    )
    metrics.observe("latency", 0.5, [])
    text = scrape(metrics)
    assert value(text, "api_latency_bucket", le="0.1") == 0
    assert value(text, "api_latency_bucket", le="1.0") == 1
    assert value(text, "api_latency_count") == 1


def test_app_declare_of_an_existing_name_succeeds_and_changes_nothing(
    metrics: AppMetrics,
) -> None:
    metrics.declare("jobs", {"type": "gauge"})
    metrics.set("jobs", 4, [])
    metrics.declare("jobs", {"type": "counter", "labels": ["x"]})
    metrics.sub("jobs", 1, [])
    assert value(scrape(metrics), "jobs") == 3


def test_app_gauge_add_sub_set(metrics: AppMetrics) -> None:
    metrics.declare("queue", {"type": "gauge", "labels": ["queue"]})
    metrics.set("queue", 10, ["mail"])
    metrics.add("queue", 2.5, ["mail"])
    metrics.sub("queue", 4, ["mail"])
    assert value(scrape(metrics), "queue", queue="mail") == 8.5


def test_app_update_of_an_undeclared_collector_says_to_declare_it(
    metrics: AppMetrics,
) -> None:
    for method in (metrics.add, metrics.sub, metrics.set, metrics.observe):
        with pytest.raises(RpcError) as info:
            method("missing", 1, [])
        assert str(info.value).startswith(
            "undefined collector missing, try first Declare"
        )
    with pytest.raises(RpcError, match=r"^undefined collector missing"):
        metrics.unregister("missing")


def test_app_vector_without_labels_is_refused_as_roadrunner_words_it(
    metrics: AppMetrics,
) -> None:
    metrics.declare("hits", {"type": "counter", "labels": ["path"]})
    with pytest.raises(RpcError) as info:
        metrics.add("hits", 1, [])
    assert str(info.value) == "required labels for collector hits"
    with pytest.raises(RpcError, match=r"takes 1 label value\(s\) \(path\)"):
        metrics.add("hits", 1, ["a", "b"])


def test_app_collector_without_labels_ignores_labels(metrics: AppMetrics) -> None:
    metrics.declare("plain", {"type": "counter"})
    metrics.add("plain", 1, ["ignored"])
    assert value(scrape(metrics), "plain_total") == 1


@pytest.mark.parametrize(
    ("kind", "method", "message"),
    [
        ("counter", "sub", "it takes metrics.Add, not metrics.Sub"),
        ("counter", "set", "it takes metrics.Add, not metrics.Set"),
        ("counter", "observe", "it takes metrics.Add, not metrics.Observe"),
        ("gauge", "observe", "it takes metrics.Add and metrics.Sub and metrics.Set"),
        ("histogram", "add", "it takes metrics.Observe, not metrics.Add"),
        ("summary", "set", "it takes metrics.Observe, not metrics.Set"),
    ],
)
def test_app_update_a_type_does_not_take_is_refused(
    metrics: AppMetrics, kind: str, method: str, message: str
) -> None:
    metrics.declare("m", {"type": kind})
    with pytest.raises(RpcError, match=f"collector m is a {kind}: {message}"):
        getattr(metrics, method)("m", 1, [])


def test_app_counter_never_goes_down(metrics: AppMetrics) -> None:
    metrics.declare("done", {"type": "counter"})
    with pytest.raises(RpcError, match="can only go up, got -1"):
        metrics.add("done", -1, [])
    assert value(scrape(metrics), "done_total") == 0


@pytest.mark.parametrize(
    ("name", "collector", "message"),
    [
        ("bad-name", {"type": "counter"}, "collector name must be a metric name"),
        ("m", {"help": "x"}, "collector m: type is required"),
        ("m", {"type": "meter"}, 'collector m: type must be "counter"'),
        ("m", {"type": "gauge", "labels": ["le"]}, '"le" is reserved'),
        ("m", {"type": "histogram", "buckets": [2, 1]}, "larger than the one before"),
        ("m", {"type": "summary", "objectives": {"1.5": 0.1}}, "not a quantile"),
        ("m", "counter", "must be an object with at least a type"),
    ],
)
def test_app_declare_refuses_a_bad_collector(
    metrics: AppMetrics, name: str, collector: object, message: str
) -> None:
    with pytest.raises(RpcError, match=message):
        metrics.declare(name, collector)  # type: ignore[arg-type]
    assert metrics.names == []


def test_app_declare_refuses_a_name_another_metric_exports() -> None:
    registry = CollectorRegistry()
    metrics = AppMetrics(registry)
    metrics.declare("hits", {"type": "gauge", "namespace": "app"})
    with pytest.raises(RpcError, match="would export app_hits, which another"):
        metrics.declare("app_hits", {"type": "gauge"})


def test_app_unregister_removes_the_collector_and_its_series(
    metrics: AppMetrics,
) -> None:
    metrics.declare("temp", {"type": "gauge"})
    metrics.set("temp", 3, [])
    metrics.unregister("temp")
    assert b"temp" not in scrape(metrics)
    with pytest.raises(RpcError, match="undefined collector temp"):
        metrics.set("temp", 1, [])
    metrics.declare("temp", {"type": "counter"})  # the name is free again
    metrics.add("temp", 1, [])
    assert value(scrape(metrics), "temp_total") == 1


def test_app_collectors_from_config() -> None:
    registry = CollectorRegistry()
    metrics = AppMetrics.from_config(
        registry,
        {
            "orders": CollectorConfig(type="counter", namespace="shop"),
            "wait": CollectorConfig(type="histogram", buckets=[1, 2]),
        },
    )
    metrics.add("orders", 1, [])
    metrics.observe("wait", 1.5, [])
    text = generate_latest(registry)
    assert value(text, "shop_orders_total") == 1
    assert value(text, "wait_bucket", le="2.0") == 1
    clash = {"shop_orders": CollectorConfig(type="counter")}
    with pytest.raises(
        ConfigError, match=r"^metrics\.collect\.shop_orders: collector shop_orders "
    ):
        AppMetrics.from_config(registry, clash)


def test_summary_exports_quantiles_of_its_window(metrics: AppMetrics) -> None:
    metrics.declare(
        "size",
        {
            "type": "summary",
            "labels": ["kind"],
            "objectives": {"0.5": 0.05, "0.9": 0.01},
        },
    )
    for n in range(1, 101):
        metrics.observe("size", n, ["a"])
    text = scrape(metrics)
    assert value(text, "size", kind="a", quantile="0.5") == 50
    assert value(text, "size", kind="a", quantile="0.9") == 90
    assert value(text, "size_count", kind="a") == 100
    assert value(text, "size_sum", kind="a") == 5050
    assert types(text)["size"] == "summary"


def test_summary_forgets_old_observations_but_keeps_count_and_sum() -> None:
    now = [0.0]
    summary = QuantileSummary(
        "s", "help", quantiles=[0.5], max_age=60, max_samples=3, clock=lambda: now[0]
    )
    summary.observe(100)
    now[0] = 30
    for n in (1, 2, 3, 4):  # only the last three are kept
        summary.observe(n)
    [metric] = summary.collect()
    by_name = {s.name: s.value for s in metric.samples}
    assert by_name == {"s": 3, "s_sum": 110, "s_count": 5}
    now[0] = 100  # everything is older than max_age
    [metric] = summary.collect()
    [quantile] = [s for s in metric.samples if s.name == "s"]
    assert math.isnan(quantile.value)


@pytest.mark.parametrize(
    ("config", "what"),
    [
        (
            CollectorConfig(type="counter", buckets=[1, 2]),
            "buckets are for a histogram",
        ),
        (CollectorConfig(type="gauge", objectives={0.5: 0.05}), "objectives are for a"),
    ],
)
def test_app_collector_options_of_another_type_are_refused(
    config: CollectorConfig, what: str
) -> None:
    # A counter with buckets is a mistake (the wrong type, or a stray key):
    # said at start-up rather than ignored.
    with pytest.raises(
        ConfigError, match=rf"^metrics\.collect\.x: collector x: {what}"
    ):
        AppMetrics.from_config(CollectorRegistry(), {"x": config})


def test_app_collector_declared_over_rpc_with_empty_buckets_is_fine(
    metrics: AppMetrics,
) -> None:
    # What PHP's SDK sends for a counter: empty buckets and objectives.
    metrics.declare("hits", {"type": "counter", "buckets": [], "objectives": []})
    with pytest.raises(RpcError, match="buckets are for a histogram"):
        metrics.declare("bad", {"type": "counter", "buckets": [0.1]})
