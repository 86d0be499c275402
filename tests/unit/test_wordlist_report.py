"""`menshen wordlist report`: per-category and per-term counts, and terms that never hit."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from menshen.audit import AuditRecorder, FileSink
from menshen.cli import main
from menshen.model import KEYWORD_HIT, Action, Envelope, Finding, Verdict


def hit(category: str, term: str) -> Finding:
    return Finding(scanner="keywords", code=KEYWORD_HIT, category=category, term=term)


def write_audit(path: Path, when: datetime, verdicts: list[Verdict], terms: bool = True) -> None:
    sink = FileSink(path)
    recorder = AuditRecorder(sink, include_terms=terms, clock=lambda: when)
    for verdict in verdicts:
        recorder.record(Envelope(sender="a@b.test"), verdict, 100)
    sink.close()


@pytest.fixture
def lists(tmp_path: Path) -> Path:
    directory = tmp_path / "lists"
    directory.mkdir()
    (directory / "fraud.txt").write_text("代开发票\n发票代开\n假发票\n", encoding="utf-8")
    (directory / "phish.txt").write_text("verify your account\n", encoding="utf-8")
    return directory


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    status = main(["wordlist", "report", *argv])
    return status, capsys.readouterr().out


def test_report_counts_messages_per_category_and_term(
    tmp_path: Path, lists: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "audit.log-20261101.gz"
    november = [Verdict(Action.REJECT, None, "", findings=(hit("fraud", "假发票"),))]
    write_audit(tmp_path / "old", datetime(2026, 11, 1, tzinfo=UTC), november)
    old.write_bytes(gzip.compress((tmp_path / "old").read_bytes()))
    current = tmp_path / "audit.log"
    twice = (hit("fraud", "代开发票"), hit("fraud", "代开发票"))
    phish = (hit("phish", "verify your account"),)
    december = [
        Verdict(Action.REJECT, None, "", findings=twice),
        Verdict(Action.REJECT, None, "", findings=(hit("fraud", "代开发票"),)),
        Verdict(Action.ACCEPT, None, "", monitored_action=Action.QUARANTINE, findings=phish),
        Verdict(Action.ACCEPT, None, ""),
    ]
    write_audit(current, datetime(2026, 12, 3, tzinfo=UTC), december)
    common = ("--wordlists", str(lists), "--audit", str(old), "--audit", str(current), "--json")
    status, out = run(capsys, *common)
    assert status == 0
    report = json.loads(out)
    assert report["messages"] == 5
    assert report["categories"] == {
        "fraud": {"messages": 3, "actions": {"reject": 3}},
        "phish": {"messages": 1, "actions": {"quarantine": 1}},
    }
    assert report["terms"]["fraud"] == {"代开发票": 2, "假发票": 1}
    assert report["never_hit"] == {"fraud": ["发票代开"], "phish": []}

    status, out = run(capsys, *common, "--since", "2026-12-01")
    assert json.loads(out)["messages"] == 4
    assert json.loads(out)["never_hit"]["fraud"] == ["发票代开", "假发票"]

    status, text = run(capsys, *common[:-1])
    assert "top terms of fraud: 代开发票 2, 假发票 1" in text
    assert "never hit in fraud (1): 发票代开" in text


def test_without_logged_terms_the_report_says_so(
    tmp_path: Path, lists: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audit = tmp_path / "audit.log"
    when = datetime(2026, 12, 3, tzinfo=UTC)
    verdicts = [Verdict(Action.REJECT, None, "", findings=(hit("fraud", "假发票"),))]
    write_audit(audit, when, verdicts, terms=False)
    status, text = run(capsys, "--wordlists", str(lists), "--audit", str(audit))
    assert status == 0
    assert "set audit.include_terms: true" in text
    assert "假发票" not in text


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"not json\n", "audit.log:1: not an audit record"), (None, "cannot read")],
)
def test_unreadable_audit_is_exit_2(
    tmp_path: Path,
    lists: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes | None,
    problem: str,
) -> None:
    audit = tmp_path / "audit.log"
    if content is not None:
        audit.write_bytes(content)
    status = main(["wordlist", "report", "--wordlists", str(lists), "--audit", str(audit)])
    assert status == 2
    assert problem in capsys.readouterr().err
