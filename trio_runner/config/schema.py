"""Field declarations for the model, and the metadata the loader walks.

The model declares each field with :func:`setting` (one value of a kind
from ``kinds``) or :func:`section` / :func:`optional_section` (a nested
table). The loader walks that metadata, so adding a key is one line in
``model.py``. :func:`bind_kinds`, the model's attrs field transformer, makes
each constructor parse its settings with the same kinds, so direct
construction is checked as a file is.

The helpers return attrs fields typed as the field's type, so that
``x: int = setting(...)`` reads naturally.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, overload

import attrs

from trio_runner.config.kinds import FrozenMap, Invalid, Kind
from trio_runner.errors import ConfigError

__all__ = [
    "KIND",
    "SECTION",
    "SECTIONS",
    "SECTION_NAME",
    "bind_kinds",
    "optional_section",
    "section",
    "section_map",
    "setting",
]

T = TypeVar("T")

KIND = "trio_runner.config.kind"
SECTION = "trio_runner.config.section"
SECTIONS = "trio_runner.config.sections"
# The kind the names of a section_map must have, if any.
SECTION_NAME = "trio_runner.config.section_name"


@overload
def setting(kind: Kind[T], default: T) -> T: ...
@overload
def setting(kind: Kind[T], *, factory: Callable[[], T]) -> T: ...
def setting(
    kind: Kind[T],
    default: Any = attrs.NOTHING,
    *,
    factory: Callable[[], T] | None = None,
) -> T:
    """An attrs field holding a value of ``kind``, with a default.

    A required setting is written ``attrs.field(metadata={KIND: kind})``
    instead: mypy's attrs plugin takes any other call for a default.
    """
    field: T = attrs.field(default=default, factory=factory, metadata={KIND: kind})
    return field


def section(cls: type[T]) -> T:
    """A nested table that is always present, defaulting to ``cls()``."""
    field: T = attrs.field(factory=cls, metadata={SECTION: cls})
    return field


def optional_section(cls: type[T]) -> T | None:
    """A nested table that is None when the file leaves it out."""
    field: T | None = attrs.field(default=None, metadata={SECTION: cls})
    return field


def section_map(cls: type[T], *, names: Kind[str] | None = None) -> Mapping[str, T]:
    """Named tables of one kind, ``[reload.services.http]``; empty by default.

    ``names``, when given, is the kind each name must be (a metric name, one
    of the log channels).
    """
    metadata: dict[str, object] = {SECTIONS: cls}
    if names is not None:
        metadata[SECTION_NAME] = names
    field: Mapping[str, T] = attrs.field(factory=FrozenMap, metadata=metadata)
    return field


def bind_kinds(
    cls: type, fields: list[attrs.Attribute[Any]]
) -> list[attrs.Attribute[Any]]:
    """attrs field transformer: parse each setting with its kind on init."""
    bound = []
    for field in fields:
        name = f"{cls.__name__}.{field.name}"
        if KIND in field.metadata:
            convert = functools.partial(_convert, field.metadata[KIND], name)
        elif SECTION in field.metadata:
            optional = field.default is None
            section_cls = field.metadata[SECTION]
            convert = functools.partial(_check_section, section_cls, name, optional)
        elif SECTIONS in field.metadata:
            section_cls = field.metadata[SECTIONS]
            names = field.metadata.get(SECTION_NAME)
            convert = functools.partial(_check_sections, section_cls, name, names)
        else:
            bound.append(field)
            continue
        bound.append(field.evolve(converter=convert))
    return bound


def _convert(kind: Kind[T], name: str, value: object) -> T:
    try:
        return kind.parse(value)
    except Invalid as exc:
        raise ConfigError(f"{name} {exc}") from None


def _check_section(cls: type, name: str, optional: bool, value: object) -> object:
    if isinstance(value, cls) or (optional and value is None):
        return value
    raise ConfigError(f"{name} must be a {cls.__name__}, got {value!r}")


def _check_sections(
    cls: type, name: str, names: Kind[str] | None, value: object
) -> FrozenMap[Any]:
    if isinstance(value, Mapping) and all(
        isinstance(key, str) and isinstance(item, cls) for key, item in value.items()
    ):
        if names is not None:
            for key in value:
                _convert(names, f"{name}.{key}: the name", key)
        return FrozenMap(value)
    raise ConfigError(f"{name} must map names to {cls.__name__}, got {value!r}")
