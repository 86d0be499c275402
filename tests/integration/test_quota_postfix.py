"""A per-sender quota behind a real Postfix: what the SMTP client and smtp-sink see.

The private Postfix of tests/integration/conftest.py hands every session to `menshen
serve`, configured with quotas enabled, the SQLite store in the test's temp dir and one
rule `{name: per-sender, key: sender, limit: 3, per: day}` (refused at RCPT, the default).
Checked end to end:
- three messages from a@example.com are delivered; the fourth gets 451 4.7.1 at RCPT from
  Postfix (the milter's text) and nothing more reaches the sink or stays queued;
- a message from b@example.com is still delivered (quotas are per sender);
- `menshen quota show -c CFG a@example.com` (the installed console script) reports
  3 used of a limit of 3, and its `--json` output parses with used == 3;
- `menshen quota reset` clears the count, and a@example.com can send again.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from postfix_rig import PostfixRig, menshen_executable  # tests/rig, on sys.path via conftest

pytestmark = pytest.mark.integration

# The `menshen_daemon` factory fixture (conftest.py): starts a daemon, returns its handle.
Daemons = Callable[..., Any]

LIMITED = "a@example.com"
OTHER = "b@example.com"
RCPTS = ("bob@example.com",)
LIMIT = 3


def message(sender: str, number: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = RCPTS[0]
    msg["Subject"] = f"周报 {number}"
    msg["X-Test-Id"] = f"quota-{sender}-{number}"
    msg.set_content("各位同事：本周进展见下，请查阅。", charset="utf-8", cte="base64")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def quota_config(menshen_config: Path, store: Path) -> Path:
    config = yaml.safe_load(menshen_config.read_text(encoding="utf-8"))
    config["metrics"] = {"enabled": False}
    config["quotas"] = {
        "enabled": True,
        "timezone": "Asia/Shanghai",
        "store": {"type": "sqlite", "path": str(store)},
        "rules": [{"name": "per-sender", "key": "sender", "limit": LIMIT, "per": "day"}],
    }
    menshen_config.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return menshen_config


def menshen(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [menshen_executable(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def context(postfix: PostfixRig, daemon: Any) -> str:
    parts = ["--- postfix maillog ---", *postfix.log_text().splitlines()[-25:]]
    parts += ["--- menshen log ---", *daemon.log_text().splitlines()[-25:]]
    return "\n".join(parts)


def delivered_ids(postfix: PostfixRig) -> list[str]:
    ids = []
    for raw in postfix.delivered():  # waits until the queue has drained
        for line in raw.decode("utf-8", "replace").splitlines():
            if line.startswith("X-Test-Id: "):
                ids.append(line.removeprefix("X-Test-Id: ").strip())
    return sorted(ids)


def test_fourth_message_of_a_sender_is_refused_at_rcpt_and_counted_by_the_cli(
    postfix: PostfixRig, menshen_daemon: Daemons, menshen_config: Path, tmp_path: Path
) -> None:
    config = quota_config(menshen_config, tmp_path / "state" / "quotas.sqlite3")
    daemon = menshen_daemon(config=config)

    for number in range(1, LIMIT + 1):
        code, text = postfix.send(message(LIMITED, number), sender=LIMITED, rcpts=RCPTS)
        assert code == 250, f"{number}: {code} {text}\n{context(postfix, daemon)}"
    postfix.delivered(expect=LIMIT)

    code, text = postfix.send(message(LIMITED, LIMIT + 1), sender=LIMITED, rcpts=RCPTS)
    assert code == 451, f"{code} {text}\n{context(postfix, daemon)}"
    assert text.startswith("4.7.1 "), text
    assert "Sending quota exceeded" in text, text
    postfix.wait_for_log("milter-reject: RCPT from")

    code, text = postfix.send(message(OTHER, 1), sender=OTHER, rcpts=RCPTS)
    assert code == 250, f"{code} {text}\n{context(postfix, daemon)}"
    postfix.delivered(expect=LIMIT + 1)
    expected = sorted([*(f"quota-{LIMITED}-{n}" for n in range(1, LIMIT + 1)), f"quota-{OTHER}-1"])
    assert delivered_ids(postfix) == expected, context(postfix, daemon)
    assert postfix.queue() == []

    shown = menshen("quota", "show", "-c", str(config), LIMITED)
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert rows[0][:5] == ["RULE", "KEY", "IDENTITY", "USED", "LIMIT"], shown.stdout
    assert rows[1][:5] == ["per-sender", "sender", LIMITED, "3", "3"], shown.stdout

    as_json = menshen("quota", "show", "--json", "-c", str(config), LIMITED)
    assert as_json.returncode == 0, as_json.stderr
    (row,) = json.loads(as_json.stdout)
    assert (row["rule"], row["identity"], row["used"], row["limit"]) == (
        "per-sender",
        LIMITED,
        LIMIT,
        LIMIT,
    )
    assert row["window"] == "per day"
    assert row["resets"].endswith("T00:00+08:00"), row  # Shanghai midnight

    other = json.loads(menshen("quota", "show", "--json", "-c", str(config), OTHER).stdout)
    assert [r["used"] for r in other] == [1]

    reset = menshen("quota", "reset", "-c", str(config), LIMITED)
    assert reset.returncode == 0, reset.stderr
    code, text = postfix.send(message(LIMITED, LIMIT + 2), sender=LIMITED, rcpts=RCPTS)
    assert code == 250, f"after reset: {code} {text}\n{context(postfix, daemon)}"
    postfix.delivered(expect=LIMIT + 2)

    # SIGTERM, not the fixture's SIGKILL at teardown: killing the supervising parent
    # leaves its pre-forked workers running (orphaned, still serving the socket).
    daemon.stop()
