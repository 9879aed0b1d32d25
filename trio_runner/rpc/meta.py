"""``rpc.*``: the server's version and its configuration.

``rpc.Version`` answers the RoadRunner version whose protocol trio_runner
speaks (what workers get as ``RR_VERSION``), so tools that check it accept
trio_runner. ``rpc.Config`` answers the configuration as RoadRunner does:
``[]byte`` of JSON, so base64 inside a JSON string. It is the file's data
after ``-o`` overrides and ``${VAR}`` expansion.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from trio_runner._version import RR_VERSION
from trio_runner.rpc.registry import Method

__all__ = ["RpcInfo"]


class RpcInfo:
    """The ``rpc`` service: ``data`` is the loaded configuration's tables."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def methods(self) -> list[Method]:
        return [
            Method("rpc.Version", bool, self.version),
            Method("rpc.Config", bool, self.config),
        ]

    async def version(self, _: bool) -> str:
        return RR_VERSION

    async def config(self, _: bool) -> bytes:
        # default=str: TOML dates and times, which JSON has no type for.
        return json.dumps(self._data, default=str).encode()
