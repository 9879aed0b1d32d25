"""``rpc.listen`` addresses: ``tcp://host:port`` and ``unix://path``.

The server listens on one and the client connects to the same string, so
both read it here. A relative unix path is relative to ``base_dir`` (the
config's working directory), as RoadRunner resolves it.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from trio_runner.config.units import split_host_port

__all__ = ["RpcAddress", "parse_address"]


@attrs.frozen
class RpcAddress:
    """A parsed address: ``host`` and ``port`` for tcp, ``path`` for unix.

    An empty ``host`` means every interface to a server, localhost to a client.
    """

    kind: str  # "tcp" or "unix"
    host: str = ""
    port: int = 0
    path: Path | None = None

    def __str__(self) -> str:
        if self.kind == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_address(spec: str, *, base_dir: Path | None = None) -> RpcAddress:
    """Read ``tcp://host:port`` or ``unix://path``.

    Raises:
        ValueError: anything else, with the forms that are allowed.
    """
    kind, sep, rest = spec.partition("://")
    if sep and kind == "unix" and rest:
        path = Path(rest)
        if base_dir is not None and not path.is_absolute():
            path = base_dir / path
        return RpcAddress("unix", path=path)
    if sep and kind == "tcp":
        try:
            host, port = split_host_port(rest)
        except ValueError as exc:
            raise ValueError(f"bad RPC address {spec!r}: {exc}") from exc
        return RpcAddress("tcp", host=host, port=port)
    raise ValueError(
        f"bad RPC address {spec!r}: use tcp://host:port (e.g. "
        "tcp://127.0.0.1:6001) or unix://path"
    )
