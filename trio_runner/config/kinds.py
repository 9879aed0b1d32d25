"""Kinds of setting: how one config value is read, checked and described.

A kind turns what a TOML file, an expanded ``${VAR}`` or a ``-o`` override
can hold (strings, numbers, booleans, lists, tables) into the one Python
type the model stores, or raises :class:`Invalid` with the end of a sentence
that starts with the key path: ``must be an integer from 0 to 500, got
"four"``.

Invariant: ``kind.parse`` is idempotent, ``parse(parse(x)) == parse(x)``.
The model classes run it again as their attrs converter (see
``schema.bind_kinds``), so a loaded value passes through unchanged and a
value given directly to a constructor is checked as a file value would be.

Past 600 lines: it is the catalogue of every kind a setting may have, each
a small class with its parse rule and its "must be ..." text; they share
``Kind`` and ``Invalid`` and are read side by side.
"""

from __future__ import annotations

import abc
import ipaddress
import itertools
import json
import math
import os
import re
import shlex
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

import attrs

from trio_runner.config.units import parse_duration, split_host_port

__all__ = [
    "Address",
    "Boolean",
    "Buckets",
    "Choice",
    "Command",
    "Directory",
    "Duration",
    "EnvTable",
    "Extensions",
    "Fallback",
    "FrozenMap",
    "HeaderTable",
    "Integer",
    "Invalid",
    "Kind",
    "LabelNames",
    "MetricName",
    "Names",
    "Objectives",
    "Subnets",
    "Text",
    "Url",
    "Workers",
    "show",
]

T_co = TypeVar("T_co", covariant=True)


class Invalid(Exception):
    """A raw value does not fit its kind.

    ``str(exc)`` continues a sentence that starts with the key path.
    ``subkey`` names the entry of a table value that is wrong (an
    environment variable), so the loader can point at ``server.env.FOO``.
    """

    def __init__(self, message: str, subkey: str = "") -> None:
        super().__init__(message)
        self.subkey = subkey


