"""The configuration as frozen values: what ``roadrunner.toml`` says, checked.

Sections mirror RoadRunner's config, so ``Config.http.pool.supervisor`` is
the ``[http.pool.supervisor]`` table. Durations are float seconds, memory
sizes int megabytes, as in RoadRunner.

Each field names its kind of value (see ``kinds`` and ``schema``). The
loader reads the file with those kinds, and the constructors run them
again, so building a value by hand is checked the same way as a file::

    Config(server=ServerConfig(command=("php", "worker.php")))
    PoolConfig(num_workers=1000)  # ConfigError: ... from 0 to 500 ...

``NOT_SUPPORTED_YET`` on a section lists the RoadRunner keys of that section
that trio_runner does not implement; the loader refuses them by name rather
than letting the user believe they work.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import attrs

from trio_runner.config.kinds import (
    Address,
    Boolean,
    Buckets,
    Choice,
    Command,
    Directory,
    Duration,
    EnvTable,
    Extensions,
    Fallback,
    FrozenMap,
    HeaderTable,
    Integer,
    LabelNames,
    MetricName,
    Names,
    Objectives,
    Subnets,
    Text,
    Url,
    Workers,
)
from trio_runner.config.schema import (
    KIND,
    SECTION,
    bind_kinds,
    optional_section,
    section,
    section_map,
    setting,
)
from trio_runner.config.units import split_host_port
from trio_runner.log import CHANNELS

__all__ = [
    "COLLECTOR_TYPES",
    "MIDDLEWARE",
    "TRUSTED_SUBNETS",
    "CollectorConfig",
    "Config",
    "CorsConfig",
    "EndureConfig",
    "HeadersConfig",
    "Http2Config",
    "HttpConfig",
    "LogChannelConfig",
    "LogsConfig",
    "MetricsConfig",
    "PoolConfig",
    "ReloadConfig",
    "ReloadServiceConfig",
    "RpcConfig",
    "ServerConfig",
    "SslConfig",
    "StaticConfig",
    "StatusConfig",
    "SupervisorConfig",
    "UploadsConfig",
]

# RUF009 is silenced below where a field's default comes from a helper:
# section() and setting() return attrs fields, not shared default values.

_DURATION = Duration()
# RoadRunner reads a zero timeout as its default, never as "no time at all".
_TIMEOUT = Duration(zero_means=60.0)
_COUNT = Integer(0)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class ServerConfig:
    """``[server]``: how to start a PHP worker process.

    ``command`` runs in ``Config.working_dir``. ``env`` is added to the
    inherited environment with names upper-cased. ``relay`` is how frames
    travel: the child's stdin/stdout, or a socket the server listens on.
    ``user``, when set, is the user workers run as (the server must be
    root).
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset({"on_init", "group"})

    command: tuple[str, ...] = attrs.field(metadata={KIND: Command()})
    relay: str = setting(Url(pipes=True), "pipes")
    relay_timeout: float = setting(_TIMEOUT, 60.0)
    env: Mapping[str, str] = setting(EnvTable(), factory=FrozenMap)
    user: str = setting(Text(), "")


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class SupervisorConfig:
    """``[<plugin>.pool.supervisor]``: limits that retire workers; 0 = off."""

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    watch_tick: float = setting(Duration(zero_means=5.0), 5.0)
    ttl: float = setting(_DURATION, 0.0)
    idle_ttl: float = setting(_DURATION, 0.0)
    max_worker_memory: int = setting(Integer(0, note="MB, 0 = no limit"), 0)
    exec_ttl: float = setting(_DURATION, 0.0)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class PoolConfig:
    """``[<plugin>.pool]``: the worker pool behind one front.

    ``num_workers`` is never 0 once built: 0 means one worker per CPU.
    ``command``, when set, replaces ``server.command`` for this pool.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset({"dynamic_allocator"})

    num_workers: int = setting(Workers(), 0)
    max_jobs: int = setting(_COUNT, 0)
    allocate_timeout: float = setting(_TIMEOUT, 60.0)
    destroy_timeout: float = setting(_TIMEOUT, 60.0)
    reset_timeout: float = setting(_TIMEOUT, 60.0)
    stream_timeout: float = setting(_TIMEOUT, 60.0)
    max_queue_size: int = setting(_COUNT, 0)
    debug: bool = setting(Boolean(), False)
    command: tuple[str, ...] | None = setting(Command(optional=True), None)
    supervisor: SupervisorConfig = section(SupervisorConfig)  # noqa: RUF009


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class UploadsConfig:
    """``[http.uploads]``: where multipart file parts go, and which may.

    ``dir`` empty means the system temp directory. An extension in both
    ``forbid`` and ``allow`` is forbidden; an empty ``allow`` allows every
    extension not forbidden. ``max_file_size`` (MB, 0 = no limit) is ours:
    RoadRunner has no per-file limit.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    dir: str = setting(Text(), "")
    forbid: tuple[str, ...] = setting(Extensions(), (".php", ".exe", ".bat"))
    allow: tuple[str, ...] = setting(Extensions(), ())
    max_file_size: int = setting(Integer(0, note="MB, 0 = no limit"), 0)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class CorsConfig:
    """``[http.headers.cors]``: CORS answers, preflight without PHP.

    The list settings are comma-separated strings, as in RoadRunner.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    allowed_origin: str = setting(Text(), "")
    allowed_origin_regex: str = setting(Text(), "")
    allowed_methods: str = setting(Text(), "")
    allowed_headers: str = setting(Text(), "")
    allow_credentials: bool = setting(Boolean(), False)
    exposed_headers: str = setting(Text(), "")
    max_age: int = setting(Integer(0, note="seconds"), 0)
    options_success_status: int = setting(Integer(200, 299), 200)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class HeadersConfig:
    """``[http.headers]``: for the ``headers`` middleware."""

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    request: Mapping[str, str] = setting(HeaderTable(), factory=FrozenMap)
    response: Mapping[str, str] = setting(HeaderTable(), factory=FrozenMap)
    cors: CorsConfig | None = optional_section(CorsConfig)  # noqa: RUF009


# What http.static never serves unless told otherwise: PHP sources, the
# code an app would least want read.
STATIC_FORBID = (".php", ".phtml", ".phar", ".inc")


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class StaticConfig:
    """``[http.static]``: for the ``static`` middleware.

    ``dir`` is relative to ``working_dir``. ``forbid`` wins over ``allow``;
    an empty ``allow`` serves every extension not forbidden. ``forbid``
    left unset keeps PHP sources private (RoadRunner's default forbids
    nothing, which serves ``worker.php`` as text from a ``dir`` of ``.``).
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset({"pattern"})

    dir: str = setting(Text(nonempty=True), ".")
    forbid: tuple[str, ...] = setting(Extensions(), STATIC_FORBID)
    allow: tuple[str, ...] = setting(Extensions(), ())
    calculate_etag: bool = setting(Boolean(), False)
    weak: bool = setting(Boolean(), False)
    request: Mapping[str, str] = setting(HeaderTable(), factory=FrozenMap)
    response: Mapping[str, str] = setting(HeaderTable(), factory=FrozenMap)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class SslConfig:
    """``[http.ssl]``: HTTPS (and HTTP/2 through ALPN) on its own address.

    ``cert`` and ``key`` are PEM files, relative to ``working_dir``.
    ``redirect`` makes the plain address answer with a redirect to HTTPS.
    ``root_ca`` and ``client_auth_type`` are for client certificates (mTLS).
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset({"acme"})

    address: str = setting(Address(), ":443")
    cert: str = attrs.field(metadata={KIND: Text(nonempty=True)})
    key: str = attrs.field(metadata={KIND: Text(nonempty=True)})
    root_ca: str = setting(Text(), "")
    client_auth_type: str = setting(
        Choice(
            (
                "no_client_certs",
                "request_client_cert",
                "require_any_client_cert",
                "verify_client_cert_if_given",
                "require_and_verify_client_cert",
            )
        ),
        "no_client_certs",
    )
    redirect: bool = setting(Boolean(), False)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class Http2Config:
    """``[http.http2]``: HTTP/2 settings. ``h2c`` is HTTP/2 without TLS."""

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    h2c: bool = setting(Boolean(), False)
    max_concurrent_streams: int = setting(Integer(1, 2**31 - 1), 128)


# RoadRunner's default: loopback and private networks.
TRUSTED_SUBNETS = (
    "10.0.0.0/8",
    "127.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)

MIDDLEWARE = frozenset({"headers", "gzip", "static"})


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class HttpConfig:
    """``[http]``: the HTTP front. Its presence in the file turns it on.

    ``server`` picks what serves plain HTTP on ``address``: ``"auto"`` is
    the lean HTTP/1.1 server, unless ``http2.h2c`` needs hypercorn there;
    ``"hypercorn"`` uses hypercorn everywhere. TLS is always hypercorn's.
    ``max_header_size`` (bytes) and ``idle_timeout`` apply to both servers,
    ``read_header_timeout`` to the lean one only; ``max_header_size`` also
    bounds HTTP/2 header lists (SETTINGS_MAX_HEADER_LIST_SIZE), and
    ``idle_timeout`` also bounds each wait for the next piece of a request
    body (then 408).
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset({"fcgi", "http3", "cache"})

    address: str = setting(Address(), "127.0.0.1:8080")
    server: str = setting(Choice(("auto", "hypercorn")), "auto")
    max_header_size: int = setting(Integer(1024, note="bytes"), 64 * 1024)
    read_header_timeout: float = setting(Duration(zero_means=30.0), 30.0)
    idle_timeout: float = setting(Duration(zero_means=60.0), 60.0)
    codec: str = setting(Choice(("proto", "json")), "proto")
    max_request_size: int = setting(Integer(0, note="MB, 0 = no limit"), 1000)
    raw_body: bool = setting(Boolean(), False)
    internal_error_code: int = setting(Integer(400, 599), 500)
    access_logs: bool = setting(Boolean(), False)
    middleware: tuple[str, ...] = setting(Names(known=MIDDLEWARE), ())
    trusted_subnets: tuple[str, ...] = setting(Subnets(), TRUSTED_SUBNETS)
    uploads: UploadsConfig = section(UploadsConfig)  # noqa: RUF009
    headers: HeadersConfig = section(HeadersConfig)  # noqa: RUF009
    static: StaticConfig = section(StaticConfig)  # noqa: RUF009
    ssl: SslConfig | None = optional_section(SslConfig)  # noqa: RUF009
    http2: Http2Config = section(Http2Config)  # noqa: RUF009
    pool: PoolConfig = section(PoolConfig)  # noqa: RUF009

    @property
    def host(self) -> str:
        """The host of ``address`` without IPv6 brackets; "" = every interface."""
        return split_host_port(self.address)[0]

    @property
    def port(self) -> int:
        """The port of ``address``; 0 asks the OS for any free port."""
        return split_host_port(self.address)[1]


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class RpcConfig:
    """``[rpc]``: the goridge RPC listener; workers get it as ``RR_RPC``."""

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    listen: str = setting(Url(), "tcp://127.0.0.1:6001")


