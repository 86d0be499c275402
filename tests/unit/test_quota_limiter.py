"""Quotas in the engine: what is counted, what is refused, and what a store outage does.

The stores here are the in-memory one and a fake shared store whose outage a test switches
on and off (an unreachable Redis is tested for real in tests/contract and tests/daemon).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from menshen.composition import assemble
from menshen.config import Config, StoreFailure, parse_config
from menshen.engine import Engine
from menshen.model import Action, Envelope
from menshen.quota import Admission, Counter, MemoryStore, QuotaLimiter, QuotaStoreError

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CLEAN = (SAMPLES / "clean-chinese-business.eml").read_bytes()
KEYWORD = (SAMPLES / "kw-body-big5.eml").read_bytes()
NOW = 1_800_000_000.0  # 2027-01-15 08:00 UTC

QUOTAS = """
quotas:
  enabled: true
  timezone: Asia/Shanghai
  store: {type: memory}
  rules:
    - {name: per-day, key: sender, limit: 5, per: day}
"""


def config(text: str = QUOTAS) -> Config:
    return parse_config(text, "test.yml", base_dir=None)


def engine_over(limiter: QuotaLimiter, settings: Config, charge: bool = True) -> Engine:
    return assemble(settings, charge_quota=charge, limiter=limiter).engine


def limiter_for(settings: Config, store: object = None, fallback: object = None) -> QuotaLimiter:
    return QuotaLimiter(
        settings.quotas,
        store or MemoryStore(),  # type: ignore[arg-type]
        fallback,  # type: ignore[arg-type]
        logger=logging.getLogger("test.quota"),
        clock=lambda: NOW,
    )


def sender(address: str = "a@example.com", rcpts: int = 1) -> Envelope:
    return Envelope(
        sender=address,
        recipients=tuple(f"r{i}@example.net" for i in range(rcpts)),
        client_ip="192.0.2.9",
        queue_id="QID1",
    )


def used(limiter: QuotaLimiter, identity: str = "a@example.com") -> int:
    (row,) = limiter.report(identity)
    return row.used


def test_accepted_mail_is_counted_once_per_message() -> None:
    limiter = limiter_for(config())
    engine = engine_over(limiter, config())
    for _ in range(3):
        assert engine.evaluate(sender(), CLEAN).action is Action.ACCEPT
    assert used(limiter) == 3


def test_rejected_mail_is_not_counted() -> None:
    limiter = limiter_for(config())
    verdict = engine_over(limiter, config()).evaluate(sender(), KEYWORD)
    assert verdict.action is Action.REJECT
    assert used(limiter) == 0


def test_the_message_past_the_limit_is_tempfailed_with_a_clear_reply() -> None:
    limiter = limiter_for(config())
    engine = engine_over(limiter, config())
    for _ in range(5):
        engine.evaluate(sender(), CLEAN)
    verdict = engine.evaluate(sender(), CLEAN)
    assert verdict.action is Action.TEMPFAIL
    assert verdict.reply is not None
    assert (verdict.reply.code, verdict.reply.xcode) == ("451", "4.7.1")
    assert "quota per-day: 5 messages per day, resets 2027-01-16 00:00 +0800" in verdict.reply.text
    assert used(limiter) == 5  # the refused message was not charged
    assert engine.evaluate(sender("other@example.com"), CLEAN).action is Action.ACCEPT


def test_reject_instead_of_tempfail_when_configured() -> None:
    settings = config(QUOTAS.replace("enabled: true", "enabled: true\n  on_exceeded: reject"))
    engine = engine_over(limiter_for(settings), settings)
    for _ in range(5):
        engine.evaluate(sender(), CLEAN)
    verdict = engine.evaluate(sender(), CLEAN)
    assert verdict.action is Action.REJECT
    assert verdict.reply is not None and verdict.reply.code == "550"


def test_warning_level_adds_a_header_from_the_crossing_on() -> None:
    limiter = limiter_for(config())
    engine = engine_over(limiter, config())
    headers = [dict(engine.evaluate(sender(), CLEAN).headers) for _ in range(5)]
    assert [h.get("X-Menshen-Quota") for h in headers] == [
        None,
        None,
        None,
        "warning; per-day=4/5",
        "warning; per-day=5/5",
    ]


def test_recipient_quota_refuses_a_message_that_would_pass_it() -> None:
    settings = config(QUOTAS.replace("limit: 5, per: day", "limit: 5, per: day, count: recipients"))
    limiter = limiter_for(settings)
    engine = engine_over(limiter, settings)
    assert engine.evaluate(sender(rcpts=4), CLEAN).action is Action.ACCEPT
    assert engine.evaluate(sender(rcpts=2), CLEAN).action is Action.TEMPFAIL
    assert engine.evaluate(sender(rcpts=1), CLEAN).action is Action.ACCEPT
    assert used(limiter) == 5


def test_monitor_mode_counts_and_accepts_but_says_what_it_would_do() -> None:
    settings = config("mode: monitor\n" + QUOTAS)
    limiter = limiter_for(settings)
    engine = engine_over(limiter, settings)
    for _ in range(5):
        engine.evaluate(sender(), CLEAN)
    verdict = engine.evaluate(sender(), CLEAN)
    assert (verdict.action, verdict.monitored_action) == (Action.ACCEPT, Action.TEMPFAIL)
    assert used(limiter) == 5


def test_allow_lists_do_not_lift_a_quota() -> None:
    settings = config(QUOTAS + "lists:\n  allow:\n    senders: [a@example.com]\n")
    engine = engine_over(limiter_for(settings), settings)
    verdicts = [engine.evaluate(sender(), CLEAN).action for _ in range(6)]
    assert verdicts[-1] is Action.TEMPFAIL


def test_precheck_refuses_at_rcpt_only_once_the_quota_is_used_up() -> None:
    limiter = limiter_for(config())
    engine = engine_over(limiter, config())
    for _ in range(4):
        engine.evaluate(sender(), CLEAN)
    assert engine.quota_precheck(sender()) is None
    engine.evaluate(sender(), CLEAN)
    refusal = engine.quota_precheck(sender())
    assert refusal is not None and refusal.action is Action.TEMPFAIL
    assert used(limiter) == 5  # looking never counts


def test_check_mode_looks_but_never_counts() -> None:
    limiter = limiter_for(config())
    engine = engine_over(limiter, config(), charge=False)
    for _ in range(10):
        assert engine.evaluate(sender(), CLEAN).action is Action.ACCEPT
    assert used(limiter) == 0


def test_reset_clears_every_rule_of_an_identity() -> None:
    limiter = limiter_for(config())
    engine = engine_over(limiter, config())
    engine.evaluate(sender(), CLEAN)
    assert limiter.reset("a@example.com") == 1
    assert used(limiter) == 0


def test_report_names_the_rules_that_count_a_key() -> None:
    settings = config(
        QUOTAS.replace(
            "    - {name: per-day, key: sender, limit: 5, per: day}",
            "    - {name: per-day, key: sender, limit: 5, per: day}\n"
            "    - {name: by-domain, key: sender_domain, limit: 50, per: month}\n"
            "    - {name: by-ip, key: client_ip, limit: 9, per: hour, ipv4_prefix: 24}",
        )
    )
    limiter = limiter_for(settings)
    assert [r.rule for r in limiter.report("a@example.com")] == ["per-day"]
    assert [r.rule for r in limiter.report("example.com")] == ["by-domain"]
    assert [(r.rule, r.identity) for r in limiter.report("192.0.2.9")] == [
        ("by-ip", "192.0.2.0/24")
    ]


# --- the shared store goes away -------------------------------------------------------------


class FlakyStore(MemoryStore):
    """A shared store that an outage switch makes raise, as an unreachable Redis does."""

    name = "redis"

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def admit(self, counters: Sequence[Counter], now: float, charge: bool = True) -> Admission:
        if self.down:
            raise QuotaStoreError("redis: connection refused")
        return super().admit(counters, now, charge)


def shared(on_error: StoreFailure) -> tuple[Config, FlakyStore, MemoryStore, list[bool]]:
    settings = config()
    store_settings = replace(settings.quotas.store, on_error=on_error, retry_seconds=0.0)
    settings = replace(settings, quotas=replace(settings.quotas, store=store_settings))
    return settings, FlakyStore(), MemoryStore(), []


def test_store_down_counts_locally_and_says_so() -> None:
    settings, redis, local, states = shared(StoreFailure.LOCAL)
    limiter = QuotaLimiter(
        settings.quotas, redis, local, clock=lambda: NOW, on_backend=states.append
    )
    engine = engine_over(limiter, settings)
    engine.evaluate(sender(), CLEAN)
    redis.down = True
    verdict = engine.evaluate(sender(), CLEAN)
    assert verdict.action is Action.ACCEPT
    assert "QUOTA_DEGRADED" in {f.code for f in verdict.findings}
    redis.down = False
    engine.evaluate(sender(), CLEAN)
    assert states == [False, True]
    assert used(QuotaLimiter(settings.quotas, redis, clock=lambda: NOW)) == 2
    assert used(QuotaLimiter(settings.quotas, local, clock=lambda: NOW)) == 1


def test_store_down_keeps_enforcing_the_limit_locally() -> None:
    settings, redis, local, _ = shared(StoreFailure.LOCAL)
    engine = engine_over(QuotaLimiter(settings.quotas, redis, local, clock=lambda: NOW), settings)
    redis.down = True
    actions = [engine.evaluate(sender(), CLEAN).action for _ in range(6)]
    assert actions == [Action.ACCEPT] * 5 + [Action.TEMPFAIL]


@pytest.mark.parametrize(
    ("on_error", "expected"),
    [
        pytest.param(StoreFailure.TEMPFAIL, Action.TEMPFAIL, id="tempfail-when-configured"),
        pytest.param(StoreFailure.ACCEPT, Action.ACCEPT, id="accept-uncounted-when-configured"),
    ],
)
def test_store_down_other_choices(on_error: StoreFailure, expected: Action) -> None:
    settings, redis, local, _ = shared(on_error)
    engine = engine_over(QuotaLimiter(settings.quotas, redis, local, clock=lambda: NOW), settings)
    redis.down = True
    verdict = engine.evaluate(sender(), CLEAN)
    assert verdict.action is expected
    if expected is Action.TEMPFAIL:
        assert verdict.reply is not None and verdict.reply.code == "451"


def test_no_store_at_all_is_a_tempfail_never_an_accept() -> None:
    store = FlakyStore()
    store.down = True
    engine = engine_over(QuotaLimiter(config().quotas, store, None, clock=lambda: NOW), config())
    verdict = engine.evaluate(sender(), CLEAN)
    assert verdict.action is Action.TEMPFAIL
    assert "QUOTA_STORE_ERROR" in {f.code for f in verdict.findings}