def show(value: object) -> str:
    """Render a raw value for an error message, the way TOML would write it."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Mapping):
        return "a table"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(item) for item in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."


class Kind(abc.ABC, Generic[T_co]):
    """What one setting may hold."""

    @property
    @abc.abstractmethod
    def expected(self) -> str:
        """Completes "must be ...": what is allowed, with an example."""

    @abc.abstractmethod
    def parse(self, raw: object) -> T_co:
        """Return the stored value for ``raw``, or raise :class:`Invalid`."""

    # Whether a value with an unset ``${VAR}`` in it is refused even when
    # what is left parses: a command missing its script still runs.
    whole: ClassVar[bool] = False

    def refuse(self, raw: object, why: str = "") -> Invalid:
        reason = f" ({why})" if why else ""
        return Invalid(f"must be {self.expected}, got {show(raw)}{reason}")


@attrs.frozen
class Text(Kind[str]):
    """A string; ``nonempty`` refuses ``""`` (e.g. an unset ``${VAR}``)."""

    nonempty: bool = False

    @property
    def expected(self) -> str:
        return "a non-empty string" if self.nonempty else "a string"

    def parse(self, raw: object) -> str:
        if not isinstance(raw, str) or (self.nonempty and not raw):
            raise self.refuse(raw)
        return raw


@attrs.frozen
class Choice(Kind[str]):
    """One of a few words, matched without regard to case."""

    options: tuple[str, ...]

    @property
    def expected(self) -> str:
        quoted = [json.dumps(option) for option in self.options]
        if len(quoted) == 1:
            return quoted[0]
        return f"{', '.join(quoted[:-1])} or {quoted[-1]}"

    def parse(self, raw: object) -> str:
        # `version = 3` is as good as `version = "3"`.
        text = str(raw) if type(raw) is int else raw
        if isinstance(text, str):
            for option in self.options:
                if text.lower() == option.lower():
                    return option
        raise self.refuse(raw)


_INTEGER = re.compile(r"[+-]?[0-9]+")


@attrs.frozen
class Integer(Kind[int]):
    """An integer in ``[low, high]``; numeric strings count (from ``${VAR}``)."""

    low: int = 0
    high: int | None = None
    note: str = ""

    @property
    def expected(self) -> str:
        if self.high is None:
            text = f"an integer, {self.low} or more"
        else:
            text = f"an integer from {self.low} to {self.high}"
        return f"{text} ({self.note})" if self.note else text

    def parse(self, raw: object) -> int:
        if type(raw) is int:
            number = raw
        elif isinstance(raw, str) and _INTEGER.fullmatch(raw.strip()):
            number = int(raw)
        else:
            raise self.refuse(raw)
        if number < self.low or (self.high is not None and number > self.high):
            raise self.refuse(raw)
        return number


@attrs.frozen
class Workers(Kind[int]):
    """A worker count up to 500, where 0 means one worker per CPU."""

    limit: Integer = Integer(0, 500, note="0 = one per CPU")

    @property
    def expected(self) -> str:
        return self.limit.expected

    def parse(self, raw: object) -> int:
        # Capped so that parsing the result again cannot fail (idempotence).
        return self.limit.parse(raw) or min(os.cpu_count() or 1, 500)


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


@attrs.frozen
class Boolean(Kind[bool]):
    """true or false; the strings "true", "yes", "1" etc. count as well."""

    @property
    def expected(self) -> str:
        return "true or false"

    def parse(self, raw: object) -> bool:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            word = raw.strip().lower()
            if word in _TRUE or word in _FALSE:
                return word in _TRUE
        raise self.refuse(raw)


@attrs.frozen
class Duration(Kind[float]):
    """Seconds, as a number or a Go duration string such as ``"1m30s"``.

    ``zero_means``, when set, is what 0 stands for: RoadRunner reads a zero
    timeout as its default, never as "no time at all".
    """

    zero_means: float | None = None

    @property
    def expected(self) -> str:
        return 'a duration such as "60s", "500ms" or "1m30s", or a number of seconds'

    def parse(self, raw: object) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise self.refuse(raw)
        try:
            seconds = parse_duration(raw)
        except ValueError as exc:
            raise self.refuse(raw) from exc
        if seconds < 0:
            raise Invalid(f"must not be negative, got {show(raw)}")
        if seconds == 0 and self.zero_means is not None:
            return self.zero_means
        return seconds


@attrs.frozen
class Command(Kind[tuple[str, ...] | None]):
    """A worker command: a shell-like string (split with shlex) or a list.

    With ``optional`` an empty command means "not set" and parses to None,
    so ``command = "${POOL_COMMAND}"`` falls back when the variable is unset.
    """

    optional: bool = False
    whole: ClassVar[bool] = True  # "php ${SCRIPT}" without SCRIPT is no command

    @property
    def expected(self) -> str:
        return 'a command such as "php worker.php" or ["php", "worker.php"]'

    def parse(self, raw: object) -> tuple[str, ...] | None:
        if raw is None and self.optional:
            return None
        if isinstance(raw, str):
            try:
                argv = tuple(shlex.split(raw))
            except ValueError as exc:  # "No closing quotation"
                raise self.refuse(raw, str(exc).lower()) from exc
        elif isinstance(raw, list | tuple) and all(isinstance(a, str) for a in raw):
            argv = tuple(raw)
        else:
            raise self.refuse(raw)
        if not argv and not self.optional:
            raise self.refuse(raw)
        return argv or None


@attrs.frozen
class Address(Kind[str]):
    """A listening address ``host:port``; port 0 asks for any free port.

    An empty host (``":8080"``) means every interface, as in RoadRunner.
    """

    @property
    def expected(self) -> str:
        return '"host:port" such as "127.0.0.1:8080" or "[::1]:8080"'

    def parse(self, raw: object) -> str:
        if not isinstance(raw, str):
            raise self.refuse(raw)
        try:
            split_host_port(raw)
        except ValueError as exc:
            raise self.refuse(raw, str(exc)) from exc
        return raw


@attrs.frozen
class Url(Kind[str]):
    """An endpoint PHP connects to: ``tcp://host:port``, ``unix://path``.

    Kept verbatim: it reaches PHP as ``RR_RELAY`` / ``RR_RPC``. PHP's socket
    relay needs a host and speaks IPv4 only, so ``tcp://:6001`` and
    ``tcp://[::1]:6001`` are refused here rather than failing in every
    worker (PROTOCOL.md 2.1). A relative unix path is relative to the
    working directory.
    """

    pipes: bool = False

    @property
    def expected(self) -> str:
        urls = '"tcp://host:port" or "unix://path"'
        return f'"pipes", {urls}' if self.pipes else urls

    def parse(self, raw: object) -> str:
        if not isinstance(raw, str):
            raise self.refuse(raw)
        scheme, sep, rest = raw.partition("://")
        if self.pipes and raw == "pipes":
            return raw
        if sep and scheme == "unix" and rest:
            return raw
        if not sep or scheme != "tcp":
            raise self.refuse(raw)
        try:
            host, port = split_host_port(rest)
        except ValueError as exc:
            raise self.refuse(raw, str(exc)) from exc
        if not host:
            why = "PHP cannot connect without a host; use e.g. tcp://127.0.0.1:6001"
            raise self.refuse(raw, why)
        if ":" in host:
            raise self.refuse(raw, "PHP's socket relay speaks IPv4 only")
        if port == 0:
            raise self.refuse(raw, "PHP needs a fixed port to connect to")
        return raw


V = TypeVar("V")


class FrozenMap(Mapping[str, V]):
    """An immutable, hashable mapping from names (environment, headers,
    named sections)."""

    __slots__ = ("_data",)

    def __init__(self, items: Mapping[str, V] | Iterable[tuple[str, V]] = ()):
        self._data = dict(items)

    def __getitem__(self, key: str) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


@attrs.frozen
class EnvTable(Kind[FrozenMap[str]]):
    """Environment variables: names upper-cased (as RoadRunner does),
    scalar values turned into strings."""

    @property
    def expected(self) -> str:
        return 'a table of variables such as { APP_ENV = "prod" }'

    def parse(self, raw: object) -> FrozenMap[str]:
        if not isinstance(raw, Mapping):
            raise self.refuse(raw)
        env: dict[str, str] = {}
        for key, value in raw.items():
            name = str(key).upper()
            if not name or "=" in name or "\0" in name:
                raise Invalid(f"has an invalid variable name {show(key)}")
            if name in env:
                raise Invalid(f"sets {name} twice (names are upper-cased)")
            if isinstance(value, bool):
                env[name] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                env[name] = str(value)
            else:
                why = "must be a string, number or boolean"
                raise Invalid(f"{why}, got {show(value)}", subkey=str(key))
        return FrozenMap(env)


@attrs.frozen
class Names(Kind[tuple[str, ...]]):
    """A list of distinct names; a string is split on commas and spaces.

    ``known`` lists the names that exist; any other is refused, so a name
    trio_runner does not implement (yet) never looks as if it worked.
    """

    known: frozenset[str] | None = None

    @property
    def expected(self) -> str:
        return 'a list of names such as ["gzip", "headers"]'

    def parse(self, raw: object) -> tuple[str, ...]:
        if isinstance(raw, str):
            names = tuple(name for name in re.split(r"[,\s]+", raw) if name)
        elif isinstance(raw, list | tuple):
            names = tuple(raw)
        else:
            raise self.refuse(raw)
        if not all(isinstance(name, str) and name for name in names):
            raise self.refuse(raw)
        if len(set(names)) != len(names):
            raise self.refuse(raw, "a name is listed twice")
        if self.known is not None:
            for name in names:
                if name not in self.known:
                    offered = ", ".join(sorted(self.known)) or "none yet"
                    raise Invalid(
                        f"has {show(name)}, which is not supported (yet); "
                        f"supported: {offered}"
                    )
        return names


@attrs.frozen
class Directory(Kind[Path]):
    """A directory path. The loader resolves it and checks it exists."""

    @property
    def expected(self) -> str:
        return "a directory path"

    def parse(self, raw: object) -> Path:
        if isinstance(raw, Path):
            return raw
        if not isinstance(raw, str) or not raw:
            raise self.refuse(raw)
        return Path(raw)


@attrs.frozen
class HeaderTable(Kind[FrozenMap[str]]):
    """HTTP header names and values, ``{ X-Powered-By = "trio_runner" }``."""

    @property
    def expected(self) -> str:
        return 'a table of headers such as { X-Powered-By = "trio_runner" }'

    def parse(self, raw: object) -> FrozenMap[str]:
        if not isinstance(raw, Mapping):
            raise self.refuse(raw)
        headers: dict[str, str] = {}
        for name, value in raw.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise Invalid(f"has an invalid header name {show(name)}")
            if not isinstance(value, str) or _HEADER_VALUE_BAD.search(value):
                why = "must be a string without control characters"
                raise Invalid(f"{why}, got {show(value)}", subkey=name)
            headers[name] = value
        return FrozenMap(headers)


_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@attrs.frozen
class Extensions(Kind[tuple[str, ...]]):
    """File extensions such as ``[".php", ".exe"]``, kept lower-cased.

    RoadRunner compares extensions lower-cased and with the dot; a name
    given without the dot gets one. Empty entries (RoadRunner's samples
    write ``forbid = [""]``) are dropped.
    """

    @property
    def expected(self) -> str:
        return 'a list of file extensions such as [".php", ".exe"]'

    def parse(self, raw: object) -> tuple[str, ...]:
        if not isinstance(raw, list | tuple):
            raise self.refuse(raw)
        extensions: list[str] = []
        for item in raw:
            if not isinstance(item, str) or "/" in item:
                raise self.refuse(raw)
            if not item:
                continue
            extension = item.lower() if item.startswith(".") else f".{item.lower()}"
            if extension not in extensions:
                extensions.append(extension)
        return tuple(extensions)


@attrs.frozen
class Subnets(Kind[tuple[str, ...]]):
    """IP networks in CIDR form, such as ``["10.0.0.0/8", "::1/128"]``."""

    @property
    def expected(self) -> str:
        return 'a list of networks such as ["10.0.0.0/8", "::1/128"]'

    def parse(self, raw: object) -> tuple[str, ...]:
        if not isinstance(raw, list | tuple):
            raise self.refuse(raw)
        subnets: list[str] = []
        for item in raw:
            if not isinstance(item, str):
                raise self.refuse(raw)
            try:
                network = ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise Invalid(
                    f"has {show(item)}, which is not a network such as "
                    '"10.0.0.0/8" or "::1/128"'
                ) from None
            subnets.append(str(network))
        return tuple(subnets)


@attrs.frozen
class Fallback(Kind[T_co | None]):
    """``kind``, or None for "not set" (a per-channel log setting that
    falls back to the ``[logs]`` one)."""

    kind: Kind[T_co]

    @property
    def expected(self) -> str:
        return self.kind.expected

    def parse(self, raw: object) -> T_co | None:
        return None if raw is None else self.kind.parse(raw)


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Label names Prometheus gives a meaning of its own.
_RESERVED_LABELS = frozenset({"le", "quantile"})


@attrs.frozen
class MetricName(Kind[str]):
    """A Prometheus metric name (or part of one, a namespace or subsystem):
    letters, digits, ``_`` and ``:``, not starting with a digit. With
    ``optional`` the empty string is allowed too."""

    optional: bool = False

    @property
    def expected(self) -> str:
        text = 'a metric name such as "app_jobs" (letters, digits, "_" and ":")'
        return f"empty or {text}" if self.optional else text

    def parse(self, raw: object) -> str:
        if not isinstance(raw, str):
            raise self.refuse(raw)
        if (raw or not self.optional) and not _METRIC_NAME.fullmatch(raw):
            raise self.refuse(raw)
        return raw


@attrs.frozen
class LabelNames(Kind[tuple[str, ...]]):
    """Distinct Prometheus label names, such as ``["queue", "status"]``.

    ``le`` and ``quantile`` are refused: Prometheus uses them for histogram
    buckets and summary quantiles, and names starting ``__`` are its own.
    """

    @property
    def expected(self) -> str:
        return 'a list of label names such as ["queue", "status"]'

    def parse(self, raw: object) -> tuple[str, ...]:
        if not isinstance(raw, list | tuple):
            raise self.refuse(raw)
        for name in raw:
            if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
                raise self.refuse(raw, f"{show(name)} is not a label name")
            if name in _RESERVED_LABELS or name.startswith("__"):
                why = f"{show(name)} is reserved by Prometheus"
                raise self.refuse(raw, why)
        if len(set(raw)) != len(raw):
            raise self.refuse(raw, "a label is listed twice")
        return tuple(raw)


def _number(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


@attrs.frozen
class Buckets(Kind[tuple[float, ...]]):
    """Histogram bucket upper bounds, increasing, such as ``[0.1, 0.5, 1]``.

    ``+Inf`` is always added by Prometheus and need not be listed.
    """

    @property
    def expected(self) -> str:
        return "a list of increasing numbers such as [0.1, 0.5, 1, 5]"

    def parse(self, raw: object) -> tuple[float, ...]:
        if not isinstance(raw, list | tuple):
            raise self.refuse(raw)
        bounds = [_number(item) for item in raw]
        if any(bound is None for bound in bounds):
            raise self.refuse(raw)
        checked = tuple(bound for bound in bounds if bound is not None)
        if any(b <= a for a, b in itertools.pairwise(checked)):
            raise self.refuse(raw, "each bound must be larger than the one before")
        return checked


@attrs.frozen
class Objectives(Kind[tuple[tuple[float, float], ...]]):
    """Summary quantiles and their allowed error, ``{ "0.5" = 0.05 }``.

    Stored as ``((quantile, error), ...)`` sorted by quantile. A TOML key
    with a dot must be quoted (``0.5 = ...`` would be a nested table), so a
    nested table gets an error saying so.
    """

    @property
    def expected(self) -> str:
        return 'a table of quantiles and errors such as { "0.5" = 0.05, "0.9" = 0.01 }'

    def parse(self, raw: object) -> tuple[tuple[float, float], ...]:
        if isinstance(raw, tuple) and all(
            isinstance(pair, tuple) and len(pair) == 2 for pair in raw
        ):
            raw = {str(quantile): error for quantile, error in raw}  # parsed before
        if not isinstance(raw, Mapping):
            raise self.refuse(raw)
        pairs = []
        for key, value in raw.items():
            if isinstance(value, Mapping):
                why = f'quote a quantile key: "{key}.{next(iter(value), "5")}" = ...'
                raise self.refuse(raw, why)
            try:
                quantile = float(key)
            except ValueError:
                quantile = math.nan
            error = _number(value)
            if not 0 < quantile < 1:
                raise self.refuse(raw, f"{show(key)} is not a quantile between 0 and 1")
            if error is None or not 0 <= error < 1:
                raise self.refuse(raw, f"the error for {key} must be from 0 to 1")
            pairs.append((quantile, error))
        return tuple(sorted(pairs))
