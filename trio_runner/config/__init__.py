"""Configuration: ``roadrunner.toml`` read into frozen values.

``load_config`` reads a file (or text) with ``${VAR}`` expansion and ``-o``
overrides; ``config_from_mapping`` does the same for embedders holding a
dict. Both return a :class:`Config` or raise ``ConfigError`` with one line
naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

from trio_runner.config.load import (
    DEFAULT_PATH,
    config_from_mapping,
    expand_env,
    load_config,
)
from trio_runner.config.model import (
    CollectorConfig,
    Config,
    EndureConfig,
    HttpConfig,
    LogChannelConfig,
    LogsConfig,
    MetricsConfig,
    PoolConfig,
    ReloadConfig,
    ReloadServiceConfig,
    RpcConfig,
    ServerConfig,
    StatusConfig,
    SupervisorConfig,
)
from trio_runner.config.units import parse_duration, split_host_port

__all__ = [
    "DEFAULT_PATH",
    "CollectorConfig",
    "Config",
    "EndureConfig",
    "HttpConfig",
    "LogChannelConfig",
    "LogsConfig",
    "MetricsConfig",
    "PoolConfig",
    "ReloadConfig",
    "ReloadServiceConfig",
    "RpcConfig",
    "ServerConfig",
    "StatusConfig",
    "SupervisorConfig",
    "config_from_mapping",
    "expand_env",
    "load_config",
    "parse_duration",
    "split_host_port",
]
