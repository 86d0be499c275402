"""One contract for every quota store: MemoryStore, SqliteStore and RedisStore answer alike.

The `store` fixture runs each contract test against all three (Redis is the session's real
redis-server, flushed before each test; SQLite a file in the test's temp dir). The clock is
the `now` argument: every instant is written out, nothing waits for time to pass.
Covered by the contract:
- rolling windows: "100 per minute" refuses the 101st until the first bucket leaves the
  window, then admits again; other widths (hour, 90s, 7d) at their exact edges;
- calendar windows in UTC, Asia/Shanghai and a DST day in America/New_York: day, ISO week
  (across a new year) and month (31 days, February) end at local midnight, the usage resets
  and the counter's `resets_at` names that midnight;
- several counters per message: all charged or none (the refusing counter's index, the
  others untouched), and the refusal reports each counter's usage before the charge;
- amount > 1 (recipient counts): exactly at the limit is admitted, one past is refused;
- unlimited (an override of None) and limit 0;
- `charge=False` never changes a count and answers what the charge would;
- reset clears only the keys named, returns how many held counts (0 for unknown keys);
- old buckets stop counting once their window has passed.
Store-specific: Redis writes no key without a TTL and each TTL reaches past the end of the
bucket's window or calendar period, drops buckets that left the window, survives a restart
and a flushed script cache, and fails fast with QuotaStoreError when unreachable; SQLite
counts survive closing and reopening the file, expired rows are swept, a bad path or a
corrupt file is QuotaStoreError, and two OS processes of N threads each admit exactly the
limit between them.

Instants are in 2098 on purpose: Redis expires keys on its own clock (PEXPIREAT), so a
counter dated in the past would be deleted as soon as it is written.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import socket
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest
import redis
from quota_workers import SHARED_NOW, SHARED_SENDER, admit_in_threads, shared_rule
from redis_rig import RedisServer

from menshen.config import CalendarPeriod, QuotaCount, QuotaKey, QuotaRule, QuotaWindow
from menshen.quota import Admission, Counter, MemoryStore, QuotaStore, QuotaStoreError
from menshen.quota.redis_store import RedisStore
from menshen.quota.rules import bucket_seconds, counter
from menshen.quota.sqlite_store import SWEEP_EVERY, SqliteStore

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
PREFIX = "menshen:quota:test:"
SENDER = "alice@example.com"
OTHER = "bob@example.com"
BASE = datetime(2098, 6, 15, tzinfo=UTC).timestamp()  # rolling windows start near here


def at(instant: str) -> float:
    """Unix time of an ISO 8601 instant such as 2098-12-31T15:59:59Z."""
    return datetime.fromisoformat(instant).timestamp()


def rolling(limit: int, seconds: int, name: str = "rolling") -> QuotaRule:
    return QuotaRule(
        name=name,
        key=QuotaKey.SENDER,
        count=QuotaCount.MESSAGES,
        limit=limit,
        window=QuotaWindow(seconds=seconds),
        warn_at=None,
    )


def calendar(limit: int, period: CalendarPeriod, name: str = "calendar") -> QuotaRule:
    return QuotaRule(
        name=name,
        key=QuotaKey.SENDER,
        count=QuotaCount.MESSAGES,
        limit=limit,
        window=QuotaWindow(calendar=period),
        warn_at=None,
    )


def one(
    rule: QuotaRule,
    now: float,
    identity: str = SENDER,
    amount: int = 1,
    zone: tzinfo = UTC,
) -> Counter:
    return counter(rule, identity, now, zone, amount)


def admit_each(store: QuotaStore, counters: Sequence[Counter], now: float, times: int) -> int:
    """Admit the same message `times` times; how many were admitted."""
    return sum(store.admit(counters, now).admitted for _ in range(times))


# --- the stores under contract -------------------------------------------------------------


real_redis = pytest.mark.integration  # needs the real redis-server the tests start


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=real_redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QuotaStore]:
    made: QuotaStore
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SqliteStore(tmp_path / "state" / "quotas.sqlite3")
    else:
        server: RedisServer = request.getfixturevalue("fresh_redis")
        made = RedisStore(server.url, 0.5, PREFIX)
    try:
        yield made
    finally:
        made.close()


# --- rolling windows -------------------------------------------------------------------------


def test_101st_message_per_minute_waits_until_the_first_bucket_leaves_the_window(
    store: QuotaStore,
) -> None:
    rule = rolling(100, 60)
    start = BASE  # a whole second: bucket boundaries fall on whole seconds

    def admit(offset: float, times: int = 1) -> int:
        return admit_each(store, [one(rule, start + offset)], start + offset, times)

    assert admit(0.25, 60) == 60  # bucket 0
    assert admit(30.5, 40) == 40  # bucket 30: 100 in the window
    assert admit(59.0) == 0
    assert admit(59.999) == 0  # bucket 59: buckets 0..59 still summed
    assert admit(60.0) == 1  # bucket 60: bucket 0 (60 messages) has left the window
    assert store.usage([one(rule, start + 60.0)], start + 60.0) == (41,)
    assert admit(60.5, 60) == 59  # back at the limit: 40 + 1 + 59
    assert admit(89.999) == 0  # bucket 89 sums 30..89: bucket 30 (40) is still in
    assert admit(90.0, 50) == 40  # bucket 90 sums 31..90: bucket 30 has gone
    assert store.usage([one(rule, start + 90.0)], start + 90.0) == (100,)


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(60, id="minute-1s-buckets"),
        pytest.param(90, id="90s-2s-buckets"),
        pytest.param(3600, id="hour-1m-buckets"),
        pytest.param(7 * 86400, id="7d-168m-buckets"),
    ],
)
def test_rolling_window_counts_for_exactly_its_length_from_the_first_bucket(
    store: QuotaStore, seconds: int
) -> None:
    rule = rolling(5, seconds)
    width = bucket_seconds(rule.window)
    start = math.ceil(BASE / width) * width  # the first instant of a bucket
    assert admit_each(store, [one(rule, start)], start, 6) == 5
    last = start + seconds - 0.001
    assert store.usage([one(rule, last)], last) == (5,)
    assert not store.admit([one(rule, last)], last).admitted
    edge = start + seconds
    assert store.usage([one(rule, edge)], edge) == (0,)
    assert store.admit([one(rule, edge)], edge) == Admission(True, (1,))


def test_counts_older_than_the_window_no_longer_count(store: QuotaStore) -> None:
    minute = rolling(3, 60, name="minute")
    day = calendar(3, CalendarPeriod.DAY, name="day")
    assert admit_each(store, [one(minute, BASE), one(day, BASE)], BASE, 3) == 3
    later = BASE + 3 * 86400
    assert store.usage([one(minute, later), one(day, later)], later) == (0, 0)
    assert admit_each(store, [one(minute, later), one(day, later)], later, 4) == 3


# --- calendar windows ------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    period: CalendarPeriod
    zone: tzinfo
    first: str  # the first instant of the period
    last: str  # its last second
    following: str  # the first instant of the next period


CALENDAR_CASES = [
    pytest.param(
        Period(CalendarPeriod.DAY, UTC, "2098-06-15T00:00:00Z", "2098-06-15T23:59:59Z",
               "2098-06-16T00:00:00Z"),
        id="day-utc",
    ),
    pytest.param(
        Period(CalendarPeriod.DAY, SHANGHAI, "2098-06-14T16:00:00Z", "2098-06-15T15:59:59Z",
               "2098-06-15T16:00:00Z"),
        id="day-shanghai-midnight-is-16z",
    ),
    pytest.param(
        Period(CalendarPeriod.DAY, NEW_YORK, "2098-03-09T05:00:00Z", "2098-03-10T03:59:59Z",
               "2098-03-10T04:00:00Z"),
        id="day-new-york-23h-dst-day",
    ),
    pytest.param(
        # ISO week 1 of 2099: Monday 2098-12-29 to Sunday 2099-01-04, across the new year.
        Period(CalendarPeriod.WEEK, UTC, "2098-12-29T00:00:00Z", "2099-01-04T23:59:59Z",
               "2099-01-05T00:00:00Z"),
        id="iso-week-utc-across-new-year",
    ),
    pytest.param(
        Period(CalendarPeriod.WEEK, SHANGHAI, "2098-12-28T16:00:00Z", "2099-01-04T15:59:59Z",
               "2099-01-04T16:00:00Z"),
        id="iso-week-shanghai-monday-starts-sunday-16z",
    ),
    pytest.param(
        Period(CalendarPeriod.MONTH, UTC, "2098-12-01T00:00:00Z", "2098-12-31T23:59:59Z",
               "2099-01-01T00:00:00Z"),
        id="month-utc-december",
    ),
    pytest.param(
        # 16:00Z on New Year's Eve is local midnight in Shanghai, but still December in UTC.
        Period(CalendarPeriod.MONTH, UTC, "2098-12-01T00:00:00Z", "2098-12-31T16:00:00Z",
               "2099-01-01T00:00:00Z"),
        id="month-utc-still-december-at-shanghai-midnight",
    ),
    pytest.param(
        Period(CalendarPeriod.MONTH, SHANGHAI, "2098-11-30T16:00:00Z", "2098-12-31T15:59:59Z",
               "2098-12-31T16:00:00Z"),
        id="month-shanghai-new-year-at-16z",
    ),
    pytest.param(
        Period(CalendarPeriod.MONTH, SHANGHAI, "2098-01-31T16:00:00Z", "2098-02-28T15:59:59Z",
               "2098-02-28T16:00:00Z"),
        id="month-shanghai-february-28-days",
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", CALENDAR_CASES)
def test_calendar_window_resets_at_local_midnight(store: QuotaStore, case: Period) -> None:
    rule = calendar(2, case.period)
    first, last, following = at(case.first), at(case.last), at(case.following)

    def admit(now: float) -> Admission:
        return store.admit([one(rule, now, zone=case.zone)], now)

    before = first - 1
    assert admit(before) == Admission(True, (1,))  # the previous period: counted apart
    assert admit(first) == Admission(True, (1,))
    assert admit(last) == Admission(True, (2,))
    assert admit(last) == Admission(False, (2,), 0)
    assert one(rule, last, zone=case.zone).resets_at == following
    assert admit(following) == Admission(True, (1,))
    assert store.usage([one(rule, following, zone=case.zone)], following) == (1,)


# --- several counters, amounts, limits ---------------------------------------------------------


def test_a_message_is_charged_to_every_counter_or_to_none(store: QuotaStore) -> None:
    minute = rolling(10, 60, name="minute")
    day = calendar(3, CalendarPeriod.DAY, name="day")
    both = [one(minute, BASE), one(day, BASE)]
    assert store.admit(both, BASE) == Admission(True, (1, 1))
    assert admit_each(store, [one(day, BASE)], BASE, 2) == 2  # the day counter is full

    refused = store.admit(both, BASE)
    assert (refused.admitted, refused.refused) == (False, 1)
    assert store.usage(both, BASE) == (1, 3)  # the minute counter was not charged either

    swapped = store.admit(list(reversed(both)), BASE)
    assert (swapped.admitted, swapped.refused) == (False, 0)
    assert store.usage(both, BASE) == (1, 3)

    others = [one(minute, BASE, identity=OTHER), one(day, BASE, identity=OTHER)]
    assert store.admit(others, BASE) == Admission(True, (1, 1))
    assert store.usage(both, BASE) == (1, 3)  # another sender's counters are apart


def test_a_refusal_reports_each_counters_usage_before_the_charge(store: QuotaStore) -> None:
    """Admission.usage: "after the charge when admitted, before otherwise" -- every counter."""
    day = calendar(3, CalendarPeriod.DAY, name="day")
    minute = rolling(10, 60, name="minute")
    assert admit_each(store, [one(day, BASE)], BASE, 3) == 3
    assert admit_each(store, [one(minute, BASE)], BASE, 5) == 5
    assert store.admit([one(day, BASE), one(minute, BASE)], BASE) == Admission(False, (3, 5), 0)


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        pytest.param([4, 4, 2], [(True, 4), (True, 8), (True, 10)], id="exactly-at-the-limit"),
        pytest.param([4, 4, 4, 2], [(True, 4), (True, 8), (False, 8), (True, 10)],
                     id="one-past-refused-smaller-fits"),
        pytest.param([11, 10], [(False, 0), (True, 10)], id="larger-than-the-limit-alone"),
        pytest.param([10, 1], [(True, 10), (False, 10)], id="full-then-one-more"),
    ],
)  # fmt: skip
def test_recipient_counts_charge_their_amount(
    store: QuotaStore, amounts: list[int], expected: list[tuple[bool, int]]
) -> None:
    rule = replace(rolling(10, 3600), count=QuotaCount.RECIPIENTS)
    got = []
    for amount in amounts:
        admission = store.admit([one(rule, BASE, amount=amount)], BASE)
        got.append((admission.admitted, admission.usage[0]))
    assert got == expected


def test_an_unlimited_override_is_counted_but_never_refused(store: QuotaStore) -> None:
    rule = replace(
        calendar(1, CalendarPeriod.MONTH), overrides=MappingProxyType({"vip@example.com": None})
    )
    vip = one(rule, BASE, identity="vip@example.com", amount=1_000_000)
    assert vip.limit is None
    assert admit_each(store, [vip], BASE, 3) == 3
    assert store.usage([vip], BASE) == (3_000_000,)
    assert store.admit([one(rule, BASE)], BASE).admitted
    assert not store.admit([one(rule, BASE)], BASE).admitted  # the rule's own limit: 1


def test_a_limit_of_zero_refuses_everything(store: QuotaStore) -> None:
    rule = calendar(0, CalendarPeriod.DAY)
    assert store.admit([one(rule, BASE)], BASE) == Admission(False, (0,), 0)
    assert store.usage([one(rule, BASE)], BASE) == (0,)


# --- looking without charging ----------------------------------------------------------------


def test_charge_false_never_changes_a_count(store: QuotaStore) -> None:
    rule = rolling(3, 60)
    for _ in range(5):
        store.admit([one(rule, BASE)], BASE, charge=False)
    assert store.usage([one(rule, BASE)], BASE) == (0,)
    assert admit_each(store, [one(rule, BASE)], BASE, 3) == 3
    refused = store.admit([one(rule, BASE)], BASE, charge=False)
    assert (refused.admitted, refused.refused) == (False, 0)
    assert store.usage([one(rule, BASE)], BASE) == (3,)


def test_charge_false_answers_what_the_charge_would(store: QuotaStore) -> None:
    """A look (the RCPT precheck) gives the same Admission the real charge then gives."""
    rule = rolling(3, 60)
    for _ in range(4):
        looked = store.admit([one(rule, BASE)], BASE, charge=False)
        charged = store.admit([one(rule, BASE)], BASE)
        assert looked == charged


def test_usage_of_nothing_yet_counted_is_zero(store: QuotaStore) -> None:
    counters = [one(rolling(3, 60), BASE), one(calendar(3, CalendarPeriod.WEEK), BASE)]
    assert store.usage(counters, BASE) == (0, 0)
    assert store.usage([], BASE) == ()


# --- reset -------------------------------------------------------------------------------------


def test_reset_clears_only_the_keys_named(store: QuotaStore) -> None:
    rule = calendar(3, CalendarPeriod.DAY)
    mine, theirs = one(rule, BASE), one(rule, BASE, identity=OTHER)
    assert admit_each(store, [mine], BASE, 4) == 3
    assert admit_each(store, [theirs], BASE, 2) == 2
    assert store.reset([mine.key]) == 1
    assert store.usage([mine, theirs], BASE) == (0, 2)
    assert admit_each(store, [mine], BASE, 4) == 3  # the full limit again
    assert store.reset([mine.key, theirs.key, "calendar:nobody@example.com"]) == 2
    assert store.usage([mine, theirs], BASE) == (0, 0)


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param([], id="no-keys"),
        pytest.param(["calendar:nobody@example.com"], id="unknown-key"),
        pytest.param(["a:x", "b:y", "c:z"], id="several-unknown-keys"),
    ],
)
def test_reset_of_keys_without_counts_returns_zero(store: QuotaStore, keys: list[str]) -> None:
    assert store.reset(keys) == 0


# --- Redis only ----------------------------------------------------------------------------------


def redis_client(server: RedisServer) -> redis.Redis:
    return redis.Redis.from_url(server.url, socket_timeout=5.0, decode_responses=True)


@pytest.fixture
def redis_db(fresh_redis: RedisServer) -> Iterator[redis.Redis]:
    client = redis_client(fresh_redis)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_store(fresh_redis: RedisServer) -> Iterator[RedisStore]:
    made = RedisStore(fresh_redis.url, 0.5, PREFIX)
    try:
        yield made
    finally:
        made.close()


def scan_keys(client: redis.Redis) -> set[str]:
    return set(client.scan_iter(match=PREFIX + "*", count=1000))


@real_redis
def test_redis_gives_every_key_a_ttl_reaching_past_its_window(
    redis_store: RedisStore, redis_db: redis.Redis
) -> None:
    now = time.time()  # Redis expires keys on its own clock: this test uses the real one
    rules = [
        rolling(100, 60, name="minute"),
        rolling(100, 90, name="ninety"),
        rolling(100, 3600, name="hour"),
        rolling(100, 7 * 86400, name="week-rolling"),
        calendar(100, CalendarPeriod.DAY, name="day"),
        calendar(100, CalendarPeriod.WEEK, name="week"),
        calendar(100, CalendarPeriod.MONTH, name="month"),
    ]
    counters = [one(rule, now, zone=SHANGHAI, amount=2) for rule in rules]
    assert redis_store.admit(counters, now).admitted
    full = calendar(0, CalendarPeriod.DAY, name="full")
    assert not redis_store.admit([one(full, now), one(rules[0], now, identity=OTHER)], now).admitted
    redis_store.admit([one(rules[1], now, identity=OTHER)], now, charge=False)
    redis_store.usage([one(rules[2], now, identity=OTHER)], now)

    keys = scan_keys(redis_db)
    assert keys == {PREFIX + c.key for c in counters}  # refusals and looks write nothing
    for item in counters:
        key = PREFIX + item.key
        assert redis_db.pttl(key) > 0, key
        expires_ms = redis_db.pexpiretime(key)
        assert expires_ms == math.ceil(item.expires_at * 1000), key
        if item.resets_at is not None:  # calendar: readable past the end of the period
            assert expires_ms > item.resets_at * 1000, key
        else:  # rolling: kept until the charged bucket has left the window
            rule = next(r for r in rules if r.name == item.rule)
            width = bucket_seconds(rule.window)
            assert expires_ms >= (item.bucket + item.buckets) * width * 1000, key
            assert expires_ms >= (now + rule.window.seconds - width) * 1000, key


@real_redis
def test_redis_drops_buckets_that_left_the_window(
    redis_store: RedisStore, redis_db: redis.Redis
) -> None:
    rule = rolling(1000, 60)
    for offset in range(0, 30, 3):
        assert redis_store.admit([one(rule, BASE + offset)], BASE + offset).admitted
    key = PREFIX + one(rule, BASE).key
    assert redis_db.hlen(key) == 10
    later = BASE + 74  # sums buckets 15..74: those of offsets 0..12 have left
    assert redis_store.usage([one(rule, later)], later) == (5,)
    assert redis_db.hlen(key) == 5
    assert redis_db.pttl(key) > 0


@real_redis
def test_redis_store_survives_a_restart_and_a_flushed_script_cache(
    private_redis: RedisServer,
) -> None:
    store = RedisStore(private_redis.url, 0.5, PREFIX)
    rule = calendar(5, CalendarPeriod.DAY)
    try:
        assert store.admit([one(rule, BASE)], BASE).admitted
        private_redis.stop()
        with pytest.raises(QuotaStoreError, match="redis"):
            store.admit([one(rule, BASE)], BASE)
        assert not store.ping()
        private_redis.start()  # same port, empty (no persistence), no script loaded
        assert store.admit([one(rule, BASE)], BASE) == Admission(True, (1,))
        client = redis_client(private_redis)
        try:
            client.script_flush()
        finally:
            client.close()
        assert store.admit([one(rule, BASE)], BASE) == Admission(True, (2,))
        assert store.ping()
    finally:
        store.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung Redis)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again: connections are refused


@pytest.mark.parametrize("which", ["closed_port", "silent_port"])
def test_unreachable_redis_is_a_quota_store_error_within_the_timeout(
    request: pytest.FixtureRequest, which: str
) -> None:
    port: int = request.getfixturevalue(which)
    timeout = 0.3
    store = RedisStore(f"redis://127.0.0.1:{port}/0", timeout, PREFIX)
    rule = calendar(5, CalendarPeriod.DAY)
    try:
        for call in (
            lambda: store.admit([one(rule, BASE)], BASE),
            lambda: store.usage([one(rule, BASE)], BASE),
            lambda: store.reset(["calendar:" + SENDER]),
        ):
            began = time.monotonic()
            with pytest.raises(QuotaStoreError, match="redis"):
                call()
            # One connect or read timeout, not a client-side retry loop.
            assert time.monotonic() - began < 3 * timeout + 0.5
    finally:
        store.close()


# --- SQLite only ---------------------------------------------------------------------------------


def test_sqlite_counts_survive_closing_and_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "quotas.sqlite3"
    rule = calendar(5, CalendarPeriod.MONTH)
    first = SqliteStore(path)
    first.open()
    assert path.is_file()
    assert admit_each(first, [one(rule, BASE)], BASE, 3) == 3
    first.close()
    again = SqliteStore(path)
    try:
        assert again.usage([one(rule, BASE)], BASE) == (3,)
        assert admit_each(again, [one(rule, BASE)], BASE, 5) == 2
    finally:
        again.close()


def test_sqlite_sweeps_expired_rows(tmp_path: Path) -> None:
    path = tmp_path / "quotas.sqlite3"
    store = SqliteStore(path)
    old = rolling(10, 60, name="old")
    busy = rolling(10**6, 60, name="busy")
    try:
        assert store.admit([one(old, BASE)], BASE).admitted
        later = BASE + 3600  # `old`'s bucket expired at BASE + 60
        for _ in range(SWEEP_EVERY - 1):  # the 1000th admission sweeps
            assert store.admit([one(busy, later)], later).admitted
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        keys = {row[0] for row in db.execute("SELECT key FROM quota_buckets")}
    assert keys == {one(busy, later).key}


def test_sqlite_bad_path_or_corrupt_file_is_a_quota_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(QuotaStoreError):
        SqliteStore(tmp_path / "a-file" / "quotas.sqlite3").open()
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not an SQLite database, " * 64)
    store = SqliteStore(corrupt)
    with pytest.raises(QuotaStoreError, match=r"corrupt\.sqlite3"):
        store.admit([one(rolling(5, 60), BASE)], BASE)
    store.close()


PROCESS_THREADS = 8
PROCESS_ATTEMPTS = 40  # per thread: 2 x 8 x 40 = 640 attempts for a limit of 200
PROCESS_LIMIT = 200


def test_sqlite_two_processes_admit_exactly_the_limit_between_them(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    SqliteStore(path).open()  # created once, as the daemon does at start
    # spawn: a child shares no lock or connection with this (maybe multi-threaded) process.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    results = context.Queue()
    processes = [
        context.Process(
            target=admit_in_threads,
            args=(str(path), PROCESS_THREADS, PROCESS_ATTEMPTS, PROCESS_LIMIT, start, results),
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(30)
    assert [process.exitcode for process in processes] == [0, 0]
    assert [error for _, found in outcomes for error in found] == []
    per_process = [admitted for admitted, _ in outcomes]
    assert sum(per_process) == PROCESS_LIMIT, per_process
    store = SqliteStore(path)
    try:
        item = counter(shared_rule(PROCESS_LIMIT), SHARED_SENDER, SHARED_NOW, UTC, 1)
        assert store.usage([item], SHARED_NOW) == (PROCESS_LIMIT,)
    finally:
        store.close()
