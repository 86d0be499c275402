"""The quota store interface and the in-memory store.

In:  counters (menshen.quota.rules.Counter) and the current time.
Out: `admit` checks every counter and, only when none would pass its limit, adds each
     counter's amount to its current bucket, all as one atomic step; `usage` reads the
     windows' sums without changing them; `reset` forgets identities' counts.
Fails: stores raise QuotaStoreError when their backend fails; nothing is half-charged.
Thread safety: every store is safe to share between threads; SQLite and Redis stores are
     also correct across processes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from menshen.quota.rules import Counter

SWEEP_SECONDS = 60.0  # how often expired counts are dropped


class QuotaStoreError(Exception):
    """The store could not answer (unreachable, timed out, locked, corrupt)."""


@dataclass(frozen=True, slots=True)
class Admission:
    admitted: bool
    usage: tuple[int, ...]  # per counter: after the charge when admitted, before otherwise
    refused: int | None = None  # index of the first counter that would pass its limit


class QuotaStore(Protocol):
    name: str

    def admit(self, counters: Sequence[Counter], now: float, charge: bool = True) -> Admission:
        """Charge every counter, or none when one would pass its limit (atomically)."""
        ...

    def usage(self, counters: Sequence[Counter], now: float) -> tuple[int, ...]: ...

    def reset(self, keys: Sequence[str]) -> int:
        """Forget the counts under these keys; returns how many keys held counts."""
        ...

    def close(self) -> None: ...


def over_limit(counter: Counter, used: int) -> bool:
    return counter.limit is not None and used + counter.amount > counter.limit


def decide_admission(counters: Sequence[Counter], used: Sequence[int]) -> Admission:
    """The admission for current window sums `used`, before any charge."""
    for index, (counter, count) in enumerate(zip(counters, used, strict=True)):
        if over_limit(counter, count):
            return Admission(False, tuple(used), index)
    return Admission(True, tuple(count + c.amount for c, count in zip(counters, used, strict=True)))


class MemoryStore:
    """Counts in this process only, lost on restart: for tests and single-process use."""

    name = "memory"

    def __init__(self) -> None:
        self._buckets: dict[str, dict[int, int]] = {}
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()
        self._swept_at = float("-inf")

    def admit(self, counters: Sequence[Counter], now: float, charge: bool = True) -> Admission:
        with self._lock:
            self._expire(now)
            admission = decide_admission(counters, self._sums(counters))
            if admission.admitted and charge:
                for counter in counters:
                    buckets = self._buckets.setdefault(counter.key, {})
                    buckets[counter.bucket] = buckets.get(counter.bucket, 0) + counter.amount
                    self._expiry[counter.key] = max(
                        self._expiry.get(counter.key, 0.0), counter.expires_at
                    )
            return admission

    def usage(self, counters: Sequence[Counter], now: float) -> tuple[int, ...]:
        with self._lock:
            self._expire(now)
            return self._sums(counters)

    def reset(self, keys: Sequence[str]) -> int:
        with self._lock:
            found = 0
            for key in keys:
                if self._buckets.pop(key, None) is not None:
                    found += 1
                self._expiry.pop(key, None)
            return found

    def close(self) -> None:
        return None

    def _sums(self, counters: Sequence[Counter]) -> tuple[int, ...]:
        sums = []
        for counter in counters:
            buckets = self._buckets.get(counter.key, {})
            sums.append(sum(n for b, n in buckets.items() if counter.oldest <= b <= counter.bucket))
        return tuple(sums)

    def _expire(self, now: float) -> None:
        # Garbage collection only: a sum never reads a bucket outside its window anyway.
        if now - self._swept_at < SWEEP_SECONDS:
            return
        self._swept_at = now
        for key in [key for key, expiry in self._expiry.items() if expiry <= now]:
            self._buckets.pop(key, None)
            del self._expiry[key]
