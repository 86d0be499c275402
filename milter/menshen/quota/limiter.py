"""The quota limiter: the envelope in, quota findings out, the store behind it.

In:  the quota configuration, the primary store and, for Redis, the local store counted
     while Redis cannot be reached; a clock (unix seconds) and a logger.
Out: `precheck(envelope)` (at RCPT: is a quota already used up?) and `admit(envelope)` (at
     end of message, for mail the policy accepts or quarantines: charge every counter, or
     none when one would pass its limit) return findings for the policy:
       QUOTA_EXCEEDED     a limit would be passed (category: the rule; nothing is charged)
       QUOTA_WARNING      a count reached the rule's warning level (category: the rule)
       QUOTA_DEGRADED     Redis is down and the local store counts instead
       QUOTA_STORE_ERROR  no store could answer, or quotas.store.on_error is tempfail
     `report(identity)` and `reset(identity)` serve `menshen quota show|reset`.
Fails: never raises from precheck or admit; store errors become findings and log lines.
     While the shared store is down it is retried after store.retry_seconds, so a dead
     Redis costs one timeout per interval, not one per message.
Thread safety: shared by all connections; the down/up state is guarded by a lock.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from menshen.config import QuotaConfig, QuotaCount, QuotaKey, StoreFailure
from menshen.model import (
    QUOTA_DEGRADED,
    QUOTA_EXCEEDED,
    QUOTA_STORE_ERROR,
    QUOTA_WARNING,
    Envelope,
    Finding,
)
from menshen.printable import printable
from menshen.quota.rules import Counter, counter, counters_for, identity_for
from menshen.quota.stores import Admission, QuotaStore, QuotaStoreError

SCANNER = "quota"


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One rule's count for one identity, for `menshen quota show`."""

    rule: str
    key: str  # what the rule is keyed by
    identity: str
    used: int
    limit: int | None
    window: str
    resets_at: float | None  # calendar windows: the end of the period


