"""Suite-wide pytest set-up: the shared test helpers, and the real clamd fixtures.

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

# Imported after the path is set: these helpers live in tests/support.
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from clamd_rig import ClamdRigError, ClamdServer, find_clamd, write_signature_db  # noqa: E402


@pytest.fixture(scope="session")
def signature_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated signature database (EICAR built at run time, never committed)."""
    return write_signature_db(tmp_path_factory.mktemp("clamdb"))


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory, signature_db: Path) -> Iterator[ClamdServer]:
    """Debian's clamd on a unix socket in a temp dir; a missing clamd fails, never skips."""
    try:
        server = ClamdServer(find_clamd(), tmp_path_factory.mktemp("clamd"), signature_db)
        server.write_config()
        server.start()
    except ClamdRigError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.kill()
