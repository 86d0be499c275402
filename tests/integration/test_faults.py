"""Faults under load through a real Postfix: nothing accepted may be lost.

A burst of messages goes through the private Postfix while menshen is killed again and
again: the supervising parent with SIGKILL (its workers follow by themselves), or one
worker with SIGKILL (the parent replaces it), and each time a new daemon is started on the
same socket, as a service manager would. Every message is then accounted for:
  250      accepted: it must reach smtp-sink exactly once (duplicates are counted);
  5xx      refused by policy: only messages that carry a keyword, never delivered;
  4xx / -  the client was told to retry (milter_default_action = tempfail), never delivered.
A reload storm (SIGUSR1 over and over, half of them with a broken wordlist) under the same
load must not change a single verdict.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from postfix_rig import PostfixRig, child_pids  # tests/rig, put on sys.path by conftest.py

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
CLEAN = (SAMPLES / "clean-chinese-business.eml").read_bytes()
KEYWORD = (SAMPLES / "kw-body-gbk-base64.eml").read_bytes()
REJECT_TEXT = "Message rejected by content policy: keyword category"
QUEUED = re.compile(r"queued as ([0-9A-Za-z]+)")
TEST_ID = re.compile(rb"^X-Test-Id: (fault-\d+)", re.M)

Daemons = Callable[..., Any]


class Burst:
    """Sends `total` messages from `threads` clients; every 5th carries a keyword."""

    def __init__(self, postfix: PostfixRig, total: int, threads: int = 8) -> None:
        self.postfix = postfix
        self.messages = {
            f"fault-{i:03d}": f"X-Test-Id: fault-{i:03d}\r\n".encode()
            + (KEYWORD if i % 5 == 4 else CLEAN)
            for i in range(total)
        }
        self.keyword_ids = {tid for i, tid in enumerate(self.messages) if i % 5 == 4}
        self.replies: dict[str, tuple[int, str]] = {}
        self.threads = threads
        self._lock = threading.Lock()
        self.progress = threading.Condition(self._lock)

    def _send(self, test_id: str) -> None:
        reply = self.postfix.send(self.messages[test_id], timeout=90)
        with self.progress:
            self.replies[test_id] = reply
            self.progress.notify_all()

    def wait_for_replies(self, count: int, timeout: float) -> bool:
        with self.progress:
            return self.progress.wait_for(lambda: len(self.replies) >= count, timeout)

    def run(self, meanwhile: Callable[[Burst], None]) -> None:
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            futures = [pool.submit(self._send, tid) for tid in self.messages]
            meanwhile(self)
            for future in futures:
                future.result(timeout=120)

    def account(self, context: str) -> collections.Counter[str]:
        """Check every message's fate; returns how many ended each way."""
        self.postfix.wait_drained(timeout=60)
        copies: collections.Counter[str] = collections.Counter()
        for raw in self.postfix.delivered():
            found = TEST_ID.search(raw)
            assert found, raw[:300]
            copies[found.group(1).decode()] += 1
        held = {m["queue_id"] for m in self.postfix.hold_queue()}
        outcomes: collections.Counter[str] = collections.Counter()
        problems = []
        for test_id, (code, text) in sorted(self.replies.items()):
            if code == 250:
                queued = QUEUED.search(text)
                if copies[test_id] == 0 and not (queued and queued.group(1) in held):
                    problems.append(f"LOST after 250: {test_id} {text}")
                outcomes["delivered"] += 1
            elif 500 <= code < 600:
                if test_id not in self.keyword_ids or REJECT_TEXT not in text:
                    problems.append(f"5xx for a clean message: {test_id} {code} {text}")
                outcomes["refused by policy"] += 1
            elif 400 <= code < 500 or code == 0:
                outcomes["told to retry"] += 1
            else:
                problems.append(f"unexpected reply: {test_id} {code} {text}")
            if code != 250 and copies[test_id]:
                problems.append(f"delivered although told {code}: {test_id}")
            if copies[test_id] > 1:
                outcomes["duplicates"] += copies[test_id] - 1
        slipped = [t for t in self.keyword_ids if self.replies.get(t, (0, ""))[0] == 250]
        problems += [f"keyword message accepted: {t}" for t in slipped]
        assert len(self.replies) == len(self.messages)
        assert not problems, "\n".join(problems) + "\n" + context
        return outcomes


def test_twenty_sigkills_under_load_lose_nothing(
    postfix: PostfixRig, menshen_daemon: Daemons
) -> None:
    kills_wanted, step = 20, 10
    burst = Burst(postfix, total=kills_wanted * step + 60)
    current = [menshen_daemon()]
    kills: collections.Counter[str] = collections.Counter()

    def kill_repeatedly(burst: Burst) -> None:
        for number in range(kills_wanted):
            burst.wait_for_replies((number + 1) * step, timeout=60)
            daemon = current[0]
            workers = child_pids(daemon.pid)
            if number % 4 == 3 and workers:
                os.kill(workers[0], signal.SIGKILL)  # the parent replaces it
                kills["worker"] += 1
                continue
            daemon.kill()  # SIGKILL; its workers drain and leave on their own
            kills["parent"] += 1
            current[0] = menshen_daemon()  # restarted, as systemd's Restart= would

    burst.run(kill_repeatedly)
    assert sum(kills.values()) == kills_wanted, kills
    outcomes = burst.account(f"kills: {dict(kills)}\n" + postfix.log_text()[-3000:])
    # The load really ran through the kills: some mail was accepted, some told to retry.
    assert outcomes["delivered"] > 0 and outcomes["refused by policy"] > 0, outcomes
    assert outcomes["duplicates"] == 0, outcomes


def test_a_reload_storm_changes_no_verdict(
    postfix: PostfixRig, menshen_daemon: Daemons, wordlist_dir: Path
) -> None:
    daemon = menshen_daemon()
    target = wordlist_dir / "gambling.txt"
    good = target.read_bytes()
    broken = good + b"\xff\xfe not utf-8\n"
    burst = Burst(postfix, total=150)
    storms = 100

    def storm(burst: Burst) -> None:
        for number in range(storms):
            target.write_bytes(broken if number % 2 else good)
            os.kill(daemon.pid, signal.SIGUSR1)
            burst.wait_for_replies(number + 1, timeout=60)
        target.write_bytes(good)

    burst.run(storm)
    outcomes = burst.account(daemon.log_text()[-3000:])
    assert outcomes["told to retry"] == 0, outcomes  # a reload never costs a message
    log = daemon.log_text()
    assert "reload refused" in log and "reloaded" in log
    assert daemon.process is not None and daemon.process.poll() is None
