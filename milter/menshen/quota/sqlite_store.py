"""The embedded quota store: SQLite in WAL mode, one host, survives restarts.

In:  the database path (created with its directory when missing).
Out: the QuotaStore operations. `admit` runs in one BEGIN IMMEDIATE transaction, which
     SQLite serialises across threads and processes, so two daemons on one host (or
     pre-forked workers) never admit more than a limit between them. Writers queue on a
     thread lock and an flock(2) on PATH.lock first, which wakes the next writer at once
     where SQLite's busy handler would sleep.
Fails: QuotaStoreError for any SQLite or file-system error (locked past the busy timeout,
     unwritable directory, corrupt file); a failed transaction is rolled back.
Thread safety: connections come from a pool, one per thread at a time (sqlite3
     connections must not be used by two threads at once).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from menshen.quota.rules import Counter
from menshen.quota.stores import Admission, QuotaStoreError, decide_admission

BUSY_TIMEOUT_SECONDS = 5.0
SWEEP_EVERY = 1000  # admissions between deletions of expired buckets

_SCHEMA = """
CREATE TABLE IF NOT EXISTS quota_buckets (
    key     TEXT    NOT NULL,
    bucket  INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    expires REAL    NOT NULL,
    PRIMARY KEY (key, bucket)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS quota_buckets_expires ON quota_buckets (expires);
"""
_SUM = (
    "SELECT {index}, COALESCE(SUM(count), 0) FROM quota_buckets "
    "WHERE key = ? AND bucket BETWEEN ? AND ?"
)
_CHARGE = (
    "INSERT INTO quota_buckets (key, bucket, count, expires) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (key, bucket) DO UPDATE SET count = count + excluded.count, "
    "expires = max(expires, excluded.expires)"
)


class SqliteStore:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._admissions = 0  # written under the writer lock
        self._thread_lock = threading.Lock()
        self._lock_file: int | None = None

    def open(self) -> None:
        """Create the database (and its directory) now, so a bad path shows at start."""
        with self._connection():
            pass

    def admit(self, counters: Sequence[Counter], now: float, charge: bool = True) -> Admission:
        if not charge:  # only looking (the RCPT check): a WAL reader neither waits nor locks
            return decide_admission(counters, self.usage(counters, now))
        with self._writer(), self._connection() as db:
            try:
                db.execute("BEGIN IMMEDIATE")
                admission = decide_admission(counters, self._sums(db, counters))
                if admission.admitted:
                    db.executemany(
                        _CHARGE, [(c.key, c.bucket, c.amount, c.expires_at) for c in counters]
                    )
                self._admissions += 1
                if self._admissions % SWEEP_EVERY == 0:
                    db.execute("DELETE FROM quota_buckets WHERE expires <= ?", (now,))
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
            return admission

    def usage(self, counters: Sequence[Counter], now: float) -> tuple[int, ...]:
        with self._connection() as db:
            return self._sums(db, counters)

    def reset(self, keys: Sequence[str]) -> int:
        with self._writer(), self._connection() as db:
            found = 0
            db.execute("BEGIN IMMEDIATE")
            for key in keys:
                found += (
                    1
                    if db.execute("DELETE FROM quota_buckets WHERE key = ?", (key,)).rowcount
                    else 0
                )
            db.execute("COMMIT")
            return found

    def close(self) -> None:
        with self._thread_lock:
            if self._lock_file is not None:
                os.close(self._lock_file)
                self._lock_file = None
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    @staticmethod
    def _sums(db: sqlite3.Connection, counters: Sequence[Counter]) -> tuple[int, ...]:
        """Every counter's window sum in one statement (one round through SQLite, not N)."""
        if not counters:
            return ()
        query = " UNION ALL ".join(_SUM.format(index=i) for i in range(len(counters)))
        arguments = [value for c in counters for value in (c.key, c.oldest, c.bucket)]
        rows = sorted(db.execute(query, arguments).fetchall())  # a compound has no order
        return tuple(int(total) for _, total in rows)

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """Take the right to write: first among this process's threads, then among processes.

        SQLite's own wait for a busy database sleeps and polls (1, 2, 5, 10 ... 100 ms), which
        under load turns a 100 us transaction into tens of milliseconds. A thread lock and
        an flock(2) on a side file queue the writers instead, and wake the next one the
        moment the lock is free; BEGIN IMMEDIATE then finds the database unlocked.
        """
        with self._thread_lock:
            try:
                if self._lock_file is None:
                    self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
                    self._lock_file = os.open(
                        f"{self.path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640
                    )
                fcntl.flock(self._lock_file, fcntl.LOCK_EX)
            except OSError as exc:
                raise QuotaStoreError(f"{self.path}.lock: {exc}") from exc
            try:
                yield
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            try:
                db = self._pool.get_nowait()
            except queue.Empty:
                db = self._connect()
            try:
                yield db
            finally:
                self._pool.put(db)
        except (sqlite3.Error, OSError) as exc:
            raise QuotaStoreError(f"{self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun explicitly (BEGIN IMMEDIATE takes
        # the write lock up front, so a check and its charge can never interleave).
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, never corrupt
        db.executescript(_SCHEMA)
        return db
