"""`menshen check` runs clamd too when it is configured, and shows clamd's outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from clamd_rig import ClamdServer
from clamd_samples import clean_message, eicar_mime_base64, eicar_rfc822_attachment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _check(config: Path, message: bytes) -> tuple[int, dict[str, object]]:
    result = subprocess.run(
        [sys.executable, "-m", "menshen.cli", "check", "--json", "-c", str(config), "-"],
        input=message,
        capture_output=True,
        check=False,
        cwd=ROOT,
    )
    assert b"Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


def _config(tmp_path: Path, address: str) -> Path:
    path = tmp_path / "menshen.yml"
    path.write_text(f"antivirus:\n  enabled: true\n  clamd: [{address}]\n", encoding="utf-8")
    return path


def test_check_reports_the_virus_found_by_clamd(tmp_path: Path, clamd: ClamdServer) -> None:
    status, verdict = _check(_config(tmp_path, clamd.address), eicar_rfc822_attachment())
    assert status == 1
    assert verdict["action"] == "reject"
    assert str(verdict["smtp_reply"]).startswith("554 5.7.1 Virus found: Menshen.Test.EICAR")
    findings = verdict["findings"]
    assert isinstance(findings, list)
    antivirus = [f for f in findings if f["scanner"] == "antivirus"]
    assert [f["code"] for f in antivirus] == ["AV_INFECTED"]


def test_check_accepts_clean_mail_scanned_by_clamd(tmp_path: Path, clamd: ClamdServer) -> None:
    status, verdict = _check(_config(tmp_path, clamd.address), clean_message())
    assert (status, verdict["action"]) == (0, "accept")


def test_check_tempfails_when_clamd_is_unreachable(tmp_path: Path) -> None:
    status, verdict = _check(_config(tmp_path, f"unix:{tmp_path}/nothing.sock"), clean_message())
    assert status == 1
    assert verdict["action"] == "tempfail"
    assert str(verdict["smtp_reply"]).startswith("451 4.7.1")


def test_check_names_the_infected_attachment(tmp_path: Path, clamd: ClamdServer) -> None:
    status, verdict = _check(_config(tmp_path, clamd.address), eicar_mime_base64())
    assert status == 1
    findings = verdict["findings"]
    assert isinstance(findings, list)
    (antivirus,) = [f for f in findings if f["scanner"] == "antivirus"]
    assert antivirus["filename"] == "invoice.com"
    assert "invoice.com" in str(verdict["reason"])
