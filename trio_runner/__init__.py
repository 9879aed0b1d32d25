"""trio_runner: a PHP application server on trio, speaking RoadRunner's protocol."""

from __future__ import annotations

from trio_runner._version import RR_VERSION, __version__

__all__ = ["RR_VERSION", "__version__"]
