"""Reading the metrics text back, with prometheus-client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: bytes | str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape: (name, labels) -> value."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: bytes | str, name: str, **labels: str) -> float:
    """The value of one sample; KeyError if it is not there."""
    return samples(text)[(name, frozenset(labels.items()))]


def types(text: bytes | str) -> dict[str, str]:
    """Each family's name (as its TYPE line says) and type."""
    if isinstance(text, bytes):
        text = text.decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            found[name] = kind
    return found
