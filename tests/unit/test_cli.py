"""`menshen check`, `configtest` and `wordlist` as an operator runs them: verdicts and exit codes.

The acceptance table: a keyword hidden every way the issue lists is found in the shipped
samples, and clean mail is accepted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from menshen.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"

# sample file -> (action, category expected in a KEYWORD_HIT finding, where it was found)
ACCEPTANCE = [
    ("kw-subject-gb2312.eml", "reject", "invoice_fraud", "subject"),
    ("kw-body-gbk-base64.eml", "reject", "invoice_fraud", "body"),
    ("kw-body-gb18030-qp.eml", "reject", "invoice_fraud", "body"),
    ("kw-body-big5.eml", "reject", "invoice_fraud", "body"),
    ("kw-html-split.eml", "reject", "invoice_fraud", "html"),
    ("kw-zero-width.eml", "reject", "invoice_fraud", "body"),
    ("kw-spaced.eml", "reject", "invoice_fraud", "body"),
    ("kw-attachment-txt.eml", "reject", "invoice_fraud", "attachment_text"),
    ("kw-attachment-docx.eml", "reject", "invoice_fraud", "attachment_text"),
    ("kw-attached-message.eml", "reject", "invoice_fraud", "body"),
    ("kw-pharma-en.eml", "reject", "pharma_spam", "body"),
    ("clean-specialist.eml", "accept", None, None),
    ("clean-chinese-business.eml", "accept", None, None),
]


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as an operator would run it (no traceback may escape)."""
    result = subprocess.run(
        [sys.executable, "-m", "menshen.cli", *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "MENSHEN_CONFIG": ""},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.mark.parametrize(
    ("sample", "action", "category", "where"), ACCEPTANCE, ids=[a[0] for a in ACCEPTANCE]
)
def test_check_json_verdict(
    sample: str,
    action: str,
    category: str | None,
    where: str | None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["check", "--json", str(SAMPLES / sample)])
    output = json.loads(capsys.readouterr().out)
    assert output["action"] == action, output
    assert status == (0 if action == "accept" else 1)
    hits = [f for f in output["findings"] if f["code"] == "KEYWORD_HIT"]
    if category is None:
        assert hits == []
        assert output["smtp_reply"] is None
    else:
        assert any(f["category"] == category and f["where"] == where for f in hits), hits
        assert output["smtp_reply"].startswith("550 5.7.1")
    for finding in output["findings"]:
        assert {"scanner", "code", "category", "term", "where"} <= finding.keys()


def test_check_reads_stdin_and_takes_the_envelope() -> None:
    message = (SAMPLES / "kw-pharma-en.eml").read_bytes()
    result = run_cli(
        "check",
        "--json",
        "--from",
        "<a@example.com>",
        "--rcpt",
        "b@example.net",
        "--client-ip",
        "192.0.2.1",
        "-",
        stdin=message,
    )
    assert result.returncode == 1
    assert json.loads(result.stdout)["action"] == "reject"


def test_check_text_output_names_the_term_and_place() -> None:
    result = run_cli("check", str(SAMPLES / "kw-body-big5.eml"))
    assert result.returncode == 1
    assert "action: reject" in result.stdout
    assert "invoice_fraud" in result.stdout


def test_check_with_a_candidate_wordlist_directory(tmp_path: Path) -> None:
    (tmp_path / "newcat.txt").write_text("# candidate\n季度报告\n", encoding="utf-8")
    result = run_cli(
        "check",
        "--json",
        "--wordlists",
        str(tmp_path),
        str(SAMPLES / "clean-chinese-business.eml"),
    )
    output = json.loads(result.stdout)
    # An unconfigured category takes wordlists.default_action (quarantine).
    assert output["action"] == "quarantine"
    assert output["findings"][0]["category"] == "newcat"
    assert result.returncode == 1


def test_allow_listed_sender_is_accepted(tmp_path: Path) -> None:
    config = tmp_path / "menshen.yml"
    config.write_text("lists:\n  allow:\n    senders: [boss@corp.example]\n", encoding="utf-8")
    result = run_cli(
        "check",
        "-c",
        str(config),
        "--from",
        "boss@corp.example",
        str(SAMPLES / "kw-pharma-en.eml"),
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("limits:\n  max_parts: lots\n", "bad.yml:2: limits.max_parts"),
        ("mode: [\n", "bad.yml:2:"),
        ("wordlistz: {}\n", "bad.yml:1: wordlistz: unknown key (did you mean 'wordlists'?)"),
    ],
)
def test_broken_config_exits_2_with_file_and_line(
    tmp_path: Path, content: str, expected: str
) -> None:
    config = tmp_path / "bad.yml"
    config.write_text(content, encoding="utf-8")
    for command in (["configtest"], ["check", str(SAMPLES / "kw-spaced.eml")]):
        result = run_cli(*command, "-c", str(config))
        assert result.returncode == 2
        assert expected in result.stderr


def test_configtest_ok_on_the_builtin_default() -> None:
    result = run_cli("configtest")
    assert result.returncode == 0
    assert result.stdout.startswith("configuration OK")


def test_configtest_reports_a_missing_wordlist_directory(tmp_path: Path) -> None:
    config = tmp_path / "menshen.yml"
    config.write_text("wordlists:\n  directory: nowhere\n", encoding="utf-8")
    result = run_cli("configtest", "-c", str(config))
    assert result.returncode == 2
    assert "nowhere" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check"],
        ["check", "/nonexistent.eml"],
        ["frobnicate"],
        ["wordlist", "lint", "/nonexistent"],
        [],
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str]) -> None:
    assert run_cli(*args).returncode == 2


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00" * 100,
        b"\xff\xfe garbage",
        b"Content-Type: multipart/mixed\r\n\r\n--",
        b"Subject: =?x-unknown?B?@@@?=\r\n\r\n",
    ],
)
def test_no_input_makes_check_print_a_traceback(payload: bytes) -> None:
    result = run_cli("check", "-", stdin=payload)
    assert result.returncode in (0, 1)


def test_wordlist_lint_clean_on_shipped_lists() -> None:
    result = run_cli("wordlist", "lint", str(ROOT / "wordlists"))
    assert result.returncode == 0, result.stdout


def test_wordlist_lint_reports_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("代开发票\n\u200b\n代开发票\n", encoding="utf-8")
    result = run_cli("wordlist", "lint", str(tmp_path))
    assert result.returncode == 1
    assert f"{tmp_path / 'a.txt'}:3:" in result.stdout
    assert f"{tmp_path / 'a.txt'}:2:" in result.stdout


def test_wordlist_test_on_text_and_on_a_message() -> None:
    text = run_cli("wordlist", "test", "请联系我们代開發票")
    assert text.returncode == 1
    assert "invoice_fraud" in text.stdout
    none = run_cli("wordlist", "test", "an ordinary sentence")
    assert none.returncode == 0
    message = run_cli("wordlist", "test", "--json", str(SAMPLES / "kw-attachment-docx.eml"))
    assert json.loads(message.stdout)["hits"][0]["where"] == "attachment_text"
