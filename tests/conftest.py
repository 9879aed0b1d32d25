from __future__ import annotations

import json
from pathlib import Path

import pytest

TESTS = Path(__file__).parent


@pytest.fixture(scope="session")
def golden_frames() -> dict[str, dict[str, object]]:
    """The worked frames of PROTOCOL.md 1.6, shared with the PHP tests."""
    data = json.loads((TESTS / "golden" / "frames.json").read_text())
    return data["frames"]  # type: ignore[no-any-return]