class QuotaLimiter:
    def __init__(
        self,
        config: QuotaConfig,
        store: QuotaStore,
        fallback: QuotaStore | None = None,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
        on_backend: Callable[[bool], None] | None = None,
    ) -> None:
        self._config = config
        self._rules = {rule.name: rule for rule in config.rules}
        self._store = store
        self._fallback = fallback  # counted in while `store` (Redis) is down
        self._log = logger or logging.getLogger("menshen.quota")
        self._clock = clock
        self._on_backend = on_backend  # the metrics gauge menshen_quota_backend_up
        self._lock = threading.Lock()
        self._down_until = float("-inf")
        self._down = False

    def close(self) -> None:
        self._store.close()
        if self._fallback is not None:
            self._fallback.close()

    @property
    def store_name(self) -> str:
        return self._store.name

    def precheck(self, envelope: Envelope) -> tuple[Finding, ...]:
        """Before the message is sent: QUOTA_EXCEEDED when a quota is already used up."""
        return self._run(envelope, charge=False)

    def admit(self, envelope: Envelope) -> tuple[Finding, ...]:
        """Charge the message to every quota it falls under, unless one would be passed."""
        return self._run(envelope, charge=True)

    def _run(self, envelope: Envelope, charge: bool) -> tuple[Finding, ...]:
        now = self._clock()
        counters = counters_for(
            self._config.rules, envelope, now, self._config.zone, self._config.null_sender
        )
        if not counters:
            return ()
        qid = envelope.queue_id or "NOQUEUE"
        try:
            admission, degraded = self._admit(counters, now, charge, qid)
        except QuotaStoreError as exc:
            self._log.error("%s: quota store unavailable, tempfail: %s", qid, exc)
            return (Finding(scanner=SCANNER, code=QUOTA_STORE_ERROR, detail=str(exc)[:200]),)
        if admission is None:  # shared store down and on_error: accept
            return (Finding(scanner=SCANNER, code=QUOTA_DEGRADED, detail="not counted"),)
        findings = self._findings(counters, admission, charge, qid)
        if degraded:
            findings.append(Finding(scanner=SCANNER, code=QUOTA_DEGRADED, detail="counted locally"))
        return tuple(findings)

    def _admit(
        self, counters: Sequence[Counter], now: float, charge: bool, qid: str
    ) -> tuple[Admission | None, bool]:
        """The admission and whether it came from the fallback; raises QuotaStoreError."""
        monotonic = time.monotonic()
        if self._fallback is None or monotonic >= self._down_until:
            try:
                admission = self._store.admit(counters, now, charge)
            except QuotaStoreError as exc:
                if self._fallback is None:
                    raise
                self._went_down(exc, monotonic)
            else:
                self._came_up()
                return admission, False
        on_error = self._config.store.on_error
        if on_error is StoreFailure.TEMPFAIL:
            raise QuotaStoreError(f"{self._store.name} is down")
        if on_error is StoreFailure.ACCEPT:
            return None, True
        assert self._fallback is not None
        return self._fallback.admit(counters, now, charge), True

    def _went_down(self, exc: QuotaStoreError, monotonic: float) -> None:
        with self._lock:
            self._down_until = monotonic + self._config.store.retry_seconds
            first = not self._down
            self._down = True
        if first:
            self._log.error(
                "quota store %s unreachable (%s); %s, retrying every %gs",
                self._store.name,
                exc,
                {
                    StoreFailure.LOCAL: "counting in the local store meanwhile",
                    StoreFailure.ACCEPT: "not counting meanwhile",
                    StoreFailure.TEMPFAIL: "tempfailing mail meanwhile",
                }[self._config.store.on_error],
                self._config.store.retry_seconds,
            )
        if self._on_backend is not None:
            self._on_backend(False)

    def _came_up(self) -> None:
        if not self._down:
            return
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            self._log.info("quota store %s reachable again", self._store.name)
            if self._on_backend is not None:
                self._on_backend(True)

    def _findings(
        self,
        counters: Sequence[Counter],
        admission: Admission,
        charge: bool,
        qid: str,
    ) -> list[Finding]:
        rules = self._rules
        if not admission.admitted:
            assert admission.refused is not None
            refused = counters[admission.refused]
            rule = rules[refused.rule]
            unit = "recipients" if rule.count is QuotaCount.RECIPIENTS else "messages"
            detail = f"{refused.limit} {unit} {rule.window.describe()}"
            if refused.resets_at is not None:
                detail += f", resets {_when(refused.resets_at, self._config)}"
            self._log.warning(
                "%s: quota %s exhausted for %s <%s>: %d of %s%s",
                qid,
                refused.rule,
                rule.key.value,
                printable(refused.identity),
                admission.usage[admission.refused],
                refused.limit,
                "" if charge else " (at RCPT)",
            )
            return [
                Finding(scanner=SCANNER, code=QUOTA_EXCEEDED, category=refused.rule, detail=detail)
            ]
        findings: list[Finding] = []
        if not charge:
            return findings
        for item, used in zip(counters, admission.usage, strict=True):
            warn_at = rules[item.rule].warn_at
            if item.limit is None or warn_at is None or item.limit == 0:
                continue
            level = warn_at * item.limit
            if used >= level > used - item.amount:  # this message crossed the level
                self._log.warning(
                    "%s: quota %s at %d of %d for <%s> (warning level %g%%)",
                    qid,
                    item.rule,
                    used,
                    item.limit,
                    printable(item.identity),
                    warn_at * 100,
                )
            if used >= level:
                findings.append(
                    Finding(
                        scanner=SCANNER,
                        code=QUOTA_WARNING,
                        category=item.rule,
                        detail=f"{used}/{item.limit}",
                    )
                )
        return findings

    # --- operators' view ---------------------------------------------------------------

    def report(self, identity: str) -> list[UsageRow]:
        """Every rule's count for `identity` (a sender, user, domain or client address)."""
        now = self._clock()
        rows: list[UsageRow] = []
        counters = self._counters_for_identity(identity, now)
        used = self._store.usage([c for _, c in counters], now) if counters else ()
        for (rule_key, item), count in zip(counters, used, strict=True):
            rule = self._rules[item.rule]
            rows.append(
                UsageRow(
                    rule=item.rule,
                    key=rule_key.value,
                    identity=item.identity,
                    used=count,
                    limit=item.limit,
                    window=rule.window.describe(),
                    resets_at=item.resets_at,
                )
            )
        return rows

    def reset(self, identity: str) -> int:
        counters = self._counters_for_identity(identity, self._clock())
        keys = [item.key for _, item in counters]
        found = self._store.reset(keys)
        if self._fallback is not None:
            found += self._fallback.reset(keys)
        return found

    def _counters_for_identity(self, identity: str, now: float) -> list[tuple[QuotaKey, Counter]]:
        """The counter of every rule that could count `identity`."""
        text = identity.strip()
        found = []
        for rule in self._config.rules:
            envelope = _envelope_for(rule.key, text)
            if envelope is None:
                continue
            resolved = identity_for(rule, envelope, self._config.null_sender)
            if resolved:
                found.append((rule.key, counter(rule, resolved, now, self._config.zone, 1)))
        return found


def _envelope_for(key: QuotaKey, identity: str) -> Envelope | None:
    """An envelope whose identity under a rule keyed by `key` is `identity`, if one exists."""
    if key is QuotaKey.CLIENT_IP:
        address = identity.split("/", maxsplit=1)[0]
        return Envelope(client_ip=address) if _is_address(address) else None
    if _is_address(identity):
        return None
    if key in (QuotaKey.SASL_USER, QuotaKey.ACCOUNT):
        return Envelope(auth_user=identity) if identity != "<>" else Envelope(sender="")
    if key is QuotaKey.SENDER_DOMAIN:
        return Envelope(sender=f"postmaster@{identity}") if "@" not in identity else None
    if identity == "<>":
        return Envelope(sender="")
    return Envelope(sender=identity) if "@" in identity else None


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _when(timestamp: float, config: QuotaConfig) -> str:
    local = datetime.fromtimestamp(timestamp, UTC).astimezone(config.zone)
    return local.strftime("%Y-%m-%d %H:%M %z")
