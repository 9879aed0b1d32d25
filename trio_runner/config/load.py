"""Reading a config: TOML, then ``-o`` overrides, then ``${VAR}``, then checks.

The order is fixed and each step sees plain data::

    file text --tomllib--> tables --overrides--> --expand ${VAR}--> Config

Overrides land before expansion so ``-o 'server.command=php ${APP}'``
behaves like the same line in the file. Expansion runs on parsed strings,
so a value can never break TOML quoting. The walk over the model is driven
by field metadata (``schema.setting`` / ``schema.section``). Only
``working_dir`` is special: it depends on where the file is, and a relative
``logs.output`` file is made absolute against it. ``source`` is not a key.

This is the one place where OS and TOML errors become ConfigError. Every
ConfigError is one line: where (the file, or "command-line override"),
which key, the bad value, and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from datetime import date, time
from pathlib import Path
from typing import Any

import attrs

from trio_runner.config.kinds import Invalid, Kind, show
from trio_runner.config.model import Config, LogsConfig
from trio_runner.config.schema import KIND, SECTION, SECTION_NAME, SECTIONS
from trio_runner.errors import ConfigError

__all__ = ["DEFAULT_PATH", "config_from_mapping", "expand_env", "load_config"]

DEFAULT_PATH = "roadrunner.toml"

_OVERRIDE_ORIGIN = "command-line override"
_STREAMS = ("stderr", "stdout")
_TOML_POSITION = re.compile(r"(.*) \(at (line \d+, column \d+|end of document)\)")
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_Path = tuple[str, ...]


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    text: str | None = None,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    working_dir: str | os.PathLike[str] | None = None,
) -> Config:
    """Read and check a ``roadrunner.toml``.

    Args:
        path: the file; ``roadrunner.toml`` in the current directory if
            None. With ``text`` it only names the source in messages and
            sets the default working directory.
        text: TOML to read instead of the file.
        overrides: ``key.path=value`` strings, applied after the file in
            order. The value is read as a TOML value when it is one
            (``4``, ``true``, ``["a", "b"]``), else taken as a string.
        env: variables for ``${VAR}`` expansion; ``os.environ`` if None.
        working_dir: replaces the file's ``working_dir``; a relative path
            is relative to the current directory.

    Raises:
        ConfigError: the file is missing, unreadable or not TOML, or a
            value is invalid. The message is one line naming the key.
    """
    file: Path | None = None
    if text is None:
        file = Path(path if path is not None else DEFAULT_PATH)
        text = _read(file)
    elif path is not None:
        file = Path(path)
    origin = str(file) if file is not None else "<config text>"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: {_toml_message(exc)}") from exc
    return _load(
        data,
        origin=origin,
        source=file.absolute() if file is not None else None,
        overrides=overrides,
        env=env,
        working_dir=working_dir,
    )


def config_from_mapping(
    data: Mapping[str, Any],
    *,
    overrides: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    working_dir: str | os.PathLike[str] | None = None,
    source: str | os.PathLike[str] | None = None,
) -> Config:
    """Check a config given as nested mappings, as if read from TOML.

    For embedding: the same expansion, overrides and checks as
    :func:`load_config`. ``source`` names the origin in messages and, when
    given, sets the default working directory to its parent.

    Raises:
        ConfigError: a value is invalid.
    """
    file = Path(source).absolute() if source is not None else None
    return _load(
        data,
        origin=str(source) if source is not None else "<config>",
        source=file,
        overrides=overrides,
        env=env,
        working_dir=working_dir,
    )


def expand_env(
    text: str,
    env: Mapping[str, str],
    unset: list[str] | None = None,
    used: list[str] | None = None,
) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` in ``text``; ``$$`` is ``$``.

    An unset variable expands to "" (as in RoadRunner). The default is used
    when the variable is unset or empty, and may itself hold ``${...}``. A
    ``$`` before anything else is kept as it is.

    The names of variables that expanded to "" are added to ``unset``, those
    whose values were used to ``used``.

    Raises:
        ValueError: an unclosed ``${`` or a bad variable name.
    """
    out: list[str] = []
    i = 0
    while (start := text.find("$", i)) != -1:
        out.append(text[i:start])
        if text.startswith("$$", start):
            out.append("$")
            i = start + 2
        elif text.startswith("${", start):
            end = _closing_brace(text, start + 2)
            name, sep, default = text[start + 2 : end].partition(":-")
            if not _VAR_NAME.fullmatch(name):
                raise ValueError(f"{show(name)} is not a variable name")
            value = env.get(name, "")
            if sep and not value:
                value = expand_env(default, env, unset, used)
            elif not value and unset is not None:
                unset.append(name)
            elif value and used is not None:
                used.append(name)
            out.append(value)
            i = end + 1
        else:
            out.append("$")
            i = start + 1
    out.append(text[i:])
    return "".join(out)


def _closing_brace(text: str, i: int) -> int:
    depth = 1
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError('"${" is not closed with "}"')


