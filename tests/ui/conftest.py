"""The browser tests' shared fixture: where their screenshots go."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

#: the test run's output directory (CI keeps it); screenshots of each view go under it, one folder per test
OUTPUT_ENV = "LOCALROUTER_TEST_OUTPUT"
DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / ".ci" / "output"


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Path:
    """A fresh folder for this test's screenshots: ``$LOCALROUTER_TEST_OUTPUT/screenshots/<test>/`` (by
    default ``.ci/output``, which git ignores)."""
    root = Path(os.environ.get(OUTPUT_ENV) or DEFAULT_OUTPUT)
    folder = root / "screenshots" / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # a previous run's
        old.unlink()
    return folder
