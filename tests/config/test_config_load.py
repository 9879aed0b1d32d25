"""Loading a config: every kind of value, ``${VAR}``, ``-o`` overrides, and
the error message for each way a value can be wrong.

Past 600 lines because it is mostly tables of inputs and the exact
messages they must give (``ERRORS``, ``SERVER_ERRORS``): one table per
section of the config, kept next to the loader's other tests.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from trio_runner.config import (
    Config,
    config_from_mapping,
    expand_env,
    load_config,
)
from trio_runner.errors import ConfigError

SERVER = '[server]\ncommand = "php worker.php"\n'


def load(
    toml: str = "",
    *,
    overrides: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> Config:
    """Load ``toml`` plus SERVER as if it were ./roadrunner.toml."""
    return load_config(
        "roadrunner.toml",
        text=toml + "\n" + SERVER,
        overrides=overrides,
        env={} if env is None else env,
    )


def error_of(toml: str, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load(toml, overrides=overrides)
    return str(info.value)


# --- values -------------------------------------------------------------------


def test_load_minimal_file_has_defaults_and_no_fronts() -> None:
    config = load()
    assert config.server.command == ("php", "worker.php")
    assert config.server.relay == "pipes"
    assert config.http is None
    assert config.rpc is None
    assert config.logs.level == "info"
    assert config.version == "3"


def test_load_reads_every_kind_of_value() -> None:
    config = load_config(
        text="""
        [server]
        command = "php worker.php"
        relay = "unix://rr.sock"
        relay_timeout = "1m30s"
        env = { app_env = "prod", workers = 4, debug = true, ratio = 0.5 }
        [http]
        address = "[::1]:0"
        codec = "JSON"
        max_request_size = "20"
        raw_body = "yes"
        middleware = []
        [http.pool]
        num_workers = 3
        allocate_timeout = 2.5
        command = ["php", "-d", "memory_limit=1G", "http.php"]
        [http.pool.supervisor]
        exec_ttl = "500ms"
        max_worker_memory = 128
        [rpc]
        listen = "unix:///run/rr.sock"
        """,
        env={},
    )
    assert config.server.relay == "unix://rr.sock"
    assert config.server.relay_timeout == 90.0
    assert config.server.env == {
        "APP_ENV": "prod",
        "WORKERS": "4",
        "DEBUG": "true",
        "RATIO": "0.5",
    }
    assert config.http is not None
    assert (config.http.host, config.http.port) == ("::1", 0)
    assert config.http.codec == "json"
    assert config.http.max_request_size == 20
    assert config.http.raw_body is True
    assert config.http.middleware == ()
    assert config.http.pool.num_workers == 3
    assert config.http.pool.allocate_timeout == 2.5
    assert config.http.pool.command == ("php", "-d", "memory_limit=1G", "http.php")
    assert config.http.pool.supervisor.exec_ttl == 0.5
    assert config.http.pool.supervisor.max_worker_memory == 128
    assert config.rpc is not None
    assert config.rpc.listen == "unix:///run/rr.sock"


def test_load_splits_command_string_like_a_shell() -> None:
    config = load_config(
        text="[server]\ncommand = \"php -d 'error_log=/tmp/a b.log' worker.php\"",
        env={},
    )
    assert config.server.command == (
        "php",
        "-d",
        "error_log=/tmp/a b.log",
        "worker.php",
    )


def test_load_num_workers_zero_means_cpu_count() -> None:
    config = load("[http.pool]\nnum_workers = 0\n")
    assert config.http is not None
    assert config.http.pool.num_workers == (os.cpu_count() or 1)


def test_load_empty_http_section_turns_http_on_with_defaults() -> None:
    config = load("[http]\n")
    assert config.http is not None
    assert config.http.address == "127.0.0.1:8080"
    assert config.http.pool.num_workers == (os.cpu_count() or 1)


def test_load_static_forbid_unset_keeps_php_private_and_empty_forbids_none() -> None:
    unset = load('[http]\nmiddleware = ["static"]\n[http.static]\ndir = "."\n')
    emptied = load("[http.static]\nforbid = []\n")
    assert unset.http is not None and emptied.http is not None
    assert unset.http.static.forbid == (".php", ".phtml", ".phar", ".inc")
    assert emptied.http.static.forbid == ()


def test_load_empty_pool_command_falls_back_to_server_command() -> None:
    config = load('[http.pool]\ncommand = "${POOL_COMMAND}"\n')
    assert config.http is not None
    assert config.http.pool.command is None


# --- errors -------------------------------------------------------------------

ERRORS = [
    pytest.param(
        '[http.pool]\nnum_workers = "four"',
        "roadrunner.toml: http.pool.num_workers must be an integer from 0 to 500 "
        '(0 = one per CPU), got "four"',
        id="int-word",
    ),
    pytest.param(
        "[http.pool]\nnum_workers = 501",
        "roadrunner.toml: http.pool.num_workers must be an integer from 0 to 500 "
        "(0 = one per CPU), got 501",
        id="int-range",
    ),
    pytest.param(
        "[http.pool]\nnum_workers = 4.5",
        "roadrunner.toml: http.pool.num_workers must be an integer from 0 to 500 "
        "(0 = one per CPU), got 4.5",
        id="int-float",
    ),
    pytest.param(
        "[http.pool]\nmax_jobs = -1",
        "roadrunner.toml: http.pool.max_jobs must be an integer, 0 or more, got -1",
        id="int-negative",
    ),
    pytest.param(
        "[http.pool]\nmax_jobs = true",
        "roadrunner.toml: http.pool.max_jobs must be an integer, 0 or more, got true",
        id="int-bool",
    ),
    pytest.param(
        "[http]\ninternal_error_code = 200",
        "roadrunner.toml: http.internal_error_code must be an integer from 400 "
        "to 599, got 200",
        id="error-code",
    ),
    pytest.param(
        '[http.pool.supervisor]\nmax_worker_memory = "1GB"',
        "roadrunner.toml: http.pool.supervisor.max_worker_memory must be an "
        'integer, 0 or more (MB, 0 = no limit), got "1GB"',
        id="memory",
    ),
    pytest.param(
        '[http.pool]\nallocate_timeout = "soon"',
        "roadrunner.toml: http.pool.allocate_timeout must be a duration such as "
        '"60s", "500ms" or "1m30s", or a number of seconds, got "soon"',
        id="duration-word",
    ),
    pytest.param(
        '[http.pool.supervisor]\nttl = "-5s"',
        'roadrunner.toml: http.pool.supervisor.ttl must not be negative, got "-5s"',
        id="duration-negative",
    ),
    pytest.param(
        "[http.pool.supervisor]\nexec_ttl = -1",
        "roadrunner.toml: http.pool.supervisor.exec_ttl must not be negative, got -1",
        id="duration-negative-number",
    ),
    pytest.param(
        '[http.pool]\ndebug = "maybe"',
        'roadrunner.toml: http.pool.debug must be true or false, got "maybe"',
        id="bool",
    ),
    pytest.param(
        '[http]\ncodec = "protobuf"',
        'roadrunner.toml: http.codec must be "proto" or "json", got "protobuf"',
        id="choice",
    ),
    pytest.param(
        '[logs]\nlevel = "verbose"',
        'roadrunner.toml: logs.level must be "debug", "info", "warn", "warning" '
        'or "error", got "verbose"',
        id="choice-many",
    ),
    pytest.param(
        '[logs]\noutput = ""',
        'roadrunner.toml: logs.output must be a non-empty string, got ""',
        id="text-empty",
    ),
    pytest.param(
        '[http]\naddress = "8080"',
        'roadrunner.toml: http.address must be "host:port" such as '
        '"127.0.0.1:8080" or "[::1]:8080", got "8080" (the port is missing)',
        id="address-no-port",
    ),
    pytest.param(
        '[http]\naddress = "::1:8080"',
        'roadrunner.toml: http.address must be "host:port" such as '
        '"127.0.0.1:8080" or "[::1]:8080", got "::1:8080" '
        "(IPv6 addresses go in brackets, e.g. [::1]:8080)",
        id="address-ipv6",
    ),
    pytest.param(
        '[http]\nmiddleware = ["gzip", "gzip"]',
        "roadrunner.toml: http.middleware must be a list of names such as "
        '["gzip", "headers"], got ["gzip", "gzip"] (a name is listed twice)',
        id="middleware-twice",
    ),
    pytest.param(
        '[http]\nmiddleware = ["gzip", 1]',
        "roadrunner.toml: http.middleware must be a list of names such as "
        '["gzip", "headers"], got ["gzip", 1]',
        id="middleware-type",
    ),
    pytest.param(
        '[rpc]\nlisten = "127.0.0.1:6001"',
        'roadrunner.toml: rpc.listen must be "tcp://host:port" or "unix://path", '
        'got "127.0.0.1:6001"',
        id="listen-scheme",
    ),
    pytest.param(
        '[rpc]\nlisten = "tcp://127.0.0.1:0"',
        'roadrunner.toml: rpc.listen must be "tcp://host:port" or "unix://path", '
        'got "tcp://127.0.0.1:0" (PHP needs a fixed port to connect to)',
        id="listen-port-0",
    ),
    pytest.param(
        '[rpc]\nlisten = "unix://"',
        'roadrunner.toml: rpc.listen must be "tcp://host:port" or "unix://path", '
        'got "unix://"',
        id="listen-unix-empty",
    ),
    pytest.param(
        "[http.pool]\ncommand = 5",
        "roadrunner.toml: http.pool.command must be a command such as "
        '"php worker.php" or ["php", "worker.php"], got 5',
        id="pool-command",
    ),
    pytest.param(
        "http = 1",
        "roadrunner.toml: http must be a table (a [http] section), got 1",
        id="section-not-table",
    ),
    pytest.param(
        '[http]\npool = "big"',
        'roadrunner.toml: http.pool must be a table (a [http.pool] section), got "big"',
        id="nested-section-not-table",
    ),
    pytest.param(
        '[http]\naddress = { host = "x" }',
        'roadrunner.toml: http.address must be "host:port" such as '
        '"127.0.0.1:8080" or "[::1]:8080", got a table',
        id="table-not-value",
    ),
    pytest.param(
        'version = "2.7"',
        'roadrunner.toml: version must be "3", got "2.7"',
        id="version",
    ),
    pytest.param(
        "[http.pool]\nnum_worker = 4",
        "roadrunner.toml: unknown key http.pool.num_worker "
        "(did you mean http.pool.num_workers?)",
        id="did-you-mean",
    ),
    pytest.param(
        "[htpp]\naddress = ':80'",
        "roadrunner.toml: unknown key htpp (did you mean http?)",
        id="did-you-mean-section",
    ),
    pytest.param(
        "[logs]\nLevel = 'info'",
        "roadrunner.toml: unknown key logs.Level (did you mean logs.level?)",
        id="did-you-mean-case",
    ),
    pytest.param(
        "[rpc]\nzzz = 1",
        "roadrunner.toml: unknown key rpc.zzz (valid keys in [rpc]: listen)",
        id="unknown-no-match",
    ),
    pytest.param(
        "zzz = 1",
        "roadrunner.toml: unknown key zzz (valid keys in the top level: version, "
        "working_dir, server, http, rpc, metrics, status, logs, reload, endure)",
        id="unknown-top-level",
    ),
    pytest.param(
        "source = '/etc/rr.toml'",
        "roadrunner.toml: unknown key source (valid keys in the top level: "
        "version, working_dir, server, http, rpc, metrics, status, logs, reload, "
        "endure)",
        id="source-is-not-a-key",
    ),
    pytest.param(
        "[metric]\naddress = ':2112'",
        "roadrunner.toml: unknown key metric (did you mean metrics?)",
        id="did-you-mean-section",
    ),
    pytest.param(
        "[grcp]\nlisten = ':9001'",
        "roadrunner.toml: unknown key grcp (did you mean grpc?)",
        id="did-you-mean-not-yet",
    ),
]


@pytest.mark.parametrize(("toml", "message"), ERRORS)
def test_load_error_names_key_value_and_what_is_allowed(
    toml: str, message: str
) -> None:
    assert error_of(toml) == message


SERVER_ERRORS = [
    pytest.param(
        "[server]\n",
        "roadrunner.toml: server.command is required: set it to a command such "
        'as "php worker.php" or ["php", "worker.php"]',
        id="command-missing",
    ),
    pytest.param(
        "",
        "roadrunner.toml: server.command is required: set it to a command such "
        'as "php worker.php" or ["php", "worker.php"]',
        id="server-missing",
    ),
    pytest.param(
        '[server]\ncommand = "${PHP_COMMAND}"',
        "roadrunner.toml: server.command must be a command such as "
        '"php worker.php" or ["php", "worker.php"], got "" '
        "(${PHP_COMMAND} is not set or empty)",
        id="command-empty-after-expansion",
    ),
    pytest.param(
        # Bug report: this ran plain "php", which read its script from the
        # relay pipe and hung until allocate_timeout.
        '[server]\ncommand = "php ${SCRIPT}"',
        'roadrunner.toml: server.command would be "php ": set the variable, or '
        "give it a default as in ${SCRIPT:-...} (${SCRIPT} is not set or empty)",
        id="command-part-unset",
    ),
    pytest.param(
        '[server]\ncommand = ["php", "${SCRIPT}"]\n[http.pool]\ncommand = "php ${B}"',
        'roadrunner.toml: server.command would be ["php", ""]: set the variable, '
        "or give it a default as in ${SCRIPT:-...} (${SCRIPT} is not set or empty)",
        id="command-list-part-unset",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\n[http.pool]\ncommand = "php ${B}"',
        'roadrunner.toml: http.pool.command would be "php ": set the variable, or '
        "give it a default as in ${B:-...} (${B} is not set or empty)",
        id="pool-command-part-unset",
    ),
    pytest.param(
        "[server]\ncommand = []",
        "roadrunner.toml: server.command must be a command such as "
        '"php worker.php" or ["php", "worker.php"], got []',
        id="command-empty-list",
    ),
    pytest.param(
        '[server]\ncommand = "php \'worker.php"',
        "roadrunner.toml: server.command must be a command such as "
        '"php worker.php" or ["php", "worker.php"], got "php \'worker.php" '
        "(no closing quotation)",
        id="command-quote",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nrelay = "tcp://:6001"',
        'roadrunner.toml: server.relay must be "pipes", "tcp://host:port" or '
        '"unix://path", got "tcp://:6001" (PHP cannot connect without a host; '
        "use e.g. tcp://127.0.0.1:6001)",
        id="relay-no-host",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nrelay = "tcp://[::1]:6001"',
        'roadrunner.toml: server.relay must be "pipes", "tcp://host:port" or '
        '"unix://path", got "tcp://[::1]:6001" (PHP\'s socket relay speaks '
        "IPv4 only)",
        id="relay-ipv6",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nrelay = "tcp://127.0.0.1:99999"',
        'roadrunner.toml: server.relay must be "pipes", "tcp://host:port" or '
        '"unix://path", got "tcp://127.0.0.1:99999" (the port must be a number '
        "from 0 to 65535)",
        id="relay-port",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nrelay = "pipe"',
        'roadrunner.toml: server.relay must be "pipes", "tcp://host:port" or '
        '"unix://path", got "pipe"',
        id="relay-word",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nenv = { a = [1] }',
        "roadrunner.toml: server.env.a must be a string, number or boolean, got [1]",
        id="env-value",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nenv = { a = "1", A = "2" }',
        "roadrunner.toml: server.env sets A twice (names are upper-cased)",
        id="env-twice",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nenv = { "A=B" = "1" }',
        'roadrunner.toml: server.env has an invalid variable name "A=B"',
        id="env-name",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\nenv = "A=1"',
        "roadrunner.toml: server.env must be a table of variables such as "
        '{ APP_ENV = "prod" }, got "A=1"',
        id="env-not-table",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\non_init = { command = "x" }',
        "roadrunner.toml: server.on_init is not supported yet: trio_runner does "
        "not implement this RoadRunner section; remove it",
        id="on-init",
    ),
    pytest.param(
        '[server]\ncommand = "php w.php"\ngroup = "www-data"',
        "roadrunner.toml: server.group is not supported yet: trio_runner does "
        "not implement this RoadRunner setting; remove it",
        id="group",
    ),
]


@pytest.mark.parametrize(("toml", "message"), SERVER_ERRORS)
def test_load_server_section_errors(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("roadrunner.toml", text=toml, env={})
    assert str(info.value) == message


@pytest.mark.parametrize(
    "section",
    [
        "http.fcgi",
        "http.ssl.acme",
        "http.pool.dynamic_allocator",
        "jobs",
        "kv",
        "grpc",
        "logs.channels.http.file_logger_options",
    ],
)
def test_load_refuses_roadrunner_sections_not_supported_yet(section: str) -> None:
    assert error_of(f"[{section}]\nx = 1\n") == (
        f"roadrunner.toml: {section} is not supported yet: trio_runner does "
        "not implement this RoadRunner section; remove it"
    )


def test_load_error_from_text_without_path_names_config_text() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(text="[server]\n", env={})
    assert str(info.value).startswith("<config text>: server.command is required")


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"server\.command"):
        load_config(text="", env={})


# --- files --------------------------------------------------------------------


def test_load_missing_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    missing = tmp_path / "roadrunner.toml"
    with pytest.raises(ConfigError) as info:
        load_config(missing)
    assert str(info.value) == (
        f"config file not found: {missing} "
        "(pass -c with the path to your roadrunner.toml)"
    )


def test_load_default_path_is_roadrunner_toml_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value).startswith(
        f"config file not found: {tmp_path / 'roadrunner.toml'} "
    )
    (tmp_path / "roadrunner.toml").write_text(SERVER)
    assert load_config(env={}).source == tmp_path / "roadrunner.toml"


def test_load_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value) == f"cannot read config file {tmp_path}: Is a directory"


def test_load_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rr.toml"
    path.write_bytes(b"[server]\ncommand = '\xff'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: not UTF-8 text (invalid start byte)"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            '[server]\ncommand = "php"\n[http]\naddress = 127.0.0.1:8080\n',
            "line 4, column 16: invalid TOML: Expected newline or end of document "
            "after a statement",
        ),
        (
            "[server]\ncommand = \n",
            "line 2, column 11: invalid TOML: Invalid value",
        ),
        (
            '[server]\ncommand = "a"\ncommand = "b"\n',
            "line 3, column 14: invalid TOML: Cannot overwrite a value",
        ),
        (
            "[server\n",
            "line 1, column 8: invalid TOML: "
            "Expected ']' at the end of a table declaration",
        ),
    ],
)
def test_load_invalid_toml_gives_line_and_column(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("roadrunner.toml", text=toml)
    assert str(info.value) == f"roadrunner.toml: {message}"


def test_load_working_dir_defaults_to_file_directory(tmp_path: Path) -> None:
    path = tmp_path / "app" / "roadrunner.toml"
    path.parent.mkdir()
    path.write_text(SERVER)
    config = load_config(path, env={})
    assert config.working_dir == tmp_path / "app"
    assert config.source == path


def test_load_working_dir_in_file_is_relative_to_file(tmp_path: Path) -> None:
    (tmp_path / "public").mkdir()
    path = tmp_path / "roadrunner.toml"
    path.write_text('working_dir = "public/../public"\n' + SERVER)
    assert load_config(path, env={}).working_dir == tmp_path / "public"


def test_load_working_dir_argument_wins(tmp_path: Path) -> None:
    path = tmp_path / "roadrunner.toml"
    path.write_text('working_dir = "nowhere"\n' + SERVER)
    config = load_config(path, env={}, working_dir=tmp_path)
    assert config.working_dir == tmp_path


def test_load_text_without_path_runs_in_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(text=SERVER, env={})
    assert config.working_dir == tmp_path
    assert config.source is None


def test_load_working_dir_must_exist(tmp_path: Path) -> None:
    path = tmp_path / "roadrunner.toml"
    path.write_text('working_dir = "nowhere"\n' + SERVER)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(info.value) == (
        f"{path}: working_dir must be an existing directory, "
        f'got "{tmp_path / "nowhere"}"'
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={}, working_dir=tmp_path / "gone")
    assert str(info.value) == (
        f'working_dir must be an existing directory, got "{tmp_path / "gone"}"'
    )


@pytest.mark.parametrize(
    ("output", "resolved"),
    [
        ("stderr", "stderr"),
        ("stdout", "stdout"),
        ("logs/rr.log", "{dir}/logs/rr.log"),
        ("/var/log/rr.log", "/var/log/rr.log"),
    ],
)
def test_load_log_file_is_relative_to_working_dir(
    tmp_path: Path, output: str, resolved: str
) -> None:
    config = load_config(
        tmp_path / "roadrunner.toml",
        text=f'[logs]\noutput = "{output}"\n{SERVER}',
        env={},
    )
    assert config.logs.output == resolved.format(dir=tmp_path)


# --- ${VAR} expansion ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("${A}", "a"),
        ("x${A}y", "xay"),
        ("${A}${B}", "ab"),
        ("${UNSET}", ""),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${A:-fallback}", "a"),
        ("${UNSET:-}", ""),
        ("${UNSET:-${B}}", "b"),
        ("${UNSET:-${ALSO_UNSET:-deep}}", "deep"),
        ("${UNSET:-x${A}y}", "xay"),
        ("${UNSET:-a:-b}", "a:-b"),
        ("$$", "$"),
        ("$${A}", "${A}"),
        ("php -r '$x = 1;'", "php -r '$x = 1;'"),
        ("cost: 5$", "cost: 5$"),
        ("${REF}", "${A}"),
    ],
)
def test_expand_env(text: str, expanded: str) -> None:
    env = {"A": "a", "B": "b", "EMPTY": "", "REF": "${A}"}
    assert expand_env(text, env) == expanded


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("${A", '"${" is not closed with "}"'),
        ("${A:-${B}", '"${" is not closed with "}"'),
        ("${}", '"" is not a variable name'),
        ("${1A}", '"1A" is not a variable name'),
        ("${A B}", '"A B" is not a variable name'),
    ],
)
def test_expand_env_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        expand_env(text, {})
    assert str(info.value) == reason


def test_load_expands_env_in_every_string_after_parsing() -> None:
    config = load(
        """
        [http]
        address = "${HOST:-127.0.0.1}:${PORT}"
        codec = "${CODEC}"
        [http.pool]
        num_workers = "${WORKERS:-4}"
        debug = "${DEBUG}"
        allocate_timeout = "${TIMEOUT}"
        [logs]
        output = "/${LOG_DIR}/rr.log"
        """,
        env={
            "PORT": "9000",
            "CODEC": "json",
            "DEBUG": "true",
            "TIMEOUT": "1m",
            "LOG_DIR": 'a "quoted" dir',
        },
    )
    assert config.http is not None
    assert config.http.address == "127.0.0.1:9000"
    assert config.http.codec == "json"
    assert config.http.pool.num_workers == 4
    assert config.http.pool.debug is True
    assert config.http.pool.allocate_timeout == 60.0
    assert config.logs.output == '/a "quoted" dir/rr.log'


def test_load_expands_env_in_server_env_values() -> None:
    config = load_config(
        text='[server]\ncommand = "php w.php"\nenv = { home = "${HOME}/app" }\n',
        env={"HOME": "/home/u"},
    )
    assert config.server.env == {"HOME": "/home/u/app"}


def test_load_uses_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIO_RUNNER_TEST_CMD", "php from-env.php")
    config = load_config(text='[server]\ncommand = "${TRIO_RUNNER_TEST_CMD}"\n')
    assert config.server.command == ("php", "from-env.php")


def test_load_env_value_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load('[http.pool]\nnum_workers = "${WORKERS:-1}"\n', env={"WORKERS": "four"})
    assert str(info.value) == (
        "roadrunner.toml: http.pool.num_workers must be an integer from 0 to 500 "
        '(0 = one per CPU), got "four" (from ${WORKERS})'
    )


def test_load_bad_expansion_names_the_key() -> None:
    assert error_of('[http]\naddress = "${HOST:8080"\n') == (
        'roadrunner.toml: http.address has a bad ${...} in "${HOST:8080": '
        '"${" is not closed with "}"'
    )


# --- -o overrides -------------------------------------------------------------


def test_override_replaces_a_file_value() -> None:
    config = load('[logs]\nlevel = "info"\n', overrides=("logs.level=debug",))
    assert config.logs.level == "debug"


def test_override_creates_missing_sections() -> None:
    config = load(overrides=("http.pool.supervisor.exec_ttl=30s",))
    assert config.http is not None
    assert config.http.pool.supervisor.exec_ttl == 30.0
    assert config.http.address == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("override", "attribute", "value"),
    [
        ("http.pool.num_workers=4", "num_workers", 4),
        ("http.pool.num_workers = 4", "num_workers", 4),
        ("http.pool.debug=true", "debug", True),
        ("http.pool.allocate_timeout=2.5", "allocate_timeout", 2.5),
        ("http.pool.allocate_timeout=500ms", "allocate_timeout", 0.5),
        ('http.pool.command=["php", "a b.php"]', "command", ("php", "a b.php")),
        ("http.pool.command=php worker.php", "command", ("php", "worker.php")),
        ('http.pool.command="php x.php"', "command", ("php", "x.php")),
    ],
)
def test_override_parses_toml_values_else_takes_a_string(
    override: str, attribute: str, value: object
) -> None:
    config = load(overrides=(override,))
    assert config.http is not None
    assert getattr(config.http.pool, attribute) == value


@pytest.mark.parametrize(
    ("override", "address"),
    [
        ("http.address=127.0.0.1:9000", "127.0.0.1:9000"),
        ("http.address=:9000", ":9000"),
        ("http.address=[::1]:9000", "[::1]:9000"),
        ('http.address="0.0.0.0:1"', "0.0.0.0:1"),
    ],
)
def test_override_address_string(override: str, address: str) -> None:
    config = load(overrides=(override,))
    assert config.http is not None
    assert config.http.address == address


@pytest.mark.parametrize(
    ("override", "user"),
    [
        ("server.user=2024-01-01", "2024-01-01"),
        ("server.user=inf", "inf"),
        ("server.user=a=b", "a=b"),
        ("server.user=", ""),
        ("server.user=x\ny = 1", "x\ny = 1"),
    ],
)
def test_override_odd_values_stay_strings(override: str, user: str) -> None:
    assert load(overrides=(override,)).server.user == user


def test_overrides_apply_in_order_and_expand_env() -> None:
    config = load(
        overrides=("server.command=php a.php", "server.command=php ${APP}"),
        env={"APP": "b.php"},
    )
    assert config.server.command == ("php", "b.php")


@pytest.mark.parametrize(
    "override",
    [
        "http.middleware=gzip,headers",
        "http.middleware=gzip, headers,",
        'http.middleware=["gzip", "headers"]',
    ],
)
def test_override_middleware_list(override: str) -> None:
    config = load(overrides=(override,))
    assert config.http is not None
    assert config.http.middleware == ("gzip", "headers")


def test_middleware_that_does_not_exist_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load(overrides=('http.middleware=["gzip", "sendfile"]',))
    assert str(info.value) == (
        'command-line override: http.middleware has "sendfile", which is not '
        "supported (yet); supported: gzip, headers, static"
    )


def test_override_replaces_a_table_with_an_inline_table() -> None:
    config = load(overrides=('server.env={ A = "1" }',))
    assert config.server.env == {"A": "1"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "http.pool.num_workers",
            'bad override -o "http.pool.num_workers": expected key.path=value, '
            "e.g. -o http.address=127.0.0.1:8080",
        ),
        (
            "=4",
            'bad override -o "=4": expected key.path=value, '
            "e.g. -o http.address=127.0.0.1:8080",
        ),
        (
            "http..address=:80",
            'bad override -o "http..address=:80": expected key.path=value, '
            "e.g. -o http.address=127.0.0.1:8080",
        ),
        (
            "server.command.x=1",
            "command-line override: cannot set server.command.x: "
            'server.command is "php worker.php", not a table',
        ),
        (
            "http.pool.num_workers=four",
            "command-line override: http.pool.num_workers must be an integer "
            'from 0 to 500 (0 = one per CPU), got "four"',
        ),
        (
            "http.pool.num_worker=4",
            "command-line override: unknown key http.pool.num_worker "
            "(did you mean http.pool.num_workers?)",
        ),
        (
            "jobs.num_pollers=2",
            "command-line override: jobs is not supported yet: trio_runner "
            "does not implement this RoadRunner section; remove it",
        ),
        (
            "http.pool={ num_workers = 1000 }",
            "command-line override: http.pool.num_workers must be an integer "
            "from 0 to 500 (0 = one per CPU), got 1000",
        ),
    ],
)
def test_override_errors(override: str, message: str) -> None:
    # The last case: an error inside a table an override set is the override's.
    assert error_of("[http.pool]\nnum_workers = 2\n", (override,)) == message


# --- config_from_mapping ------------------------------------------------------


def test_config_from_mapping_checks_like_a_file(tmp_path: Path) -> None:
    data: dict[str, Any] = {
        "server": {"command": ["php", "w.php"], "env": {"x": 1}},
        "http": {"pool": {"num_workers": "2", "supervisor": {"ttl": "1h"}}},
    }
    config = config_from_mapping(data, env={}, working_dir=tmp_path)
    assert config.server.env == {"X": "1"}
    assert config.http is not None
    assert config.http.pool.num_workers == 2
    assert config.http.pool.supervisor.ttl == 3600.0
    assert config.working_dir == tmp_path
    assert data["server"]["env"] == {"x": 1}  # the input is not modified


def test_config_from_mapping_overrides_do_not_touch_the_input() -> None:
    data = {"server": {"command": "php w.php"}}
    config = config_from_mapping(data, overrides=("http.address=:1",), env={})
    assert config.http is not None
    assert data == {"server": {"command": "php w.php"}}


def test_config_from_mapping_errors_name_the_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"server": {"command": "php w.php", "relay": 1}})
    assert str(info.value) == (
        '<config>: server.relay must be "pipes", "tcp://host:port" or '
        '"unix://path", got 1'
    )
    with pytest.raises(ConfigError) as info:
        config_from_mapping({"server": {1: "x"}}, source=tmp_path / "app.toml")
    assert str(info.value) == (
        f"{tmp_path / 'app.toml'}: keys must be strings, got 1 in server"
    )


def test_load_reload_services_are_named_sections() -> None:
    config = load(
        """
        [http]
        [reload]
        interval = "250ms"
        [reload.services.http]
        dirs = ["src"]
        ignore = ["vendor"]
        patterns = ["PHP", ".twig"]
        """
    )
    assert config.reload is not None
    assert config.reload.interval == 0.25
    service = config.reload.services["http"]
    assert service.dirs == ("src",)
    assert service.patterns == (".php", ".twig")
    assert service.recursive is True


def test_load_reload_service_errors_name_the_pool() -> None:
    with pytest.raises(ConfigError) as info:
        load("[http]\n[reload.services.http]\ndir = ['src']")
    assert str(info.value) == (
        "roadrunner.toml: unknown key reload.services.http.dir "
        "(did you mean reload.services.http.dirs?)"
    )


# --- metrics, status, log channels ----------------------------------------------


def test_load_metrics_and_status_sections() -> None:
    config = load(
        "[metrics]\n"
        'address = "127.0.0.1:9180"\n'
        "[metrics.collect.app_orders]\n"
        'type = "Counter"\n'
        'help = "Orders placed."\n'
        'labels = ["kind"]\n'
        "[metrics.collect.app_wait]\n"
        'type = "histogram"\n'
        'namespace = "shop"\n'
        "buckets = [0.1, 1, 10]\n"
        "[metrics.collect.app_size]\n"
        'type = "summary"\n'
        'objectives = { "0.99" = 0.001, "0.5" = 0.05 }\n'
        "[status]\n"
        "unavailable_status_code = 500\n"
    )
    assert config.metrics is not None and config.status is not None
    assert config.metrics.address == "127.0.0.1:9180"
    orders = config.metrics.collect["app_orders"]
    assert (orders.type, orders.help, orders.labels) == (
        "counter",
        "Orders placed.",
        ("kind",),
    )
    wait = config.metrics.collect["app_wait"]
    assert (wait.namespace, wait.buckets) == ("shop", (0.1, 1.0, 10.0))
    assert config.metrics.collect["app_size"].objectives == ((0.5, 0.05), (0.99, 0.001))
    assert config.status.address == "127.0.0.1:2114"
    assert config.status.unavailable_status_code == 500


def test_load_leaves_metrics_and_status_off_without_their_sections() -> None:
    config = load("")
    assert (config.metrics, config.status) == (None, None)
    config = load("", overrides=("metrics.address=127.0.0.1:0", "status={}"))
    assert config.metrics is not None and config.metrics.address == "127.0.0.1:0"
    assert config.status is not None


METRICS_ERRORS = [
    pytest.param(
        "[metrics.collect.app_x]\nhelp = 'x'",
        "roadrunner.toml: metrics.collect.app_x.type is required: set it to "
        '"counter", "gauge", "histogram" or "summary"',
        id="type-required",
    ),
    pytest.param(
        "[metrics.collect.app_x]\ntype = 'meter'",
        'roadrunner.toml: metrics.collect.app_x.type must be "counter", '
        '"gauge", "histogram" or "summary", got "meter"',
        id="type-unknown",
    ),
    pytest.param(
        "[metrics.collect.app-x]\ntype = 'gauge'",
        "roadrunner.toml: metrics.collect.app-x has a bad name: it must be a "
        'metric name such as "app_jobs" (letters, digits, "_" and ":"), got '
        '"app-x"',
        id="bad-name",
    ),
    pytest.param(
        "[metrics.collect.x]\ntype = 'gauge'\nnamespace = '1app'",
        "roadrunner.toml: metrics.collect.x.namespace must be empty or a metric "
        'name such as "app_jobs" (letters, digits, "_" and ":"), got "1app"',
        id="bad-namespace",
    ),
    pytest.param(
        "[metrics.collect.x]\ntype = 'histogram'\nbuckets = [1, 0.5]",
        "roadrunner.toml: metrics.collect.x.buckets must be a list of increasing "
        "numbers such as [0.1, 0.5, 1, 5], got [1, 0.5] (each bound must be "
        "larger than the one before)",
        id="buckets-order",
    ),
    pytest.param(
        "[metrics.collect.x]\ntype = 'histogram'\nlabels = ['le']",
        "roadrunner.toml: metrics.collect.x.labels must be a list of label names "
        'such as ["queue", "status"], got ["le"] ("le" is reserved by Prometheus)',
        id="label-reserved",
    ),
    pytest.param(
        "[metrics.collect.x]\ntype = 'summary'\nobjectives = { 0.5 = 0.05 }",
        "roadrunner.toml: metrics.collect.x.objectives must be a table of "
        'quantiles and errors such as { "0.5" = 0.05, "0.9" = 0.01 }, got a table '
        '(quote a quantile key: "0.5" = ...)',
        id="objectives-unquoted",
    ),
    pytest.param(
        "[metrics.collect.x]\ntype = 'summary'\nobjectives = { '2' = 0.05 }",
        "roadrunner.toml: metrics.collect.x.objectives must be a table of "
        'quantiles and errors such as { "0.5" = 0.05, "0.9" = 0.01 }, got a table '
        '("2" is not a quantile between 0 and 1)',
        id="objectives-range",
    ),
    pytest.param(
        "[status]\nunavailable_status_code = 200",
        "roadrunner.toml: status.unavailable_status_code must be an integer from "
        "400 to 599, got 200",
        id="status-code",
    ),
    pytest.param(
        "[status]\nadress = ':2114'",
        "roadrunner.toml: unknown key status.adress (did you mean status.address?)",
        id="status-typo",
    ),
    pytest.param(
        "[logs.channels.htp]\nlevel = 'debug'",
        'roadrunner.toml: logs.channels.htp has a bad name: it must be "http", '
        '"server", "pool", "rpc", "app", "metrics", "status" or "reload", got '
        '"htp"',
        id="channel-unknown",
    ),
    pytest.param(
        "[logs.channels.http]\nlevel = 'loud'",
        'roadrunner.toml: logs.channels.http.level must be "debug", "info", '
        '"warn", "warning" or "error", got "loud"',
        id="channel-level",
    ),
]


@pytest.mark.parametrize(("toml", "message"), METRICS_ERRORS)
def test_load_metrics_status_and_channel_errors(toml: str, message: str) -> None:
    assert error_of(toml) == message


def test_load_metrics_address_error_names_the_key() -> None:
    assert error_of("[metrics]\naddress = 'localhost'").startswith(
        "roadrunner.toml: metrics.address must be "
    )


def test_load_log_channels_inherit_and_files_are_under_working_dir(
    tmp_path: Path,
) -> None:
    (tmp_path / "roadrunner.toml").write_text(
        SERVER + "[logs]\nencoding = 'json'\n"
        "[logs.channels.http]\noutput = 'logs/access.log'\n"
        "[logs.channels.pool]\nlevel = 'debug'\n"
    )
    config = load_config(tmp_path / "roadrunner.toml", env={})
    http, pool = config.logs.channels["http"], config.logs.channels["pool"]
    assert http.output == str(tmp_path / "logs" / "access.log")
    assert (http.level, http.encoding, http.mode) == (None, None, None)
    assert (pool.level, pool.output) == ("debug", None)


def test_load_config_keeps_what_it_read_for_rpc_config(tmp_path) -> None:
    path = tmp_path / "roadrunner.toml"
    path.write_text(
        '[server]\ncommand = "php ${APP}"\n[rpc]\nlisten = "tcp://127.0.0.1:6001"\n'
    )
    config = load_config(
        path, overrides=["rpc.listen=tcp://127.0.0.1:7001"], env={"APP": "w.php"}
    )
    assert config.data == {
        "server": {"command": "php w.php"},
        "rpc": {"listen": "tcp://127.0.0.1:7001"},
    }


def test_load_error_names_the_variable_that_was_not_set(tmp_path: Path) -> None:
    # "got 127.0.0.1:" alone leaves the user guessing why the port is gone.
    text = f'{SERVER}[http]\naddress = "127.0.0.1:${{PORT}}"\n'
    with pytest.raises(ConfigError, match=r"\(\$\{PORT\} is not set or empty\)$"):
        load_config(tmp_path / "roadrunner.toml", text=text, env={})
    # Set, it is no part of the message; a default that is used is fine.
    with pytest.raises(ConfigError) as info:
        load_config(
            tmp_path / "roadrunner.toml",
            text=f'{SERVER}[http]\naddress = "${{HOST}}:${{PORT:-x}}"\n',
            env={"HOST": "127.0.0.1"},
        )
    assert "not set" not in str(info.value)
