"""What a test does when something it needs is missing: with CI=true it fails, never skips.

`unavailable(reason)`: pytest.fail under CI=true (CI installs and runs everything the suite
needs, as root), pytest.skip otherwise (a developer's machine without, say, root).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing requirement fails the run)")
    pytest.skip(reason)
