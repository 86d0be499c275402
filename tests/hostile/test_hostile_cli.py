"""A few hostile cases through `menshen check --json`, as an operator would run them.

The command must print one JSON verdict and exit 0 (accept) or 1 (any other verdict),
never 2 and never with a traceback, within the hang guard, for messages that are
deep, wide, broken or bombs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_cases import CASES_BY_NAME

from menshen.config import builtin_config_text
from menshen.model import Action

CHECK_TIMEOUT_SECONDS = 90.0
CLI_CASES = (
    "multipart-10000-deep",
    "parts-200000-tiny",
    "charset-codec-names",
    "nul-bytes",
    "lf-only",
    "headers-50000",
    "bidi-name-exe",
    "docx-500-bomb-members",
)


def menshen_command() -> list[str]:
    beside = Path(sys.executable).parent / "menshen"
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "menshen.cli"]


@pytest.mark.parametrize("name", CLI_CASES)
def test_menshen_check_answers_a_hostile_message(name: str, tmp_path: Path) -> None:
    case = CASES_BY_NAME[name]
    message = tmp_path / f"{name}.eml"
    message.write_bytes(case.build())
    config = tmp_path / "menshen.yml"  # the built-in defaults, whatever /etc holds
    config.write_text(builtin_config_text(), encoding="utf-8")
    command = [*menshen_command(), "check", "--json", "-c", str(config), "--from", case.sender]
    result = subprocess.run(
        [*command, str(message)],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT_SECONDS,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    verdict = json.loads(result.stdout)
    assert verdict["action"] in {action.value for action in case.verdicts}, verdict["reason"]
    assert result.returncode == (0 if verdict["action"] == "accept" else 1), result.stderr
    codes = {finding["code"] for finding in verdict["findings"]}
    assert "INTERNAL_ERROR" not in codes
    assert case.codes <= codes
    limits = {
        finding["detail"].partition(":")[0]
        for finding in verdict["findings"]
        if finding["code"] == "MIME_LIMIT"
    }
    assert case.limits <= limits
    assert Action(verdict["action"]) is not Action.TEMPFAIL
