"""Concurrent admissions: a store never admits past a limit, and the harness would see it if it did.

The harness releases N threads at once (threading.Barrier) against one counter and counts
the admissions; over-admission is admitted minus the limit. Covered:
- 64 threads, limit 20, one `admit` each, on RedisStore (the fleet store; the session's
  real redis-server), and on SqliteStore and MemoryStore too: exactly 20 admitted, over-
  admission exactly 0, the store's count 20; repeated over several rounds;
- the harness's own check: a deliberately racy limiter in the same harness (check with
  `usage`, then charge with an unlimited `admit`: two round trips, a second barrier
  between them) over-admits, and the harness measures exactly how much (44 of 64).
The same property through two real `menshen serve` daemons sharing Redis is tested in
tests/daemon/test_quota_daemons.py (it needs the daemon fixtures).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pytest
from redis_rig import RedisServer

from menshen.config import CalendarPeriod, QuotaCount, QuotaKey, QuotaRule, QuotaWindow
from menshen.quota import Counter, MemoryStore, QuotaStore
from menshen.quota.redis_store import RedisStore
from menshen.quota.rules import counter
from menshen.quota.sqlite_store import SqliteStore

THREADS = 64
LIMIT = 20
ROUNDS = 5
NOW = 4_053_628_800.0  # 2098-06-15: Redis keys must expire in the future of its clock
# Generous for a shared 2-core machine: 64 connections are opened at once. A timeout would
# fail the test with QuotaStoreError, never pass it.
REDIS_TIMEOUT = 5.0

RULE = QuotaRule(
    name="burst",
    key=QuotaKey.SENDER,
    count=QuotaCount.MESSAGES,
    limit=LIMIT,
    window=QuotaWindow(calendar=CalendarPeriod.DAY),
    warn_at=None,
)


def burst_counter(identity: str) -> Counter:
    return counter(RULE, identity, NOW, UTC, 1)


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.integration), "sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QuotaStore]:
    made: QuotaStore
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("fresh_redis")
        made = RedisStore(server.url, REDIS_TIMEOUT, "menshen:quota:concurrency:")
    elif request.param == "sqlite":
        made = SqliteStore(tmp_path / "quotas.sqlite3")
    else:
        made = MemoryStore()
    try:
        yield made
    finally:
        made.close()


def run_together(threads: int, work: Callable[[threading.Barrier], bool]) -> list[bool]:
    """Run `work` in `threads` threads released together; each returns whether it was admitted.

    `work` gets a barrier of `threads` parties to wait on once more (the racy variant's
    second step); the first wait, before `work`, is the harness's own.
    """
    start = threading.Barrier(threads, timeout=60)
    step = threading.Barrier(threads, timeout=60)

    def run() -> bool:
        start.wait()
        return work(step)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(run) for _ in range(threads)]
        return [future.result() for future in futures]


def over_admission(results: list[bool], limit: int) -> int:
    return sum(results) - limit


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_64_simultaneous_admissions_admit_exactly_the_limit(
    store: QuotaStore, round_number: int
) -> None:
    item = burst_counter(f"sender{round_number}@example.com")

    def atomic(_step: threading.Barrier) -> bool:
        return store.admit([item], NOW).admitted

    results = run_together(THREADS, atomic)
    assert over_admission(results, LIMIT) == 0
    assert sum(results) == LIMIT
    assert store.usage([item], NOW) == (LIMIT,)


def test_the_harness_sees_a_check_then_charge_limiter_over_admit(store: QuotaStore) -> None:
    item = burst_counter("racy@example.com")
    uncapped = replace(item, limit=None)

    def check_then_charge(step: threading.Barrier) -> bool:
        (used,) = store.usage([item], NOW)  # round trip 1: check
        step.wait()  # every thread has checked before any charges
        if used >= LIMIT:
            return False
        return store.admit([uncapped], NOW).admitted  # round trip 2: charge

    results = run_together(THREADS, check_then_charge)
    assert over_admission(results, LIMIT) == THREADS - LIMIT  # > 0: the race is visible
    assert store.usage([item], NOW) == (THREADS,)
