"""The repository's roadrunner.toml and the README's table cover the whole model."""

from __future__ import annotations

import re
from pathlib import Path

import attrs
import pytest

from trio_runner.config import (
    Config,
    HttpConfig,
    RpcConfig,
    ServerConfig,
    load_config,
)
from trio_runner.config.schema import KIND, SECTION, SECTIONS

ROOT = Path(__file__).parent.parent.parent
SAMPLE = ROOT / "roadrunner.toml"
DOCS = ROOT / "README.md"


# Named sections stand in the docs under a placeholder, in the sample under
# an example name.
NAMED = {
    "services": ("<pool>", "http"),
    "collect": ("<name>", "app_orders"),
    "channels": ("<channel>", "http"),
}


def _keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for field in attrs.fields(cls):
        if SECTION in field.metadata:
            keys += _keys(field.metadata[SECTION], f"{prefix}{field.name}.")
        elif SECTIONS in field.metadata:
            named = f"{prefix}{field.name}.{NAMED[field.name][0]}."
            keys += _keys(field.metadata[SECTIONS], named)
        elif KIND in field.metadata:
            keys.append(f"{prefix}{field.name}")
    return keys


KEYS = _keys(Config)


def test_sample_loads_with_every_default() -> None:
    config = load_config(SAMPLE, env={})
    assert config == Config(
        server=ServerConfig(command=config.server.command),
        http=HttpConfig(),
        rpc=RpcConfig(),
        working_dir=ROOT.resolve(),
        source=SAMPLE.absolute(),
    )


@pytest.mark.parametrize("key", KEYS)
def test_sample_documents_every_key_in_its_section(key: str) -> None:
    for placeholder, example in NAMED.values():
        key = key.replace(placeholder, example)
    section, _, name = key.rpartition(".")
    text = SAMPLE.read_text()
    if section:
        # An optional section may stand commented out: "# [http.ssl]".
        header = re.search(rf"\n(# )?\[{re.escape(section)}\]\n", text)
        assert header is not None, f"no [{section}] in the sample"
        start = header.start()
        end = re.compile(r"\n(# )?\[").search(text, start + 1)
        text = text[start : end.start() if end else None]
    else:
        text = text[: text.index("\n[")]
    as_line = re.search(rf"^(# )?{name} = ", text, re.MULTILINE)
    as_section = re.search(rf"\n(# )?\[{re.escape(key)}\]\n", SAMPLE.read_text())
    assert as_line or as_section, key


@pytest.mark.parametrize("key", KEYS)
def test_docs_table_has_every_key(key: str) -> None:
    assert f"| `{key}` |" in DOCS.read_text()
