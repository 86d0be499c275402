"""Operations end to end: metrics, audit trail and quarantine tools behind a real Postfix.

Real traffic goes through the private Postfix of conftest.py into `menshen serve` with its
metrics endpoint on a free loopback port and its audit trail in a file. Checked:
- the endpoint counts exactly the messages sent, by action and by keyword category;
- the audit file has exactly one line per message, with the queue ids Postfix gave them,
  and never a message body;
- every quarantined message is listed by `menshen quarantine list` with its reason; one is
  released and reaches smtp-sink, the other is deleted; ids not in the hold queue are refused;
- `menshen stats` prints the same counts;
- an audit file moved away (logrotate) is replaced by a new one at the next message.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from postfix_rig import PostfixRig, free_port, menshen_executable, wait_until

from menshen.audit import read_audit_lines
from menshen.stats import scrape, summarise

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"

pytestmark = pytest.mark.integration

Daemons = Callable[..., Any]
QUEUED = re.compile(r"queued as ([0-9A-Za-z]+)")

CLEAN_TEXT = "各位同事：下周二上午十点在三楼会议室讨论季度报告，请准时参加。"
CONFIDENTIAL_TEXT = "附件是商业机密，请勿转发给外部人员。"  # quarantine (shipped list)
REJECT_SAMPLES = ("kw-body-big5.eml", "kw-pharma-en.eml")  # invoice_fraud, pharma_spam


def text_message(body: str, test_id: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = "alice@sender.test"
    msg["To"] = "bob@example.com"
    msg["Subject"] = "季度报告"
    msg["X-Test-Id"] = test_id
    msg.set_content(body, charset="utf-8", cte="base64")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def ops_config(menshen_config: Path, audit_file: Path, port: int) -> Path:
    config = yaml.safe_load(menshen_config.read_text(encoding="utf-8"))
    config["metrics"] = {"enabled": True, "address": "127.0.0.1", "port": port}
    config["audit"] = {"target": "file", "file": str(audit_file)}
    menshen_config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return menshen_config


def menshen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [menshen_executable(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def sample_value(text: str, name: str, **labels: str) -> float:
    lines = [line for line in text.splitlines() if re.match(rf"{name}[{{ ]", line)]
    for line in lines:
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_traffic_is_counted_audited_and_quarantine_is_managed(
    postfix: PostfixRig, menshen_daemon: Daemons, menshen_config: Path, tmp_path: Path
) -> None:
    audit_file = tmp_path / "audit" / "audit.log"
    audit_file.parent.mkdir()
    port = free_port()
    daemon = menshen_daemon(config=ops_config(menshen_config, audit_file, port))
    url = f"http://127.0.0.1:{port}/metrics"
    config_args = ("-c", str(daemon.config), "-C", str(postfix.config_dir))

    queue_ids: dict[str, str] = {}
    for index in range(3):
        code, text = postfix.send(text_message(CLEAN_TEXT, f"clean-{index}"))
        assert code == 250, text
        queue_ids[f"clean-{index}"] = QUEUED.search(text).group(1)  # type: ignore[union-attr]
    for index in range(2):
        code, text = postfix.send(text_message(CONFIDENTIAL_TEXT, f"held-{index}"))
        assert code == 250, text
        queue_ids[f"held-{index}"] = QUEUED.search(text).group(1)  # type: ignore[union-attr]
    for name in REJECT_SAMPLES:
        code, text = postfix.send((SAMPLES / name).read_bytes())
        assert code == 550, text
    postfix.delivered(expect=3)

    # Metrics: exactly what was sent, by action and by category.
    metrics = scrape(url)
    expected = {"accept": 3, "quarantine": 2, "reject": 2, "tempfail": 0}
    for action, count in expected.items():
        value = sample_value(metrics, "menshen_messages_total", action=action, mode="enforce")
        assert value == count, f"{action}: {value}\n{metrics}"
    categories = {"confidential": 2, "invoice_fraud": 1, "pharma_spam": 1}
    for category, count in categories.items():
        value = sample_value(metrics, "menshen_keyword_messages_total", category=category)
        assert value == count, f"{category}: {value}"
    assert sample_value(metrics, "menshen_message_scan_seconds_count") == 7
    assert "alice@sender.test" not in metrics and "127.0.0.1" not in metrics

    # Audit: one line per message, with Postfix's queue ids; no body text.
    records = read_audit_lines(audit_file)
    assert len(records) == 7, records
    assert sorted(r["action"] for r in records) == sorted(
        ["accept"] * 3 + ["quarantine"] * 2 + ["reject"] * 2
    )
    by_id = {r["queue_id"]: r for r in records}
    for test_id, queue_id in queue_ids.items():
        assert queue_id in by_id, (test_id, queue_id, records)
    held_ids = {queue_ids["held-0"], queue_ids["held-1"]}
    for queue_id in held_ids:
        assert by_id[queue_id]["reason"] == "keyword category confidential"
        assert by_id[queue_id]["categories"] == ["confidential"]
        assert by_id[queue_id]["client_ip"] == "127.0.0.1"
        assert by_id[queue_id]["sender"] == "alice@sender.test"
        assert by_id[queue_id]["recipients"] == 1
    assert "商业机密" not in audit_file.read_text(encoding="ascii")
    assert "\\u5546\\u4e1a\\u673a\\u5bc6" not in audit_file.read_text(encoding="ascii")

    # The quarantine: both held messages listed with menshen's reason.
    listed = menshen("quarantine", "list", "--json", *config_args)
    assert listed.returncode == 0, listed.stderr
    held = {m["queue_id"]: m for m in json.loads(listed.stdout)}
    assert set(held) == held_ids, listed.stdout
    for message in held.values():
        assert message["reason"] == "keyword category confidential"
        assert message["sender"] == "alice@sender.test"
        assert message["recipients"] == ["bob@example.com"]
    text_list = menshen("quarantine", "list", *config_args)
    assert "reason: keyword category confidential" in text_list.stdout
    assert "-- 2 held messages" in text_list.stdout

    shown = menshen("quarantine", "show", queue_ids["held-0"], *config_args)
    assert shown.returncode == 0, shown.stderr
    assert "menshen reason: keyword category confidential" in shown.stdout
    assert "X-Test-Id: held-0" in shown.stdout

    # Ids that are not held are refused before postsuper runs.
    for bogus in ("ALL", queue_ids["clean-0"], "../../etc"):
        refused = menshen("quarantine", "delete", bogus, *config_args)
        assert refused.returncode == 1, (bogus, refused.stdout, refused.stderr)

    released = menshen("quarantine", "release", queue_ids["held-0"], *config_args)
    assert released.returncode == 0, released.stderr
    delivered = postfix.delivered(expect=4, timeout=30)
    held_copy = [m for m in delivered if b"X-Test-Id: held-0" in m]
    assert len(held_copy) == 1
    assert b"X-Menshen-Reason: keyword category confidential" in held_copy[0]

    deleted = menshen("quarantine", "delete", queue_ids["held-1"], *config_args)
    assert deleted.returncode == 0, deleted.stderr
    assert postfix.hold_queue() == []
    assert len(postfix.delivered()) == 4

    stats = menshen("stats", "--url", url, "--json")
    assert stats.returncode == 0, stats.stderr
    summary = json.loads(stats.stdout)
    assert summary["messages"] == expected
    assert summary["keyword_messages"] == categories
    plain = menshen("stats", "-c", str(daemon.config))
    assert plain.returncode == 0, plain.stderr
    assert "accept 3  quarantine 2  reject 2  tempfail 0" in plain.stdout

    daemon.stop()


def test_audit_file_moved_by_logrotate_is_reopened(
    postfix: PostfixRig, menshen_daemon: Daemons, menshen_config: Path, tmp_path: Path
) -> None:
    audit_file = tmp_path / "audit.log"
    port = free_port()
    daemon = menshen_daemon(config=ops_config(menshen_config, audit_file, port))
    code, text = postfix.send(text_message(CLEAN_TEXT, "before"))
    assert code == 250, text
    audit_file.rename(tmp_path / "audit.log.1")
    code, text = postfix.send(text_message(CLEAN_TEXT, "after"))
    assert code == 250, text
    assert len(read_audit_lines(tmp_path / "audit.log.1")) == 1
    assert len(read_audit_lines(audit_file)) == 1
    summary = summarise(scrape(f"http://127.0.0.1:{port}/metrics"))
    assert summary["audit_errors"] == 0
    # A reload is counted as such.
    assert daemon.reload() == "reloaded"
    wait_until(
        lambda: (
            True
            if summarise(scrape(f"http://127.0.0.1:{port}/metrics"))["reloads"]["ok"] == 1
            else None
        ),
        10,
        "the reload to be counted",
    )
    daemon.stop()


def test_a_client_over_the_failure_ratio_is_counted_and_named_in_the_log(
    postfix: PostfixRig, menshen_daemon: Daemons, menshen_config: Path, tmp_path: Path
) -> None:
    config = yaml.safe_load(menshen_config.read_text(encoding="utf-8"))
    port = free_port()
    config["metrics"] = {"port": port, "client_failure_min_messages": 3}
    menshen_config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    daemon = menshen_daemon(config=menshen_config)
    url = f"http://127.0.0.1:{port}/metrics"
    code, text = postfix.send(text_message(CLEAN_TEXT, "fine"))
    assert code == 250, text
    for _ in range(3):
        code, text = postfix.send((SAMPLES / REJECT_SAMPLES[0]).read_bytes())
        assert code == 550, text
    # Workers send their outcomes to the parent in batches, at most half a second late.
    metrics = wait_until(
        lambda: (
            text
            if sample_value(text := scrape(url), "menshen_client_failure_ratio_max") == 0.75
            else None
        ),
        10,
        "all four outcomes in the parent's window",
    )
    assert sample_value(metrics, "menshen_clients_over_failure_ratio") == 1
    # Named once, when it crossed: at the third message, 2 of 3 refused.
    assert daemon.log_text().count("client 127.0.0.1: 67% of its messages rejected") == 1
    assert "127.0.0.1" not in metrics  # the address is in the log, never in a label
    daemon.stop()
