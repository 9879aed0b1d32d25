"""Regenerate every ``*_pb2.py`` and ``*_pb2.pyi`` of trio_runner from its
.proto files (``http/proto``, ``rpc/proto``).

Run from anywhere, with grpcio-tools and mypy-protobuf installed in the
interpreter that runs it::

    python trio_runner/http/proto/generate.py

The .proto files are compiled relative to the repository root, so each
descriptor is registered as ``trio_runner/<package>/proto/<name>.proto`` and
cannot clash with an application's own .proto files in protobuf's default
pool.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PACKAGE = ROOT / "trio_runner"


def main() -> int:
    bin_dir = Path(sys.executable).parent
    plugin = shutil.which("protoc-gen-mypy", path=str(bin_dir)) or shutil.which(
        "protoc-gen-mypy"
    )
    if plugin is None:
        print(
            "protoc-gen-mypy not found: install mypy-protobuf in this interpreter",
            file=sys.stderr,
        )
        return 1
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={plugin}",
        f"--proto_path={ROOT}",
        f"--python_out={ROOT}",
        f"--mypy_out={ROOT}",
        *(
            str(path.relative_to(ROOT))
            for path in sorted(PACKAGE.glob("*/proto/*.proto"))
        ),
    ]
    return subprocess.run(command, cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
