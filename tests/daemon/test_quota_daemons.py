"""Sender quotas across a fleet: two real `menshen serve` daemons sharing one real Redis.

Each daemon runs the same config (quotas enabled, store redis at the rig's URL, one rule
`{name: burst, key: sender, limit: 20, per: day}`, its own local SQLite fallback file and
its own metrics port) and is driven over the milter protocol by the MTA-side client in
tests/support/milter_client.py, one message per connection. Covered:
- 64 connections at once, split across the two daemons, all from one sender: exactly 20
  ACCEPT, 44 TEMPFAIL with `451 4.7.1`, Redis holds 20 and `menshen quota show --json`
  says 20; both with the refusal at RCPT (check_at_rcpt: true) and only at end of message,
  and once the quota is used up the next message is refused at RCPT (or at end of message);
- Redis stopped under traffic: both daemons keep answering (accepted, counted in their
  local store), log "unreachable" and export menshen_quota_backend_up 0; Redis restarted:
  "reachable again" is logged, the gauge is back to 1, every message was counted exactly
  once (in Redis or locally), and counting is in Redis again (the local counts stop
  growing). Messages never wait long on a dead Redis.
The 64-connection test runs each daemon with two pre-forked workers (milter.workers: 2),
so four processes share the limit; the outage test runs with one process and with two
workers per daemon: each process keeps its own view of whether Redis is up, and the gauge
(multiprocess mode "min") is 1 only when all of them are back.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import redis
import yaml
from milter_client import Code, MilterResult
from redis_rig import RedisServer

from menshen.config import CalendarPeriod, QuotaCount, QuotaKey, QuotaRule, QuotaWindow
from menshen.quota.rules import counter
from menshen.quota.sqlite_store import SqliteStore

if TYPE_CHECKING:  # conftest modules are not importable at run time
    from conftest import Daemon, RunMenshen, StartDaemon

pytestmark = pytest.mark.integration

SENDER = "burst@sender.example"
RCPTS = ("bob@example.com",)
PREFIX = "menshen:quota:daemons:"
LIMIT = 20
CONNECTIONS = 64
POLL_SECONDS = 0.05  # between messages while waiting for the limiter's retry interval
RETRY_SECONDS = 0.2  # quotas.store.retry_seconds: how soon a daemon tries Redis again
SLOW_SECONDS = 3.0  # a message must never wait this long on a dead Redis (timeout 0.5 s)
MESSAGE = (
    f"From: {SENDER}\r\nTo: {RCPTS[0]}\r\nSubject: quota\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=UTF-8\r\n\r\nA plain message, nothing to find.\r\n"
).encode("ascii")
TEMPFAIL_TEXT = "4.7.1 Sending quota exceeded, try again later: "
UNREACHABLE = "quota store redis unreachable"  # logged once per process when Redis goes
REACHABLE = "quota store redis reachable again"  # and once when it answers again

_queue_ids = iter(range(0x30000, 0x40000))


def queue_id() -> str:
    return f"4Q{next(_queue_ids):05X}Z"


def quota_config(
    redis_url: str, local: Path, *, check_at_rcpt: bool, workers: int, limit: int = LIMIT
) -> str:
    config: dict[str, Any] = {
        "mode": "enforce",
        "milter": {"workers": workers},  # processes per daemon, each with its own limiter
        # Port 0: the daemon binds a free port and logs it ("metrics on http://...").
        "metrics": {"enabled": True, "address": "127.0.0.1", "port": 0},
        "quotas": {
            "enabled": True,
            "timezone": "UTC",
            "check_at_rcpt": check_at_rcpt,
            "store": {
                "type": "redis",
                "redis_url": redis_url,
                "path": str(local),
                "key_prefix": PREFIX,
                "timeout_seconds": 0.5,
                "retry_seconds": RETRY_SECONDS,
            },
            "rules": [{"name": "burst", "key": "sender", "limit": limit, "per": "day"}],
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def start_pair(
    start_daemon: StartDaemon,
    server: RedisServer,
    directory: Path,
    *,
    check_at_rcpt: bool,
    workers: int = 2,
    limit: int = LIMIT,
) -> list[Daemon]:
    return [
        start_daemon(
            quota_config(
                server.url,
                directory / f"local-{name}.sqlite3",
                check_at_rcpt=check_at_rcpt,
                workers=workers,
                limit=limit,
            )
        )
        for name in ("a", "b")
    ]


def outcome(result: MilterResult) -> str:
    if result.action is Code.ACCEPT and result.stage == "eom":
        return "accept"
    if (
        result.action is Code.REPLYCODE
        and result.reply is not None
        and (result.reply.code, result.reply.enhanced) == ("451", "4.7.1")
        and result.reply.text.startswith(TEMPFAIL_TEXT)
    ):
        return "451 4.7.1"
    return f"unexpected: {result!r}"


def send_one(daemon: Daemon) -> MilterResult:
    with daemon.client() as client:
        return client.send_message(MESSAGE, SENDER, RCPTS, queue_id=queue_id())


def redis_count(server: RedisServer) -> int:
    client = redis.Redis.from_url(server.url, socket_timeout=5.0, decode_responses=True)
    try:
        return sum(int(value) for value in client.hvals(f"{PREFIX}burst:{SENDER}"))
    finally:
        client.close()


def local_count(path: Path) -> int:
    rule = QuotaRule(
        name="burst",
        key=QuotaKey.SENDER,
        count=QuotaCount.MESSAGES,
        limit=LIMIT,
        window=QuotaWindow(calendar=CalendarPeriod.DAY),
        warn_at=None,
    )
    now = time.time()
    store = SqliteStore(path)
    try:
        return store.usage([counter(rule, SENDER, now, UTC, 1)], now)[0]
    finally:
        store.close()


def metrics_url(daemon: Daemon) -> str:
    match = daemon.wait_for_log(r"metrics on (http://\S+/metrics)")
    return match.group(1)


def backend_up(url: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode("utf-8")
    found = re.search(r"^menshen_quota_backend_up (\S+)$", text, re.MULTILINE)
    assert found is not None, text
    return float(found.group(1))


@pytest.mark.parametrize(
    "check_at_rcpt",
    [pytest.param(False, id="refused-at-eom"), pytest.param(True, id="refused-at-rcpt-or-eom")],
)
def test_two_daemons_admit_exactly_the_limit_of_64_simultaneous_messages(
    start_daemon: StartDaemon,
    fresh_redis: RedisServer,
    run_menshen: RunMenshen,
    tmp_path: Path,
    check_at_rcpt: bool,
) -> None:
    daemons = start_pair(start_daemon, fresh_redis, tmp_path, check_at_rcpt=check_at_rcpt)
    together = threading.Barrier(CONNECTIONS, timeout=60)

    def one_connection(index: int) -> MilterResult:
        with daemons[index % 2].client() as client:  # connected and negotiated
            together.wait()
            return client.send_message(MESSAGE, SENDER, RCPTS, queue_id=queue_id())

    with ThreadPoolExecutor(max_workers=CONNECTIONS) as pool:
        results = list(pool.map(one_connection, range(CONNECTIONS)))

    outcomes = [outcome(result) for result in results]
    assert outcomes.count("accept") == LIMIT, outcomes
    assert outcomes.count("451 4.7.1") == CONNECTIONS - LIMIT, outcomes
    stages = {result.stage for result in results if outcome(result) == "451 4.7.1"}
    assert stages <= ({"rcpt", "eom"} if check_at_rcpt else {"eom"}), stages
    assert redis_count(fresh_redis) == LIMIT
    per_daemon = [
        sum(outcomes[i] == "accept" for i in range(side, CONNECTIONS, 2)) for side in (0, 1)
    ]
    assert sum(per_daemon) == LIMIT

    # The quota is used up now: the next message is refused where the config says.
    for daemon in daemons:
        late = send_one(daemon)
        assert outcome(late) == "451 4.7.1", late
        assert late.stage == ("rcpt" if check_at_rcpt else "eom"), late
    assert redis_count(fresh_redis) == LIMIT

    shown = run_menshen("quota", "show", "--json", "-c", str(daemons[0].config_file), SENDER)
    assert shown.returncode == 0, shown.stderr
    rows = yaml.safe_load(shown.stdout)  # JSON is YAML
    assert [(row["rule"], row["used"], row["limit"]) for row in rows] == [("burst", LIMIT, LIMIT)]


def send_timed(daemon: Daemon) -> tuple[str, float]:
    began = time.monotonic()
    result = send_one(daemon)
    return outcome(result), time.monotonic() - began


@pytest.mark.parametrize(
    "workers", [pytest.param(1, id="one-process"), pytest.param(2, id="two-workers")]
)
def test_redis_outage_counts_locally_then_recovers(
    start_daemon: StartDaemon, private_redis: RedisServer, tmp_path: Path, workers: int
) -> None:
    daemons = start_pair(
        start_daemon, private_redis, tmp_path, check_at_rcpt=True, workers=workers, limit=1000
    )
    locals_ = [tmp_path / "local-a.sqlite3", tmp_path / "local-b.sqlite3"]
    urls = [metrics_url(daemon) for daemon in daemons]

    # Redis up: counted in Redis.
    for daemon in daemons:
        for _ in range(3):
            assert send_timed(daemon)[0] == "accept"
    assert redis_count(private_redis) == 6
    assert [backend_up(url) for url in urls] == [1.0, 1.0]

    # Redis down: every message still answered at once, accepted and counted locally.
    private_redis.stop()
    for daemon in daemons:
        for _ in range(3):
            result, seconds = send_timed(daemon)
            assert result == "accept"
            assert seconds < SLOW_SECONDS
        daemon.wait_for_log(UNREACHABLE + r" .*counting in the local store")
    assert [local_count(path) for path in locals_] == [3, 3]
    assert [backend_up(url) for url in urls] == [0.0, 0.0]

    # Redis back (same port, empty). Each serving process of a daemon (milter.workers) keeps
    # its own down/up state and tries Redis again retry_seconds after its last failure: send
    # until every process that logged "unreachable" has logged "reachable again".
    private_redis.start()
    local_before = [local_count(path) for path in locals_]
    sent = 0
    for daemon in daemons:
        deadline = time.monotonic() + 20
        while daemon.log().count(REACHABLE) < daemon.log().count(UNREACHABLE):
            assert time.monotonic() < deadline, daemon.log()
            time.sleep(POLL_SECONDS)  # a poll inside the deadline until a retry is due
            result, seconds = send_timed(daemon)
            assert result == "accept" and seconds < SLOW_SECONDS
            sent += 1
    local_after = [local_count(path) for path in locals_]
    in_redis = redis_count(private_redis)
    assert in_redis >= len(daemons)  # at least each daemon's first message after the retry
    assert in_redis + sum(local_after) - sum(local_before) == sent  # each counted once
    assert [backend_up(url) for url in urls] == [1.0, 1.0]

    # Every process is counting in Redis again; the local stores no longer grow.
    for daemon in daemons:
        for _ in range(4):
            assert send_timed(daemon)[0] == "accept"
    assert redis_count(private_redis) == in_redis + 8
    assert [local_count(path) for path in locals_] == local_after