COLLECTOR_TYPES = ("counter", "gauge", "histogram", "summary")


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class CollectorConfig:
    """``[metrics.collect.<name>]``: a metric the PHP app feeds over RPC.

    The exported name is ``namespace_subsystem_<name>`` (empty parts left
    out). ``buckets`` is for histograms (Prometheus' default buckets when
    empty), ``objectives`` (quantile to allowed error) for summaries.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    type: str = attrs.field(metadata={KIND: Choice(COLLECTOR_TYPES)})
    namespace: str = setting(MetricName(optional=True), "")
    subsystem: str = setting(MetricName(optional=True), "")
    help: str = setting(Text(), "")
    labels: tuple[str, ...] = setting(LabelNames(), ())
    buckets: tuple[float, ...] = setting(Buckets(), ())
    objectives: tuple[tuple[float, float], ...] = setting(Objectives(), ())


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class MetricsConfig:
    """``[metrics]``: Prometheus metrics on ``http://<address>/metrics``.

    Its presence in the file turns the endpoint on. ``collect`` declares
    the app's own metrics; PHP can declare more over RPC.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    address: str = setting(Address(), "127.0.0.1:2112")
    collect: Mapping[str, CollectorConfig] = section_map(
        CollectorConfig, names=MetricName()
    )


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class StatusConfig:
    """``[status]``: ``/health`` and ``/ready`` on their own address.

    ``unavailable_status_code`` is what a plugin that is not healthy (or
    not ready) answers.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    address: str = setting(Address(), "127.0.0.1:2114")
    unavailable_status_code: int = setting(Integer(400, 599), 503)


_LOG_MODES = ("production", "development", "raw", "off")
_LOG_LEVELS = ("debug", "info", "warn", "warning", "error")
_LOG_ENCODINGS = ("console", "json")


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class LogChannelConfig:
    """``[logs.channels.<channel>]``: one component's logging (the channel
    names and the loggers they cover are ``trio_runner.log.CHANNELS``).

    A setting left out (None) is the ``[logs]`` one.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset(
        {"line_ending", "err_output", "file_logger_options"}
    )

    mode: str | None = setting(Fallback(Choice(_LOG_MODES)), None)
    level: str | None = setting(Fallback(Choice(_LOG_LEVELS)), None)
    encoding: str | None = setting(Fallback(Choice(_LOG_ENCODINGS)), None)
    output: str | None = setting(Fallback(Text(nonempty=True)), None)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class LogsConfig:
    """``[logs]``: how trio_runner logs. ``output`` is stderr, stdout or a
    file path relative to ``Config.working_dir``; ``channels`` override
    these settings for one component each."""

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset(
        {"line_ending", "err_output", "file_logger_options"}
    )

    mode: str = setting(Choice(_LOG_MODES), "production")
    level: str = setting(Choice(_LOG_LEVELS), "info")
    encoding: str = setting(Choice(_LOG_ENCODINGS), "console")
    output: str = setting(Text(nonempty=True), "stderr")
    channels: Mapping[str, LogChannelConfig] = section_map(
        LogChannelConfig, names=Choice(tuple(CHANNELS))
    )


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class EndureConfig:
    """``[endure]``: the server's own lifecycle.

    ``grace_period`` is how long a graceful stop lets requests in flight
    finish before they are cut.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset(
        {"print_graph", "log_level", "watchdog_sec"}
    )

    grace_period: float = setting(Duration(zero_means=30.0), 30.0)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class ReloadServiceConfig:
    """``[reload.services.<pool>]``: what to watch for one pool.

    ``dirs`` are relative to ``working_dir``. ``patterns`` (file name
    endings such as ``".php"``) fall back to ``reload.patterns`` when empty.
    ``ignore`` holds glob patterns matched against paths relative to each
    dir and against every path component (``"vendor"``, ``"*.log"``,
    ``"storage/**"``).
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    dirs: tuple[str, ...] = setting(Names(), (".",))
    recursive: bool = setting(Boolean(), True)
    patterns: tuple[str, ...] = setting(Extensions(), ())
    ignore: tuple[str, ...] = setting(Names(), ())


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class ReloadConfig:
    """``[reload]``: reset a pool's workers when its PHP files change.

    ``interval`` is the debounce: changes within it are one reset. ``poll``
    is ours: polling for file systems where change events never arrive
    (Docker for Mac or Windows mounts, WSL, NFS).
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset()

    interval: float = setting(Duration(zero_means=1.0), 1.0)
    patterns: tuple[str, ...] = setting(Extensions(), (".php",))
    poll: bool = setting(Boolean(), False)
    services: Mapping[str, ReloadServiceConfig] = section_map(ReloadServiceConfig)


@attrs.frozen(kw_only=True, field_transformer=bind_kinds)
class Config:
    """The whole configuration.

    ``http``, ``rpc``, ``metrics`` and ``status`` are None when the file has
    no such section: that front or service does not run. ``working_dir`` is
    where workers run and what relative paths are relative to; the loader
    makes it absolute and defaults it to the config file's directory.
    ``source`` is that file, None when the config did not come from one.
    ``data`` is what was read, as plain tables after overrides and
    ``${VAR}`` expansion (``rpc.Config`` answers it); None for a config
    built by hand.
    """

    NOT_SUPPORTED_YET: ClassVar[frozenset[str]] = frozenset(
        {
            "include",
            "service",
            "jobs",
            "kv",
            "grpc",
            "websockets",
            "broadcast",
            "centrifuge",
            "temporal",
            "tcp",
            "lock",
            "otel",
            "fileserver",
            "amqp",
            "beanstalk",
            "boltdb",
            "kafka",
            "memcached",
            "memory",
            "nats",
            "redis",
            "sqs",
        }
    )

    version: str = setting(Choice(("3",)), "3")
    working_dir: Path = setting(Directory(), factory=Path.cwd)  # noqa: RUF009
    server: ServerConfig = attrs.field(metadata={SECTION: ServerConfig})
    http: HttpConfig | None = optional_section(HttpConfig)  # noqa: RUF009
    rpc: RpcConfig | None = optional_section(RpcConfig)  # noqa: RUF009
    metrics: MetricsConfig | None = optional_section(MetricsConfig)  # noqa: RUF009
    status: StatusConfig | None = optional_section(StatusConfig)  # noqa: RUF009
    logs: LogsConfig = section(LogsConfig)  # noqa: RUF009
    reload: ReloadConfig | None = optional_section(ReloadConfig)  # noqa: RUF009
    endure: EndureConfig = section(EndureConfig)  # noqa: RUF009
    source: Path | None = None
    data: Mapping[str, Any] | None = attrs.field(default=None, eq=False, repr=False)
