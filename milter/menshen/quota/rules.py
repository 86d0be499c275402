"""From a quota rule and an envelope to the counter a store keeps: pure arithmetic.

In:  a QuotaRule, the envelope (sender, SASL login, client address, recipients), the time
     (unix seconds) and the configured time zone.
Out: `identity_for` says whom a rule counts ("" when the rule does not apply: no SASL login
     for a sasl_user rule, the null sender when bounces are skipped, an exempt identity);
     `counters_for` gives one Counter per applicable rule: the store key, the current
     bucket, how many buckets the window sums, when the bucket may expire, the limit and
     what this message adds.
Windows: a calendar window (day, ISO week, month) is one bucket per period, numbered in the
     configured zone, so "per month" resets at local midnight on the 1st. A rolling window
     is summed over 60 buckets (at least a second each): "100 per minute" counts the last 60
     one-second buckets, "2000 per hour" the last 60 one-minute buckets.
Fails: never raises for any envelope. Thread safety: pure functions over frozen values.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

from menshen.config import CalendarPeriod, NullSender, QuotaCount, QuotaKey, QuotaRule, QuotaWindow
from menshen.model import Envelope

ROLLING_BUCKETS = 60
NULL_SENDER = "<>"
MAX_IDENTITY = 200  # longer identities are hashed, so a store key stays bounded
EXPIRY_GRACE = 86400.0  # a finished calendar period stays readable for a day


@dataclass(frozen=True, slots=True)
class Counter:
    """One rule's count for one identity, as a store keeps it."""

    rule: str
    identity: str
    key: str  # the store key, without the store's prefix
    bucket: int  # the current bucket
    buckets: int  # the window sums buckets bucket-buckets+1 .. bucket
    expires_at: float  # unix time after which the current bucket no longer counts
    limit: int | None  # None: unlimited (an override)
    amount: int  # what this message adds
    resets_at: float | None  # calendar windows: when the period ends

    @property
    def oldest(self) -> int:
        return self.bucket - self.buckets + 1


def identity_for(rule: QuotaRule, envelope: Envelope, null_sender: NullSender) -> str:
    """Whom `rule` counts for this envelope, or "" when it does not count this message."""
    sender = envelope.sender.strip().strip("<>").lower()
    identity = ""
    if rule.key is QuotaKey.CLIENT_IP:
        return _network(rule, envelope.client_ip)
    login = envelope.auth_user.strip().lower()
    if rule.key is QuotaKey.SASL_USER or (rule.key is QuotaKey.ACCOUNT and login):
        identity = login
    elif not sender:
        identity = NULL_SENDER if null_sender is NullSender.COUNT else ""
    elif rule.key is QuotaKey.SENDER_DOMAIN:
        identity = sender.rpartition("@")[2]
    else:
        identity = sender
    if identity in rule.exempt:
        return ""
    return identity


def _network(rule: QuotaRule, client_ip: str) -> str:
    try:
        address = ipaddress.ip_address(client_ip.strip().strip("[]").removeprefix("IPv6:"))
    except ValueError:
        return ""  # a local client without an address is not counted by address
    if rule.exempt_networks and any(address in network for network in rule.exempt_networks):
        return ""
    prefix = rule.ipv4_prefix if address.version == 4 else rule.ipv6_prefix
    if prefix == address.max_prefixlen:
        return str(address)
    # The network by masking the address's integer: building an ip_network per message
    # costs several times more, for the same text.
    host_bits = address.max_prefixlen - prefix
    base = ipaddress.ip_address((int(address) >> host_bits) << host_bits)
    return f"{base}/{prefix}"


def limit_for(rule: QuotaRule, identity: str) -> int | None:
    if identity in rule.overrides:
        return rule.overrides[identity]
    return rule.limit


def store_key(rule: QuotaRule, identity: str) -> str:
    if len(identity) > MAX_IDENTITY:
        identity = "sha256:" + hashlib.sha256(identity.encode("utf-8", "replace")).hexdigest()
    return f"{rule.name}:{identity}"


def counters_for(
    rules: Sequence[QuotaRule],
    envelope: Envelope,
    now: float,
    zone: tzinfo,
    null_sender: NullSender,
) -> tuple[Counter, ...]:
    """The counters this message touches, one per rule that applies to it."""
    found = []
    for rule in rules:
        identity = identity_for(rule, envelope, null_sender)
        if identity:
            amount = 1 if rule.count is QuotaCount.MESSAGES else max(1, len(envelope.recipients))
            found.append(counter(rule, identity, now, zone, amount))
    return tuple(found)


def counter(rule: QuotaRule, identity: str, now: float, zone: tzinfo, amount: int) -> Counter:
    bucket, buckets, expires_at, resets_at = position(rule.window, now, zone)
    return Counter(
        rule=rule.name,
        identity=identity,
        key=store_key(rule, identity),
        bucket=bucket,
        buckets=buckets,
        expires_at=expires_at,
        limit=limit_for(rule, identity),
        amount=amount,
        resets_at=resets_at,
    )


def bucket_seconds(window: QuotaWindow) -> int:
    return max(1, math.ceil(window.seconds / ROLLING_BUCKETS))


def position(window: QuotaWindow, now: float, zone: tzinfo) -> tuple[int, int, float, float | None]:
    """(current bucket, buckets summed, expiry of the current bucket, end of the period)."""
    if window.calendar is None:
        width = bucket_seconds(window)
        buckets = math.ceil(window.seconds / width)
        bucket = math.floor(now / width)
        return bucket, buckets, float((bucket + buckets) * width), None
    local = datetime.fromtimestamp(now, UTC).astimezone(zone)
    start, end, number = _period(window.calendar, local.date())
    ends_at = datetime(end.year, end.month, end.day, tzinfo=zone).timestamp()
    del start
    return number, 1, ends_at + EXPIRY_GRACE, ends_at


def _period(period: CalendarPeriod, day: date) -> tuple[date, date, int]:
    """First day, first day of the next period, and the period's number."""
    if period is CalendarPeriod.DAY:
        return day, day + timedelta(days=1), day.toordinal()
    if period is CalendarPeriod.WEEK:
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7), monday.toordinal()
    first = day.replace(day=1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following, first.year * 12 + first.month - 1
