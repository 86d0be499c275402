"""Suite-wide pytest set-up: makes the shared test helpers in tests/support importable.

tests/ holds no packages (no __init__.py, pytest runs with --import-mode=importlib), so
helpers such as `milter_client` are found by putting tests/support on sys.path. Never add
the repository root instead: its `milter/` source directory would shadow pymilter's C
module `milter`.
"""

from __future__ import annotations

import sys
from pathlib import Path

SUPPORT = str(Path(__file__).resolve().parent / "support")
if SUPPORT not in sys.path:
    sys.path.insert(0, SUPPORT)
