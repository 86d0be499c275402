"""Worker processes for the quota stores' cross-process tests (multiprocessing, spawn).

In:  `admit_in_threads(path, threads, attempts, limit, start, results)` runs in a child
     process: it opens a SqliteStore on `path`, waits on `start` (a multiprocessing
     Barrier shared with the other children, so the processes begin together), then runs
     `threads` threads, released together by a threading.Barrier, each admitting one
     message `attempts` times against one counter (rule `burst`, sender key, `limit` per
     day, dated `SHARED_NOW`).
Out: puts `(admitted, errors)` on the `results` queue: how many admissions this process
     got, and the text of every QuotaStoreError (expected: none).
Why here: a spawned child imports its target by module name; tests/support is on the
     child's sys.path (multiprocessing passes the parent's), test modules are not.
"""

from __future__ import annotations

import threading
from datetime import UTC
from pathlib import Path
from typing import Any

from menshen.config import CalendarPeriod, QuotaCount, QuotaKey, QuotaRule, QuotaWindow
from menshen.quota import QuotaStoreError
from menshen.quota.rules import counter
from menshen.quota.sqlite_store import SqliteStore

SHARED_NOW = 4_053_628_800.0  # 2098-06-15T00:00:00Z
SHARED_SENDER = "shared@example.com"


def shared_rule(limit: int) -> QuotaRule:
    return QuotaRule(
        name="burst",
        key=QuotaKey.SENDER,
        count=QuotaCount.MESSAGES,
        limit=limit,
        window=QuotaWindow(calendar=CalendarPeriod.DAY),
        warn_at=None,
    )


def admit_in_threads(
    path: str, threads: int, attempts: int, limit: int, start: Any, results: Any
) -> None:
    store = SqliteStore(Path(path))
    item = counter(shared_rule(limit), SHARED_SENDER, SHARED_NOW, UTC, 1)
    admitted = [0] * threads
    errors: list[str] = []
    together = threading.Barrier(threads)

    def work(index: int) -> None:
        together.wait()
        for _ in range(attempts):
            try:
                admitted[index] += store.admit([item], SHARED_NOW).admitted
            except QuotaStoreError as exc:
                errors.append(str(exc))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    start.wait()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    results.put((sum(admitted), errors))
