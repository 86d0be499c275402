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
from collections.abc import Callable, Sequence
from dataclasses import replace

from menshen.config import PolicyConfig
from menshen.extraction import Extractor
from menshen.model import INTERNAL_ERROR, Envelope, Finding, Verdict
from menshen.policy import decide, internal_error_verdict
from menshen.scanners.base import Scanner

Heartbeat = Callable[[], object]


class Engine:
    def __init__(
        self,
        extractor: Extractor,
        scanners: Sequence[Scanner],
        policy: PolicyConfig,
        logger: logging.Logger | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._extractor = extractor
        self._scanners = tuple(scanners)
        self._policy = policy
        self._log = logger or logging.getLogger("menshen.engine")
        self._clock = clock

    @property
    def policy(self) -> PolicyConfig:
        return self._policy

    @property
    def own_header_names(self) -> tuple[str, ...]:
        """Headers this engine adds; inbound copies of them must not be trusted."""
        headers = self._policy.headers
        return (headers.verdict, headers.tag, headers.reason)

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
        timings.append(("total", self._clock() - started))
        return replace(verdict, timings=tuple(timings))


def _no_heartbeat() -> None:
    return None


def _qid(envelope: Envelope) -> str:
    return envelope.queue_id or "NOQUEUE"
