"""menshen behind a real Postfix: what an SMTP client and the next hop actually see.

Each test drives a private Postfix on loopback (tests/integration/conftest.py) whose smtpd
hands every session to `menshen serve` over a unix socket and relays accepted mail to
smtp-sink. Checked end to end:
- clean mail is delivered once and carries the X-Menshen-Verdict header;
- keyword mail (GBK base64, Big5, docx attachment, ...) gets a 5xx at the client and
  nothing reaches the sink;
- a quarantine-category message is accepted into Postfix's hold queue, not delivered;
- with the daemon stopped, Postfix answers 4xx (milter_default_action = tempfail);
- SIGUSR1 with a broken wordlist is refused and the old verdicts stay; with a valid new
  term the term is enforced from then on;
- SIGTERM in the middle of a burst loses no message and the daemon exits 0.
Failures name the message, the reply and the Postfix and daemon log tails.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from postfix_rig import PostfixRig  # tests/rig, put on sys.path by conftest.py

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"

pytestmark = pytest.mark.integration

# The `menshen_daemon` factory fixture (conftest.py): starts a daemon, returns its handle.
Daemons = Callable[..., Any]

VERDICT_HEADER = "X-Menshen-Verdict"
REJECT_TEXT = "Message rejected by content policy: keyword category"
QUEUED = re.compile(r"queued as ([0-9A-Za-z]+)")

# The keyword samples and the category each must be rejected for.
KEYWORD_SAMPLES = [
    ("kw-body-gbk-base64.eml", "invoice_fraud"),
    ("kw-body-big5.eml", "invoice_fraud"),
    ("kw-attachment-docx.eml", "invoice_fraud"),
    ("kw-subject-gb2312.eml", "invoice_fraud"),
    ("kw-body-gb18030-qp.eml", "invoice_fraud"),
    ("kw-html-split.eml", "invoice_fraud"),
    ("kw-attached-message.eml", "invoice_fraud"),
    ("kw-pharma-en.eml", "pharma_spam"),
]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def text_message(body: str, subject: str = "季度报告", test_id: str | None = None) -> bytes:
    """A UTF-8 text/plain message (base64 body, as most Chinese mail clients send it)."""
    msg = EmailMessage()
    msg["From"] = "alice@sender.test"
    msg["To"] = "bob@example.com"
    msg["Subject"] = subject
    if test_id is not None:
        msg["X-Test-Id"] = test_id
    msg.set_content(body, charset="utf-8", cte="base64")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def with_test_id(raw: bytes, test_id: str) -> bytes:
    """The message with an X-Test-Id header on top, to find its copy at the sink."""
    return f"X-Test-Id: {test_id}\r\n".encode() + raw


def context(postfix: PostfixRig, daemon: Any = None) -> str:
    """Log tails for assertion messages."""
    parts = ["--- postfix maillog ---", *postfix.log_text().splitlines()[-25:]]
    if daemon is not None:
        parts += ["--- menshen log ---", *daemon.log_text().splitlines()[-25:]]
    return "\n".join(parts)


CLEAN = "clean-chinese-business.eml"
CLEAN_TEXT = "各位同事：下周二上午十点在三楼会议室讨论季度报告，请准时参加。"
# In the shipped confidential list (quarantine by default).
CONFIDENTIAL_TEXT = "附件是商业机密，请勿转发给外部人员。"
# A term in no shipped list; the reload test adds it to invoice_fraud.
NEW_TERM = "蓝鲸暗号"


def test_clean_sample_is_delivered_with_verdict_header(
    postfix: PostfixRig, menshen_daemon: Daemons
) -> None:
    daemon = menshen_daemon()
    code, text = postfix.send(sample(CLEAN))
    assert code == 250, f"{code} {text}\n{context(postfix, daemon)}"
    postfix.delivered(expect=1)
    delivered = postfix.delivered()  # after the queue drained: exactly one copy
    assert len(delivered) == 1, context(postfix, daemon)
    assert b"clean-chinese-business@samples.menshen.example" in delivered[0]
    head = delivered[0][:2000].decode("utf-8", "replace")
    assert re.search(rb"^X-Menshen-Verdict: accept; score=0\r?$", delivered[0], re.M), head
    assert postfix.hold_queue() == []


@pytest.mark.parametrize(("name", "category"), KEYWORD_SAMPLES)
def test_keyword_sample_is_rejected_and_not_delivered(
    postfix: PostfixRig, menshen_daemon: Daemons, name: str, category: str
) -> None:
    daemon = menshen_daemon()
    code, text = postfix.send(sample(name))
    assert code == 550, f"{name}: {code} {text}\n{context(postfix, daemon)}"
    assert text.startswith("5.7.1 "), text
    assert f"{REJECT_TEXT} {category}" in text
    assert postfix.delivered() == []
    assert postfix.queue() == []
    postfix.wait_for_log("milter-reject: END-OF-MESSAGE")


def test_quarantine_category_goes_to_hold_queue(
    postfix: PostfixRig, menshen_daemon: Daemons
) -> None:
    daemon = menshen_daemon()
    code, text = postfix.send(text_message(CONFIDENTIAL_TEXT))
    assert code == 250, f"{code} {text}\n{context(postfix, daemon)}"
    queue_id = QUEUED.search(text)
    assert queue_id, text
    held = postfix.hold_queue()
    assert [m["queue_id"] for m in held] == [queue_id.group(1)], context(postfix, daemon)
    assert postfix.delivered() == []
    postfix.wait_for_log("milter triggers HOLD action")


def test_daemon_stopped_means_tempfail(postfix: PostfixRig, menshen_daemon: Daemons) -> None:
    daemon = menshen_daemon()
    assert daemon.stop() == 0
    code, text = postfix.send(sample(CLEAN))
    assert 400 <= code < 500, f"{code} {text}\n{context(postfix, daemon)}"
    assert postfix.queue() == []
    assert postfix.delivered() == []


def test_reload_with_broken_wordlist_is_refused_and_old_verdicts_stay(
    postfix: PostfixRig, menshen_daemon: Daemons, wordlist_dir: Path
) -> None:
    daemon = menshen_daemon()
    with (wordlist_dir / "invoice_fraud.txt").open("ab") as f:
        f.write(b"\xff\xfe\xc3\x28 not utf-8\n")
    assert daemon.reload() == "reload refused", context(postfix, daemon)

    code, text = postfix.send(sample("kw-body-gbk-base64.eml"))
    assert code == 550, f"{code} {text}\n{context(postfix, daemon)}"
    assert f"{REJECT_TEXT} invoice_fraud" in text
    code, text = postfix.send(sample(CLEAN))
    assert code == 250, f"{code} {text}\n{context(postfix, daemon)}"
    assert len(postfix.delivered(expect=1)) == 1
    assert daemon.running()


def test_reload_with_new_term_enforces_it(
    postfix: PostfixRig, menshen_daemon: Daemons, wordlist_dir: Path
) -> None:
    daemon = menshen_daemon()
    message = text_message(f"请注意：{NEW_TERM}已经更新。")
    code, text = postfix.send(message)
    assert code == 250, f"before reload: {code} {text}\n{context(postfix, daemon)}"
    assert len(postfix.delivered(expect=1)) == 1

    with (wordlist_dir / "invoice_fraud.txt").open("a", encoding="utf-8") as f:
        f.write(f"{NEW_TERM}\n")
    assert daemon.reload() == "reloaded", context(postfix, daemon)

    code, text = postfix.send(message)
    assert code == 550, f"after reload: {code} {text}\n{context(postfix, daemon)}"
    assert f"{REJECT_TEXT} invoice_fraud" in text
    # Still exactly the one copy from before the reload.
    assert len(postfix.delivered()) == 1
    code, text = postfix.send(sample(CLEAN))
    assert code == 250, f"{code} {text}\n{context(postfix, daemon)}"


def test_sigterm_during_burst_loses_nothing(postfix: PostfixRig, menshen_daemon: Daemons) -> None:
    daemon = menshen_daemon()
    total, threads, signal_after = 40, 8, 10
    keyword_raw = sample("kw-body-gbk-base64.eml")
    clean_raw = sample(CLEAN)
    # Every 4th message carries a keyword: the policy rejects those; the rest are clean.
    messages = {
        f"burst-{i:02d}": with_test_id(keyword_raw if i % 4 == 3 else clean_raw, f"burst-{i:02d}")
        for i in range(total)
    }
    keyword_ids = {tid for i, tid in enumerate(messages) if i % 4 == 3}
    replies: dict[str, tuple[int, str]] = {}
    lock = threading.Lock()
    halfway = threading.Event()
    after_signal: list[str] = []
    signalled = threading.Event()

    def send(test_id: str) -> None:
        reply = postfix.send(messages[test_id], timeout=60)
        with lock:
            replies[test_id] = reply
            if signalled.is_set():
                after_signal.append(test_id)
            if len(replies) >= signal_after:
                halfway.set()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(send, tid) for tid in messages]
        assert halfway.wait(timeout=30), f"burst stalled: {replies}\n{context(postfix, daemon)}"
        daemon.terminate()
        signalled.set()
        for future in futures:
            future.result(timeout=60)

    status = daemon.wait(timeout=60)
    assert status == 0, f"exit status {status}\n{context(postfix, daemon)}"
    assert after_signal, "every message finished before SIGTERM; the burst proved nothing"

    postfix.wait_drained(timeout=20)
    delivered_ids = set()
    for raw in postfix.delivered():
        found = re.search(rb"^X-Test-Id: (burst-\d+)", raw, re.M)
        assert found, raw[:500]
        delivered_ids.add(found.group(1).decode())
    held_queue_ids = {m["queue_id"] for m in postfix.hold_queue()}

    lost, wrong = [], []
    for test_id, (code, text) in sorted(replies.items()):
        if code == 250:
            queued = QUEUED.search(text)
            if test_id not in delivered_ids and not (queued and queued.group(1) in held_queue_ids):
                lost.append(f"{test_id}: {code} {text}")
        elif 500 <= code < 600:
            if test_id not in keyword_ids or REJECT_TEXT not in text:
                wrong.append(f"{test_id}: 5xx for a clean message: {code} {text}")
        elif not (400 <= code < 500 or code == 0):
            wrong.append(f"{test_id}: unexpected reply {code} {text}")
        if code != 250 and test_id in delivered_ids:
            wrong.append(f"{test_id}: delivered although the client was told {code} {text}")
    assert len(replies) == total
    assert not lost, "lost after 250:\n" + "\n".join(lost) + "\n" + context(postfix, daemon)
    assert not wrong, "\n".join(wrong) + "\n" + context(postfix, daemon)
    # A keyword message accepted with 250 would have slipped past the policy.
    slipped = [t for t in keyword_ids if replies[t][0] == 250]
    assert not slipped, f"keyword messages accepted: {slipped}"
