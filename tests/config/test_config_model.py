from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import attrs
import pytest

from trio_runner.config import (
    CollectorConfig,
    Config,
    HttpConfig,
    LogChannelConfig,
    LogsConfig,
    MetricsConfig,
    PoolConfig,
    RpcConfig,
    ServerConfig,
    StatusConfig,
    SupervisorConfig,
    load_config,
)
from trio_runner.config.kinds import Invalid, Kind
from trio_runner.config.schema import KIND
from trio_runner.errors import ConfigError

CPUS = os.cpu_count() or 1


def test_config_needs_only_a_command() -> None:
    config = Config(server=ServerConfig(command=("php", "worker.php")))
    assert config.http is None
    assert config.rpc is None
    assert config.logs == LogsConfig()
    assert config.working_dir == Path.cwd()
    assert config.source is None


def test_defaults_match_roadrunner() -> None:
    pool = PoolConfig()
    assert pool.num_workers == CPUS
    assert (pool.max_jobs, pool.max_queue_size, pool.debug) == (0, 0, False)
    assert pool.allocate_timeout == pool.destroy_timeout == 60.0
    assert pool.reset_timeout == pool.stream_timeout == 60.0
    assert pool.supervisor == SupervisorConfig(
        watch_tick=5.0, ttl=0, idle_ttl=0, max_worker_memory=0, exec_ttl=0
    )
    http = HttpConfig()
    assert (http.address, http.codec, http.max_request_size) == (
        "127.0.0.1:8080",
        "proto",
        1000,
    )
    assert http.internal_error_code == 500
    assert RpcConfig().listen == "tcp://127.0.0.1:6001"


def test_construction_checks_values_like_the_loader() -> None:
    with pytest.raises(ConfigError) as info:
        PoolConfig(num_workers=1000)
    assert str(info.value) == (
        "PoolConfig.num_workers must be an integer from 0 to 500 "
        "(0 = one per CPU), got 1000"
    )
    with pytest.raises(ConfigError) as info:
        ServerConfig(command=())
    assert str(info.value) == (
        'ServerConfig.command must be a command such as "php worker.php" or '
        '["php", "worker.php"], got []'
    )


def test_construction_checks_section_types() -> None:
    server = ServerConfig(command=("php",))
    bad: Any = {"address": ":80"}
    with pytest.raises(ConfigError) as info:
        Config(server=server, http=bad)
    assert str(info.value) == (
        "Config.http must be a HttpConfig, got {'address': ':80'}"
    )


def test_construction_converts_raw_values() -> None:
    raw: Any = {"a": 1}
    server = ServerConfig(command=("php",), env=raw)
    assert server.env == {"A": "1"}
    assert PoolConfig(num_workers=0).num_workers == CPUS
    assert attrs.evolve(PoolConfig(num_workers=3), num_workers=0).num_workers == CPUS


def test_config_is_frozen_hashable_and_compares_by_value() -> None:
    text = '[server]\ncommand = "php w.php"\nenv = { a = "1" }\n[http]\n'
    one = load_config(text=text, env={})
    two = load_config(text=text, env={})
    assert one == two
    assert hash(one) == hash(two)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        one.server.relay = "tcp://127.0.0.1:1"  # type: ignore[misc]
    env: Any = one.server.env
    with pytest.raises(TypeError):
        env["B"] = "2"


@pytest.mark.parametrize(
    ("address", "host", "port"),
    [("127.0.0.1:8080", "127.0.0.1", 8080), ("[::1]:0", "::1", 0), (":80", "", 80)],
)
def test_http_host_and_port(address: str, host: str, port: int) -> None:
    http = HttpConfig(address=address)
    assert (http.host, http.port) == (host, port)


SETTINGS = {
    f"{cls.__name__}.{field.name}": field.metadata[KIND]
    for cls in (
        *(Config, ServerConfig, HttpConfig, PoolConfig, SupervisorConfig),
        *(MetricsConfig, CollectorConfig, StatusConfig, LogsConfig, LogChannelConfig),
    )
    for field in attrs.fields(cls)
    if KIND in field.metadata
}

RAW: list[Any] = [
    *("0", "7", "60s", "1m30s", "2.5", "true", "FALSE", "JSON", "3"),
    *("php worker.php", "gzip, headers", "pipes", "unix://rr.sock"),
    *("tcp://127.0.0.1:6001", "[::1]:8080", ""),
    *(0, 3, 2.5, True, ["php", "w.php"], {"a": 1, "b": True}),
    *([0.1, 0.5, 1], ["queue", "status"], {"0.5": 0.05, "0.99": 0.001}, None),
]


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_kind_parse_is_idempotent(name: str) -> None:
    # The constructors re-run parse on loaded values; it must not change them.
    kind: Kind[Any] = SETTINGS[name]
    for raw in RAW:
        try:
            once = kind.parse(raw)
        except Invalid:
            continue
        assert kind.parse(once) == once, raw
