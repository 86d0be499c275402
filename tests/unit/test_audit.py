"""The audit trail: one line per message, escaped, optionally hashed, surviving logrotate."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ci import unavailable
from recorders import ListSink

from menshen.audit import (
    AuditError,
    AuditRecorder,
    FileSink,
    SyslogSink,
    open_audit_log,
    read_audit_lines,
)
from menshen.config import AuditConfig, AuditTarget, ConfigError, parse_config
from menshen.model import AV_INFECTED, KEYWORD_HIT, Action, Envelope, Finding, Verdict

ROOT = Path(__file__).resolve().parents[2]
LOGROTATE_POLICY = ROOT / "packaging" / "logrotate" / "menshen"
FIXED = datetime(2026, 12, 3, 21, 0, 0, 123000, tzinfo=UTC)

ENVELOPE = Envelope(
    client_ip="192.0.2.7",
    sender="Alice@Example.com",
    recipients=("bob@example.org", "carol@example.org"),
    auth_user="alice",
    queue_id="4ZkLmN1abc",
)
VERDICT = Verdict(
    Action.QUARANTINE,
    None,
    "keyword category confidential",
    findings=(
        Finding(scanner="keywords", code=KEYWORD_HIT, category="confidential", term="商业机密"),
        Finding(scanner="antivirus", code=AV_INFECTED, detail="Eicar-Signature"),
    ),
    score=5.0,
    timings=(("extract", 0.0012345678), ("total", 0.002)),
)


def one_line(envelope: Envelope = ENVELOPE, **options: object) -> tuple[str, dict[str, object]]:
    sink = ListSink()
    recorder = AuditRecorder(sink, clock=lambda: FIXED, **options)  # type: ignore[arg-type]
    recorder.record(envelope, VERDICT, 4321)
    assert len(sink.lines) == 1
    return sink.lines[0], json.loads(sink.lines[0])


def test_the_line_carries_the_envelope_and_verdict_but_no_recipient() -> None:
    line, entry = one_line()
    assert entry == {
        "time": "2026-12-03T21:00:00.123Z",
        "queue_id": "4ZkLmN1abc",
        "client_ip": "192.0.2.7",
        "sender": "Alice@Example.com",
        "auth_user": "alice",
        "recipients": 2,
        "size": 4321,
        "action": "quarantine",
        "monitored_action": None,
        "reason": "keyword category confidential",
        "score": 5.0,
        "codes": [AV_INFECTED, KEYWORD_HIT],
        "categories": ["confidential"],
        "virus": ["Eicar-Signature"],
        "timings": {"extract": 0.001235, "total": 0.002},
    }
    assert "bob@" not in line and "商业机密" not in line


def test_terms_only_when_asked_for() -> None:
    _, entry = one_line(include_terms=True)
    assert entry["terms"] == ["confidential:商业机密"]


@pytest.mark.parametrize(
    "sender",
    [
        'x@y.test\n{"action":"accept"}',
        "x@y.test\r\nforged",
        "x@y.test\u2028forged",
        "x@y.test\x85forged",
        "x@y.test\x1b[2Jforged",
        "x@y.test\x00",
    ],
)
def test_no_value_can_break_or_forge_a_line(sender: str) -> None:
    line, entry = one_line(Envelope(sender=sender))
    assert line.isascii() and line.isprintable()
    assert len(line.splitlines()) == 1
    assert entry["sender"] == sender


def test_hashed_addresses_are_stable_keyed_and_not_the_address() -> None:
    _, first = one_line(hash_key=b"k" * 32)
    _, again = one_line(hash_key=b"k" * 32)
    _, other_key = one_line(hash_key=b"j" * 32)
    for field in ("sender", "client_ip", "auth_user"):
        assert str(first[field]).startswith("hmac:")
        assert first[field] == again[field]
        assert first[field] != other_key[field]
    assert "alice" not in json.dumps(first).lower()
    # Case-insensitive: the same mailbox gives the same value however it was typed.
    _, lower = one_line(Envelope(sender="alice@example.com"), hash_key=b"k" * 32)
    assert lower["sender"] == first["sender"]


def test_file_sink_follows_a_moved_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    sink = FileSink(path)
    sink.write("one")
    path.rename(tmp_path / "audit.log.1")
    sink.write("two")
    path.unlink()
    sink.write("three")
    sink.close()
    assert (tmp_path / "audit.log.1").read_text() == "one\n"
    assert path.read_text() == "three\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)


def test_file_sink_refuses_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").write_text("")
    (tmp_path / "audit.log").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(AuditError, match="cannot open"):
        FileSink(tmp_path / "audit.log")


def test_the_shipped_logrotate_policy_rotates_and_menshen_follows(tmp_path: Path) -> None:
    logrotate = shutil.which("logrotate") or "/usr/sbin/logrotate"
    if not Path(logrotate).exists():
        unavailable("logrotate is not installed")
    policy = LOGROTATE_POLICY.read_text()
    assert "rotate 180" in policy and "maxage 180" in policy and "daily" in policy
    path = tmp_path / "audit.log"
    user = os.environ.get("USER") or "root"
    group = "root" if os.geteuid() == 0 else str(os.getegid())
    local = (
        policy.replace("/var/log/menshen/audit.log", str(path))
        .replace("menshen adm", f"{user} {group}")
        .replace("\tsu ", "\t#su ")
    )
    (tmp_path / "policy").write_text(local)
    sink = FileSink(path)
    sink.write("before")
    subprocess.run(
        [logrotate, "-f", "-s", str(tmp_path / "state"), str(tmp_path / "policy")],
        check=True,
        capture_output=True,
    )
    sink.write("after")
    sink.close()
    rotated = [p for p in tmp_path.iterdir() if p.name.startswith("audit.log-")]
    assert len(rotated) == 1 and rotated[0].read_text() == "before\n"
    assert path.read_text() == "after\n"


def test_syslog_sink_sends_one_tagged_message_per_line(tmp_path: Path) -> None:
    address = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(address)
        sink = SyslogSink("mail", address=address)
        sink.write('{"action":"accept"}')
        server.settimeout(5)
        data = server.recv(4096)
        sink.close()
    # <22> is facility mail (2) * 8 + severity info (6).
    assert data.startswith(b'<22>menshen-audit: {"action":"accept"}')


def test_open_audit_log_errors(tmp_path: Path) -> None:
    assert open_audit_log(AuditConfig()) is None
    with pytest.raises(AuditError, match="cannot open"):
        open_audit_log(AuditConfig(target=AuditTarget.FILE, file=tmp_path / "no" / "dir.log"))
    with pytest.raises(AuditError, match="hash key"):
        open_audit_log(
            AuditConfig(
                target=AuditTarget.FILE,
                file=tmp_path / "a.log",
                hash_addresses=True,
                hash_key_file=tmp_path / "missing.key",
            )
        )
    (tmp_path / "short.key").write_bytes(b"short")
    with pytest.raises(AuditError, match="16 bytes"):
        open_audit_log(
            AuditConfig(
                target=AuditTarget.FILE,
                file=tmp_path / "a.log",
                hash_addresses=True,
                hash_key_file=tmp_path / "short.key",
            )
        )


def test_records_written_through_the_file_are_read_back(tmp_path: Path) -> None:
    recorder = open_audit_log(AuditConfig(target=AuditTarget.FILE, file=tmp_path / "a.log"))
    assert recorder is not None
    recorder.record(ENVELOPE, VERDICT, 1)
    recorder.record(ENVELOPE, VERDICT, 2)
    recorder.close()
    assert [r["size"] for r in read_audit_lines(tmp_path / "a.log")] == [1, 2]


CONFIG_ERRORS = [
    ("audit:\n  target: database\n", "audit.target: expected one of none, file, syslog"),
    ("audit:\n  hash_addresses: true\n", "audit.hash_addresses: needs audit.hash_key_file"),
    ("audit:\n  syslog_facility: kern\n", "audit.syslog_facility: expected one of"),
    ("metrics:\n  address: localhost\n", "metrics.address: expected an IP address"),
    ("metrics:\n  port: 70000\n", "metrics.port: expected a port <= 65535"),
    ("metrics:\n  client_failure_ratio: -1\n", "metrics.client_failure_ratio: expected"),
    ("quarantine:\n  postfix_dir: /etc/postfix\n", "quarantine.postfix_dir: unknown key"),
]


@pytest.mark.parametrize(("text", "problem"), CONFIG_ERRORS, ids=[p for _, p in CONFIG_ERRORS])
def test_operations_config_errors_name_file_line_and_key(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "test.yml", base_dir=Path("/etc/menshen"))
    assert any(problem in line and line.startswith("test.yml:") for line in caught.value.problems)


def test_operations_config_values() -> None:
    config = parse_config(
        "audit:\n  target: file\n  file: audit.log\n  hash_addresses: true\n"
        "  hash_key_file: audit.key\nmetrics:\n  port: 0\n  address: '::1'\n"
        "quarantine:\n  postfix_config_directory: /etc/postfix-out\n",
        "test.yml",
        base_dir=Path("/etc/menshen"),
    )
    assert config.audit.file == Path("/etc/menshen/audit.log")
    assert config.audit.hash_key_file == Path("/etc/menshen/audit.key")
    assert (config.metrics.address, config.metrics.port) == ("::1", 0)
    assert config.quarantine.postfix_config_directory == Path("/etc/postfix-out")