def _read(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            f"config file not found: {file.absolute()} "
            f"(pass -c with the path to your {DEFAULT_PATH})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot read config file {file}: {reason}") from exc


def _toml_message(exc: tomllib.TOMLDecodeError) -> str:
    # Python 3.11's TOMLDecodeError has the position only in its text.
    match = _TOML_POSITION.fullmatch(str(exc))
    if match is None:
        return f"invalid TOML: {exc}"
    return f"{match[2]}: invalid TOML: {match[1]}"


def _load(
    data: Mapping[str, Any],
    *,
    origin: str,
    source: Path | None,
    overrides: Sequence[str],
    env: Mapping[str, str] | None,
    working_dir: str | os.PathLike[str] | None,
) -> Config:
    tree = _plain(data, (), origin)
    overridden = [p for item in overrides for p in _apply_override(tree, item)]
    reader = _Reader(origin, frozenset(overridden))
    tree = reader.expand(tree, (), os.environ if env is None else env)
    fields = reader.fields(Config, tree, ())

    base = source.parent if source is not None else Path.cwd()
    if working_dir is not None:
        where, directory = "", Path(working_dir).absolute()
    else:
        where = f"{reader.origin_of(('working_dir',))}: "
        directory = base / fields.get("working_dir", base)
    if not directory.is_dir():
        raise ConfigError(
            f"{where}working_dir must be an existing directory, "
            f"got {show(str(directory))}"
        )
    fields["working_dir"] = directory = Path(os.path.normpath(directory))

    # Log files are opened by a process that does not run in working_dir.
    logs = fields.get("logs")
    if logs is not None:
        fields["logs"] = _absolute_log_files(logs, directory)
    return Config(**fields, source=source, data=tree)


def _absolute_log_files(logs: LogsConfig, directory: Path) -> LogsConfig:
    def absolute(output: str) -> str:
        return output if output in _STREAMS else str(directory / output)

    channels = {
        name: attrs.evolve(channel, output=absolute(channel.output))
        if channel.output is not None
        else channel
        for name, channel in logs.channels.items()
    }
    return attrs.evolve(logs, output=absolute(logs.output), channels=channels)


def _plain(value: Any, path: _Path, origin: str) -> Any:
    """A mutable copy of nested mappings and sequences as dicts and lists."""
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise ConfigError(
                    f"{origin}: keys must be strings, got {show(key)} "
                    f"in {_dotted(path) or 'the top-level table'}"
                )
        return {k: _plain(v, (*path, k), origin) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, path, origin) for v in value]
    return value


def _apply_override(tree: dict[str, Any], item: str) -> list[_Path]:
    """Set ``key.path=value`` in ``tree``, creating tables on the way.

    Returns the paths the override set or created, so that errors in them
    are blamed on the override rather than on the file.
    """
    key, sep, text = item.partition("=")
    path = tuple(part.strip() for part in key.split("."))
    if not sep or not all(path):
        raise ConfigError(
            f"bad override -o {show(item)}: expected key.path=value, "
            "e.g. -o http.address=127.0.0.1:8080"
        )
    touched = [path]
    node = tree
    for depth, part in enumerate(path[:-1], start=1):
        if part not in node:
            node[part] = {}
            touched.append(path[:depth])
        child = node[part]
        if not isinstance(child, dict):
            raise ConfigError(
                f"{_OVERRIDE_ORIGIN}: cannot set {_dotted(path)}: "
                f"{_dotted(path[:depth])} is {show(child)}, not a table"
            )
        node = child
    node[path[-1]] = _override_value(text.strip())
    return touched


def _override_value(text: str) -> object:
    """The TOML value ``text`` spells, or ``text`` itself if it spells none.

    Dates and inf/nan are TOML values no setting takes; a user who writes
    ``-o key=2024-01-01`` meant the string.
    """
    try:
        value = tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return text
    parsed = value.get("v")
    if value.keys() != {"v"} or isinstance(parsed, date | time):
        return text
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return text
    return parsed


def _dotted(path: _Path) -> str:
    return ".".join(path)


