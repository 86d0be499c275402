"""Quota rules: whom a rule counts, and which bucket of which window a moment falls in."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menshen.config import (
    CalendarPeriod,
    NullSender,
    QuotaCount,
    QuotaKey,
    QuotaRule,
    QuotaWindow,
)
from menshen.model import Envelope
from menshen.quota.rules import bucket_seconds, counters_for, identity_for, position, store_key

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = QuotaWindow(calendar=CalendarPeriod.DAY)
MONTH = QuotaWindow(calendar=CalendarPeriod.MONTH)
WEEK = QuotaWindow(calendar=CalendarPeriod.WEEK)


def rule(key: QuotaKey, **changes: object) -> QuotaRule:
    values: dict[str, object] = {
        "name": "r",
        "key": key,
        "count": QuotaCount.MESSAGES,
        "limit": 10,
        "window": DAY,
        "warn_at": 0.8,
    }
    values.update(changes)
    return QuotaRule(**values)  # type: ignore[arg-type]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


AUTHED = Envelope(
    client_ip="192.0.2.77", sender="Alice@Example.COM", auth_user="Alice", recipients=("x@y",)
)
PLAIN = Envelope(client_ip="2001:db8:1:2::99", sender="bob@example.net", recipients=("x@y",))
BOUNCE = Envelope(client_ip="192.0.2.1", sender="", recipients=("x@y",))


@pytest.mark.parametrize(
    ("key", "envelope", "expected"),
    [
        pytest.param(QuotaKey.ACCOUNT, AUTHED, "alice", id="account-is-the-login-when-authed"),
        pytest.param(QuotaKey.ACCOUNT, PLAIN, "bob@example.net", id="account-else-the-sender"),
        pytest.param(QuotaKey.SASL_USER, AUTHED, "alice", id="sasl-user"),
        pytest.param(QuotaKey.SASL_USER, PLAIN, "", id="sasl-user-skips-unauthenticated"),
        pytest.param(QuotaKey.SENDER, AUTHED, "alice@example.com", id="sender-without-case"),
        pytest.param(QuotaKey.SENDER_DOMAIN, AUTHED, "example.com", id="sender-domain"),
        pytest.param(QuotaKey.CLIENT_IP, AUTHED, "192.0.2.77", id="ipv4-whole-address"),
        pytest.param(QuotaKey.CLIENT_IP, PLAIN, "2001:db8:1:2::/64", id="ipv6-per-64"),
        pytest.param(QuotaKey.SENDER, BOUNCE, "", id="null-sender-skipped"),
        pytest.param(QuotaKey.SENDER_DOMAIN, BOUNCE, "", id="null-sender-domain-skipped"),
        pytest.param(QuotaKey.CLIENT_IP, BOUNCE, "192.0.2.1", id="bounces-count-by-address"),
        pytest.param(QuotaKey.CLIENT_IP, Envelope(), "", id="local-client-has-no-address"),
    ],
)
def test_identity_for_each_key(key: QuotaKey, envelope: Envelope, expected: str) -> None:
    assert identity_for(rule(key), envelope, NullSender.SKIP) == expected


def test_null_sender_can_be_counted_under_one_identity() -> None:
    assert identity_for(rule(QuotaKey.SENDER), BOUNCE, NullSender.COUNT) == "<>"


def test_ipv4_prefix_groups_a_network() -> None:
    grouped = rule(QuotaKey.CLIENT_IP, ipv4_prefix=24)
    assert identity_for(grouped, AUTHED, NullSender.SKIP) == "192.0.2.0/24"


def test_exempt_identities_and_networks_are_not_counted() -> None:
    by_sender = rule(QuotaKey.SENDER, exempt=frozenset({"alice@example.com"}))
    assert identity_for(by_sender, AUTHED, NullSender.SKIP) == ""
    by_ip = rule(QuotaKey.CLIENT_IP, exempt_networks=(ipaddress.ip_network("192.0.2.0/24"),))
    assert identity_for(by_ip, AUTHED, NullSender.SKIP) == ""


def test_overrides_set_an_identity_s_own_limit() -> None:
    special = rule(
        QuotaKey.SENDER,
        overrides=MappingProxyType({"alice@example.com": 99, "bob@example.net": None}),
    )
    (alice,) = counters_for([special], AUTHED, 0.0, UTC, NullSender.SKIP)
    (bob,) = counters_for([special], PLAIN, 0.0, UTC, NullSender.SKIP)
    assert (alice.limit, bob.limit) == (99, None)


def test_recipient_rules_charge_one_per_recipient() -> None:
    per_rcpt = rule(QuotaKey.SENDER, count=QuotaCount.RECIPIENTS)
    envelope = Envelope(sender="a@b.c", recipients=("1@x", "2@x", "3@x"))
    (item,) = counters_for([per_rcpt], envelope, 0.0, UTC, NullSender.SKIP)
    assert item.amount == 3


def test_a_huge_identity_gives_a_bounded_key() -> None:
    key = store_key(rule(QuotaKey.SENDER), "a" * 5000 + "@example.com")
    assert len(key) < 100 and key.startswith("r:sha256:")


@pytest.mark.parametrize(
    ("window", "zone", "before", "after"),
    [
        pytest.param(
            MONTH,
            SHANGHAI,
            "2026-12-31T15:59:59+00:00",
            "2026-12-31T16:00:00+00:00",
            id="month-turns-at-shanghai-midnight",
        ),
        pytest.param(
            MONTH,
            UTC,
            "2026-12-31T23:59:59+00:00",
            "2027-01-01T00:00:00+00:00",
            id="month-turns-at-utc-midnight",
        ),
        pytest.param(
            DAY,
            SHANGHAI,
            "2026-06-01T15:59:59+00:00",
            "2026-06-01T16:00:00+00:00",
            id="day-turns-at-shanghai-midnight",
        ),
        pytest.param(
            WEEK,
            UTC,
            "2026-12-06T23:59:59+00:00",
            "2026-12-07T00:00:00+00:00",
            id="iso-week-turns-sunday-to-monday",
        ),
    ],
)
def test_calendar_windows_turn_at_local_midnight(
    window: QuotaWindow, zone: ZoneInfo, before: str, after: str
) -> None:
    first, _, _, resets = position(window, ts(before), zone)
    second, _, _, _ = position(window, ts(after), zone)
    step = 7 if window is WEEK else 1  # weeks are numbered by their Monday's ordinal
    assert second == first + step
    assert resets == ts(after)


def test_calendar_bucket_stays_within_its_period() -> None:
    december = position(MONTH, ts("2026-12-01T00:00:00+08:00"), SHANGHAI)[0]
    assert position(MONTH, ts("2026-12-31T23:59:59+08:00"), SHANGHAI)[0] == december


def test_rolling_minute_sums_sixty_one_second_buckets() -> None:
    bucket, buckets, expires, resets = position(QuotaWindow(seconds=60), 1000.5, UTC)
    assert (bucket, buckets, expires, resets) == (1000, 60, 1060.0, None)


def test_rolling_hour_uses_one_minute_buckets() -> None:
    bucket, buckets, _, _ = position(QuotaWindow(seconds=3600), 7200.0, UTC)
    assert (bucket, buckets) == (120, 60)


@given(st.floats(min_value=0, max_value=4e9), st.integers(min_value=1, max_value=30 * 86400))
def test_a_rolling_bucket_expires_only_after_it_left_the_window(now: float, seconds: int) -> None:
    window = QuotaWindow(seconds=seconds)
    _, _, expires, _ = position(window, now, UTC)
    assert expires > now
    # A bucket counts for the whole window, less the part of its own step already gone.
    assert expires - now >= seconds - bucket_seconds(window) - 1e-6
