"""Pre-forked workers: one parent opens the socket, several processes serve it.

The real daemon runs with `--workers 2` and is driven over its socket with the MTA-side
client. Covered: both workers exist and both serve; a worker killed with SIGKILL is
replaced and mail keeps flowing; a reload reaches every worker and a broken one reaches
none; a worker restarted after a wordlist broke starts from the lists its parent
validated; the parent's endpoint merges the workers' counts (and keeps a dead worker's);
SIGTERM during a burst answers every message in flight, then the parent, the workers and
the socket are gone. Dropping privileges is in test_privileges.py.
"""

from __future__ import annotations

import os
import re
import signal
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from milter_client import Code, MilterResult
from net import free_port
from procfs import child_pids, cpu_ticks

from menshen.metrics import parse_exposition

if TYPE_CHECKING:  # conftest modules are not importable at run time
    from conftest import Daemon, StartDaemon

ROOT = Path(__file__).resolve().parents[2]
CLEAN = (ROOT / "samples" / "clean-chinese-business.eml").read_bytes()
KEYWORD = (ROOT / "samples" / "kw-body-big5.eml").read_bytes()
NEW_TERM = "特别渠道返点"


def wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)  # polling processes and files: nothing to wait on instead


def send(daemon: Daemon, raw: bytes, index: int) -> MilterResult:
    with daemon.client() as client:
        return client.send_message(raw, "alice@sender.example", ("bob@example.com",))


def burst(daemon: Daemon, count: int, raw: bytes = CLEAN) -> list[MilterResult]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(lambda i: send(daemon, raw, i), range(count)))


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {(n, tuple(sorted(labels.items()))): v for n, labels, v in parse_exposition(text)}


def messages(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], action: str) -> float:
    return sum(
        value
        for (name, labels), value in metrics.items()
        if name == "menshen_messages_total" and ("action", action) in labels
    )


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def workers(start_daemon: StartDaemon, port: int, tmp_path: Path) -> Daemon:
    wordlists = tmp_path / "wordlists"
    wordlists.mkdir()
    for source in (ROOT / "wordlists").glob("*.txt"):
        (wordlists / source.name).write_bytes(source.read_bytes())
    daemon = start_daemon(
        f"milter:\n  workers: 2\n  drain_seconds: 10\nmetrics:\n  port: {port}\n",
        wordlists=wordlists,
    )
    daemon.wait_for_log(r"worker 1 \(pid \d+\) serving")
    daemon.wait_for_log(r"worker 2 \(pid \d+\) serving")
    return daemon


def test_two_workers_both_serve_the_one_socket(workers: Daemon, port: int) -> None:
    pids = set(child_pids(workers.pid))
    assert len(pids) == 2, pids
    before = {pid: cpu_ticks(pid) for pid in pids}
    results = burst(workers, 200)
    assert {r.action for r in results} == {Code.ACCEPT}
    used = {pid: cpu_ticks(pid) - before[pid] for pid in pids}
    assert all(ticks > 0 for ticks in used.values()), used  # the kernel shares the accepts
    assert messages(scrape(port), "accept") == 200


def test_a_killed_worker_is_replaced_and_its_counts_stay(workers: Daemon, port: int) -> None:
    burst(workers, 20)
    victim = min(child_pids(workers.pid))
    os.kill(victim, signal.SIGKILL)
    workers.wait_for_log(rf"worker \d \(pid {victim}\) was killed by SIGKILL")
    wait_for(lambda: len(set(child_pids(workers.pid)) - {victim}) == 2)
    results = burst(workers, 40)
    assert {r.action for r in results} == {Code.ACCEPT}
    assert messages(scrape(port), "accept") == 60  # the dead worker's 20 included


def test_reload_reaches_every_worker(workers: Daemon, tmp_path: Path) -> None:
    with (tmp_path / "wordlists" / "invoice_fraud.txt").open("a", encoding="utf-8") as handle:
        handle.write(f"\n{NEW_TERM}\n")
    mark = len(workers.log())
    workers.signal(signal.SIGUSR1)
    workers.wait_for_log(r"telling 2 worker\(s\)", after=mark)
    wait_for(lambda: len(re.findall(r"^reloaded \S+$", workers.log()[mark:], re.M)) == 2)
    message = (
        "From: a@sender.example\r\nTo: b@example.com\r\nSubject: x\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"关于{NEW_TERM}的说明\r\n"
    ).encode()
    assert {r.action for r in burst(workers, 20, message)} == {Code.REPLYCODE}


def test_a_broken_reload_reaches_no_worker(workers: Daemon, tmp_path: Path, port: int) -> None:
    (tmp_path / "wordlists" / "broken.txt").write_bytes(b"\xff\xfe not utf-8\n")
    mark = len(workers.log())
    workers.signal(signal.SIGUSR1)
    workers.wait_for_log(r"reload refused", after=mark)
    assert "telling" not in workers.log()[mark:]
    assert {r.action for r in burst(workers, 10, KEYWORD)} == {Code.REPLYCODE}
    metrics = scrape(port)
    assert metrics[("menshen_reloads_total", (("result", "failed"),))] == 1
    assert metrics[("menshen_config_last_reload_successful", ())] == 0


def test_a_worker_restarted_after_a_wordlist_broke_serves_the_validated_lists(
    workers: Daemon, tmp_path: Path
) -> None:
    # The file breaks under a running daemon (no reload, or a refused one): a worker that
    # dies now must come back with the lists its parent validated, not crash-loop on the
    # broken file.
    (tmp_path / "wordlists" / "invoice_fraud.txt").write_bytes(b"\xff\xfe not utf-8\n")
    mark = len(workers.log())
    workers.signal(signal.SIGUSR1)
    workers.wait_for_log(r"reload refused", after=mark)
    victim = min(child_pids(workers.pid))
    os.kill(victim, signal.SIGKILL)
    workers.wait_for_log(r"worker \d \(pid \d+\) serving", after=mark)
    wait_for(lambda: len(set(child_pids(workers.pid)) - {victim}) == 2)
    assert "exited with status 2" not in workers.log()[mark:]
    assert {r.action for r in burst(workers, 20, KEYWORD)} == {Code.REPLYCODE}
    assert {r.action for r in burst(workers, 20)} == {Code.ACCEPT}


def test_sigterm_during_a_burst_answers_every_message(workers: Daemon) -> None:
    pids = set(child_pids(workers.pid))
    with ThreadPoolExecutor(max_workers=16) as pool:
        running = [pool.submit(send, workers, CLEAN, i) for i in range(48)]
        running[0].result()  # the burst is under way
        workers.signal(signal.SIGTERM)
        outcomes = []
        for future in running:
            try:
                outcomes.append(future.result().action)
            except OSError:
                outcomes.append("refused")  # after the name is gone: Postfix would tempfail
    assert workers.wait() == 0
    assert set(outcomes) <= {Code.ACCEPT, "refused"}, outcomes
    assert outcomes.count(Code.ACCEPT) > 0
    assert workers.socket_path is not None and not workers.socket_path.exists()
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)


def test_workers_leave_when_their_parent_is_killed(workers: Daemon) -> None:
    pids = set(child_pids(workers.pid))
    workers.signal(signal.SIGKILL)
    workers.wait()
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids))
