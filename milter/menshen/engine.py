"""The engine: one raw message and its envelope in, one Verdict out.

In:  an Envelope and the raw message bytes (headers and body exactly as the MTA has them),
     plus an optional heartbeat called between stages (the milter's progress()).
Out: a Verdict with per-stage timings. The milter daemon and `menshen check` both call
     exactly this.
Fails: never raises. A scanner that raises becomes an INTERNAL_ERROR finding for that
       scanner; a failure anywhere else becomes a tempfail verdict. Either way the policy
       never treats an unfinished check as clean, and the error is logged with the queue id.
Thread safety: an Engine is immutable once built and shared by every connection; reload
       builds a new Engine and swaps the reference.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from menshen.config import PolicyConfig
from menshen.extraction import Extractor
from menshen.model import INTERNAL_ERROR, QUOTA_EXCEEDED, Action, Envelope, Finding, Verdict
from menshen.policy import decide, internal_error_verdict
from menshen.quota import QuotaLimiter
from menshen.scanners.base import Scanner

_CHARGED = (Action.ACCEPT, Action.QUARANTINE)  # only mail that goes on counts

Heartbeat = Callable[[], object]


class Engine:
    def __init__(
        self,
        extractor: Extractor,
        scanners: Sequence[Scanner],
        policy: PolicyConfig,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.perf_counter,
        quota: QuotaLimiter | None = None,
        charge_quota: bool = True,
        quota_at_rcpt: bool = False,
    ) -> None:
        self._quota = quota
        self._charge_quota = charge_quota  # False for `menshen check`: look, never count
        self._quota_at_rcpt = quota_at_rcpt and quota is not None
        self._extractor = extractor
        self._scanners = tuple(scanners)
        self._policy = policy
        self._log = logger or logging.getLogger("menshen.engine")
        self._clock = clock
        headers = policy.headers
        self._own_header_names: Mapping[str, str] = MappingProxyType(
            {
                name.lower(): name
                for name in (headers.verdict, headers.tag, headers.reason, headers.quota)
            }
        )

    @property
    def policy(self) -> PolicyConfig:
        return self._policy

    @property
    def own_header_names(self) -> Mapping[str, str]:
        """Headers this engine adds, by lower-cased name; inbound copies must not be trusted."""
        return self._own_header_names

    def close(self) -> None:
        """Let go of the quota store's connections (an engine built only to validate)."""
        if self._quota is not None:
            self._quota.close()

    @property
    def checks_quota_at_rcpt(self) -> bool:
        return self._quota_at_rcpt

    def quota_precheck(self, envelope: Envelope) -> Verdict | None:
        """At RCPT: the refusal when a quota is already used up, else None (go on).

        Store errors are left to end of message, which decides them with everything else.
        """
        if self._quota is None:
            return None
        try:
            findings = [f for f in self._quota.precheck(envelope) if f.code == QUOTA_EXCEEDED]
            if not findings:
                return None
            verdict = decide(findings, envelope, self._policy)
        except Exception:
            self._log.exception("%s: quota check at RCPT failed", _qid(envelope))
            return None
        return verdict if verdict.action not in _CHARGED else None

    def evaluate(
        self, envelope: Envelope, raw: bytes, heartbeat: Heartbeat | None = None
    ) -> Verdict:
        try:
            return self._evaluate(envelope, raw, heartbeat or _no_heartbeat)
        except Exception:
            self._log.exception("%s: engine failure, answering tempfail", _qid(envelope))
            return internal_error_verdict(self._policy, "engine")

    def _evaluate(self, envelope: Envelope, raw: bytes, heartbeat: Heartbeat) -> Verdict:
        timings: list[tuple[str, float]] = []
        started = self._clock()
        message = self._extractor.extract(raw)
        timings.append(("extract", self._clock() - started))
        heartbeat()

        findings: list[Finding] = []
        for scanner in self._scanners:
            began = self._clock()
            try:
                findings.extend(scanner.scan(message, envelope))
            except Exception as exc:
                self._log.exception("%s: scanner %s failed", _qid(envelope), scanner.name)
                findings.append(
                    Finding(scanner=scanner.name, code=INTERNAL_ERROR, detail=type(exc).__name__)
                )
            timings.append((scanner.name, self._clock() - began))
            heartbeat()

        began = self._clock()
        verdict = decide(findings, envelope, self._policy)
        timings.append(("policy", self._clock() - began))
        if self._quota is not None and verdict.action in _CHARGED:
            # After the verdict, so only mail that goes on is counted; the store checks and
            # charges in one step, so concurrent messages cannot both take the last unit.
            began = self._clock()
            quota = self._quota.admit if self._charge_quota else self._quota.precheck
            quota_findings = quota(envelope)
            if quota_findings:
                findings.extend(quota_findings)
                verdict = decide(findings, envelope, self._policy)
            timings.append(("quota", self._clock() - began))
        timings.append(("total", self._clock() - started))
        return replace(verdict, timings=tuple(timings))


def _no_heartbeat() -> None:
    return None


def _qid(envelope: Envelope) -> str:
    return envelope.queue_id or "NOQUEUE"
