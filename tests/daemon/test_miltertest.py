"""Conformance against an independent MTA-side implementation: OpenDKIM's `miltertest`.

Runs `miltertest -D socket=unix:PATH -s tests/miltertest/keyword.lua` against a `menshen
serve` started on the shipped default configuration and wordlists. The script prints one
"ok: NAME" line per case that passed and exits non-zero when any failed.

`miltertest` comes from the Debian package of the same name (`make deps` installs it). A
missing binary is a test failure, with CI=true or without: this suite never skips.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # conftest modules are not importable at run time
    from conftest import StartDaemon

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "miltertest" / "keyword.lua"
EXPECTED_OK = (
    "ok: clean message is accepted with the verdict header",
    "ok: keyword in a GBK base64 body is rejected with 550",
)


def miltertest_binary() -> str:
    found = shutil.which("miltertest") or (
        "/usr/bin/miltertest" if os.access("/usr/bin/miltertest", os.X_OK) else None
    )
    where = " (CI=true)" if os.environ.get("CI") == "true" else ""
    assert found is not None, (
        f"miltertest not found{where}: install the Debian package `miltertest` (make deps)"
    )
    return found


def test_keyword_script_passes(start_daemon: StartDaemon) -> None:
    binary = miltertest_binary()
    daemon = start_daemon()  # the shipped configuration: invoice_fraud rejects
    done = subprocess.run(
        [binary, "-D", f"socket={daemon.socket}", "-s", str(SCRIPT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=ROOT,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for line in EXPECTED_OK:
        assert line in done.stdout.splitlines(), output
    assert "FAIL" not in output, output