@attrs.frozen
class _Reader:
    """Walks plain data along the model, naming where each error came from."""

    origin: str
    overridden: frozenset[_Path]
    # Where a ${VAR} expanded to nothing, and which: errors there say so;
    # and where one gave the value, which.
    unset: dict[_Path, list[str]] = attrs.field(factory=dict)
    used: dict[_Path, list[str]] = attrs.field(factory=dict)

    def origin_of(self, path: _Path) -> str:
        """Who set ``path`` or a table holding it: an override, else the file."""
        for i in range(len(path), 0, -1):
            if path[:i] in self.overridden:
                return _OVERRIDE_ORIGIN
        return self.origin

    def error(self, path: _Path, message: str) -> ConfigError:
        names = self.unset.get(path)
        if names:
            listed = ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))
            verb = "is" if len(names) == 1 else "are"
            message += f" ({listed} {verb} not set or empty)"
        elif names := self.used.get(path):
            listed = ", ".join(f"${{{name}}}" for name in dict.fromkeys(names))
            message += f" (from {listed})"
        return ConfigError(f"{self.origin_of(path)}: {_dotted(path)} {message}")

    def expand(self, value: Any, path: _Path, env: Mapping[str, str]) -> Any:
        """``value`` with ``${VAR}`` expanded in every string in it."""
        if isinstance(value, str):
            unset: list[str] = []
            used: list[str] = []
            try:
                expanded = expand_env(value, env, unset, used)
            except ValueError as exc:
                message = f"has a bad ${{...}} in {show(value)}: {exc}"
                raise self.error(path, message) from exc
            if unset:
                self.unset.setdefault(path, []).extend(unset)
            if used:
                self.used.setdefault(path, []).extend(used)
            return expanded
        if isinstance(value, dict):
            return {k: self.expand(v, (*path, k), env) for k, v in value.items()}
        if isinstance(value, list):
            return [self.expand(v, path, env) for v in value]
        return value

    def fields(
        self, cls: type, table: Mapping[str, Any], path: _Path
    ) -> dict[str, Any]:
        """Constructor arguments for ``cls`` from ``table`` at ``path``."""
        known = {
            field.name: field
            for field in attrs.fields(cls)
            if field.metadata.keys() & {KIND, SECTION, SECTIONS}
        }
        for key in table:
            if key not in known:
                raise self._unknown_key(cls, key, table[key], path, list(known))

        args: dict[str, Any] = {}
        for name, field in known.items():
            where = (*path, name)
            required = field.default is attrs.NOTHING
            if name not in table and not required:
                continue
            if SECTION in field.metadata:
                sub = table.get(name, {})
                if not isinstance(sub, Mapping):
                    what = f"a table (a [{_dotted(where)}] section)"
                    raise self.error(where, f"must be {what}, got {show(sub)}")
                section_cls = field.metadata[SECTION]
                args[name] = section_cls(**self.fields(section_cls, sub, where))
                continue
            if SECTIONS in field.metadata:
                args[name] = self.sections(
                    field.metadata[SECTIONS],
                    table.get(name, {}),
                    where,
                    field.metadata.get(SECTION_NAME),
                )
                continue
            kind: Kind[Any] = field.metadata[KIND]
            if name not in table:
                raise self.error(where, f"is required: set it to {kind.expected}")
            try:
                args[name] = kind.parse(table[name])
            except Invalid as exc:
                at = (*where, exc.subkey) if exc.subkey else where
                raise self.error(at, str(exc)) from None
            if kind.whole and args[name] is not None and where in self.unset:
                first = self.unset[where][0]
                message = (
                    f"would be {show(table[name])}: set the variable, or give "
                    f"it a default as in ${{{first}:-...}}"
                )
                raise self.error(where, message)
        return args

    def sections(
        self, cls: type, table: object, path: _Path, names: Kind[str] | None
    ) -> dict[str, Any]:
        """Named tables of ``cls``: ``[reload.services.<name>]``; each name
        of the kind ``names``, when given."""
        if not isinstance(table, Mapping):
            what = f"a table of named sections ([{_dotted(path)}.<name>])"
            raise self.error(path, f"must be {what}, got {show(table)}")
        named = {}
        for key, sub in table.items():
            where = (*path, key)
            if names is not None:
                try:
                    names.parse(key)
                except Invalid as exc:
                    raise self.error(where, f"has a bad name: it {exc}") from None
            if not isinstance(sub, Mapping):
                what = f"a table (a [{_dotted(where)}] section)"
                raise self.error(where, f"must be {what}, got {show(sub)}")
            named[key] = cls(**self.fields(cls, sub, where))
        return named

    def _unknown_key(
        self,
        cls: type,
        key: str,
        value: object,
        path: _Path,
        valid: list[str],
    ) -> ConfigError:
        """The error for a key the model has no field for."""
        where = (*path, key)
        later: frozenset[str] = getattr(cls, "NOT_SUPPORTED_YET", frozenset())
        if key in later:
            what = "section" if isinstance(value, Mapping) else "setting"
            return ConfigError(
                f"{self.origin_of(where)}: {_dotted(where)} is not supported yet: "
                f"trio_runner does not implement this RoadRunner {what}; remove it"
            )
        # A valid key is the likelier intent; a not-yet-supported one must be
        # a near miss ("metric") to be worth suggesting.
        close = difflib.get_close_matches(key, valid, n=1) or (
            difflib.get_close_matches(key, later, n=1, cutoff=0.75)
        )
        if close:
            hint = f"did you mean {_dotted((*path, close[0]))}?"
        else:
            place = f"[{_dotted(path)}]" if path else "the top level"
            hint = f"valid keys in {place}: {', '.join(valid)}"
        return ConfigError(
            f"{self.origin_of(where)}: unknown key {_dotted(where)} ({hint})"
        )
