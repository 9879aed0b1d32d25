"""The benchmark script's verdicts on its targets (bench/run.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(rps: float, p99: float) -> dict[str, Any]:
    return {"rps": rps, "p99_ms": p99, "rss_mb": {"front": 46.5, "php": 60.0}}


def results(trio: float, fpm: float) -> dict[str, Any]:
    apps = {
        "slim": {
            "trio_runner": [run(trio, 0.5), run(trio, 0.7)],
            "nginx+php-fpm": [run(fpm, 0.6), run(fpm, 0.7)],
        }
    }
    return {"apps": apps, "ratios": {"slim": []}}


def test_a_target_is_judged_on_the_measured_ratio_not_the_rounded_one(
    bench: ModuleType,
) -> None:
    # From a run: 9453.83 / 6304.09 = 1.49964, shown as 1.5x in the table,
    # and the script called Slim's 1.5x target met.
    verdicts = {
        what: (got, met) for what, got, met in bench.targets(results(9453.83, 6304.09))
    }
    assert verdicts["slim ≥ 1.5x nginx+php-fpm"] == ("1.4996x", False)
    assert verdicts["slim p99 under overload ≤ php-fpm's"] == ("1.00x", True)
    verdicts = {what: met for what, _, met in bench.targets(results(9457.0, 6304.0))}
    assert verdicts["slim ≥ 1.5x nginx+php-fpm"] is True
