"""Set-up for the hostile-input suite: its helper modules, and one shared engine.

tests/ holds no packages (pytest runs with --import-mode=importlib), so the helpers next to
these tests (hostile_cases, isolation) are found by putting this directory on sys.path.
The engine is the real one on the built-in configuration, as `menshen check` builds it.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import pytest  # noqa: E402

from menshen.composition import assemble  # noqa: E402
from menshen.config import load_config  # noqa: E402
from menshen.engine import Engine  # noqa: E402


@pytest.fixture(scope="session")
def engine() -> Engine:
    return assemble(load_config(None)).engine
