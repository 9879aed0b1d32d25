"""Pools of PHP workers: allocation, failure handling, recycling."""

from __future__ import annotations

from trio_runner.pool.open import open_pool
from trio_runner.pool.pool import Pool
from trio_runner.pool.stats import PoolStatistics

__all__ = ["Pool", "PoolStatistics", "open_pool"]
