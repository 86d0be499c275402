"""The audit trail: one JSON line per decided message.

In:  an AuditConfig, then (Envelope, Verdict, size) for every message the milter decided.
Out: one line per message, a JSON object with the keys
       time (UTC, RFC 3339, milliseconds), queue_id, client_ip, sender, auth_user,
       recipients (a count), size, action, monitored_action, reason, score,
       codes, categories, (terms, with include_terms), virus, timings (stage -> seconds)
     appended to a file or sent to syslog. Recipient addresses and message bodies are never
     written. With hash_addresses, client_ip, sender and auth_user are written as
     "hmac:" + the first 16 bytes (hex) of HMAC-SHA256(key, value): stable, so lines still
     group by sender or client, but useless without the key.
     Lines are JSON with ensure_ascii: every control character, CR/LF, U+2028 and non-ASCII
     letter is escaped, so no header value can break a line or forge another one.
Fails: open_audit_log raises AuditError when the file cannot be opened or the key cannot be
     read (the daemon refuses to start: a broken audit setup is a configuration error).
     Later, write() raises OSError when a line cannot be written; the caller counts and
     logs it and mail keeps flowing.
File rotation: before each line the file's identity (device, inode) is compared with the
     open descriptor's, as logging.WatchedFileHandler does; after logrotate moved the file
     away a new one is opened. No copytruncate and no signal is needed. reopen() forces it.
Thread safety: write() is serialised by a lock; each line is one write(2) on an O_APPEND
     descriptor, so several processes may share the file without interleaving lines.
"""

from __future__ import annotations

import hmac
import json
import logging
import logging.handlers
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from menshen.config import AuditConfig, AuditTarget
from menshen.model import AV_INFECTED, KEYWORD_HIT, Envelope, Verdict

SYSLOG_SOCKET = "/dev/log"
SYSLOG_TAG = "menshen-audit"
FILE_MODE = 0o640  # the admin group reads; the world never


class AuditError(Exception):
    """The audit trail cannot be set up as configured."""


class AuditSink(Protocol):
    def write(self, line: str) -> None: ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


class AuditRecorder:
    """Turns a decided message into its line and hands it to a sink."""

    def __init__(
        self,
        sink: AuditSink,
        hash_key: bytes | None = None,
        include_terms: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sink = sink
        self._hash_key = hash_key
        self._include_terms = include_terms
        self._clock = clock

    def record(self, envelope: Envelope, verdict: Verdict, size: int) -> None:
        """Write the line of one message. Raises OSError when the sink cannot write."""
        self._sink.write(self.line(envelope, verdict, size))

    def line(self, envelope: Envelope, verdict: Verdict, size: int) -> str:
        findings = verdict.findings
        entry: dict[str, Any] = {
            "time": self._clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "queue_id": envelope.queue_id or None,
            "client_ip": self._address(envelope.client_ip),
            "sender": self._address(envelope.sender),
            "auth_user": self._address(envelope.auth_user),
            "recipients": len(envelope.recipients),
            "size": size,
            "action": verdict.action.value,
            "monitored_action": verdict.monitored_action.value
            if verdict.monitored_action
            else None,
            "reason": verdict.reason,
            "score": verdict.score,
            "codes": sorted({f.code for f in findings}),
            "categories": sorted({f.category for f in findings if f.category}),
        }
        if self._include_terms:
            entry["terms"] = sorted(
                {f"{f.category}:{f.term}" for f in findings if f.code == KEYWORD_HIT and f.term}
            )
        viruses = sorted({f.detail for f in findings if f.code == AV_INFECTED and f.detail})
        if viruses:
            entry["virus"] = viruses
        entry["timings"] = {stage: round(seconds, 6) for stage, seconds in verdict.timings}
        return json.dumps(entry, ensure_ascii=True, separators=(",", ":"))

    def _address(self, value: str) -> str:
        if not value or self._hash_key is None:
            return value
        digest = hmac.new(
            self._hash_key, value.lower().encode("utf-8", "surrogateescape"), "sha256"
        )
        return "hmac:" + digest.hexdigest()[:32]

    def reopen(self) -> None:
        self._sink.reopen()

    def close(self) -> None:
        self._sink.close()


class FileSink:
    """Appends lines to a file, reopening it when it was moved away (logrotate)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._fd = -1
        self._identity: tuple[int, int] = (0, 0)
        self._open()

    def _open(self) -> None:
        try:
            fd = os.open(
                self._path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                FILE_MODE,
            )
        except OSError as exc:
            raise AuditError(f"{self._path}: cannot open the audit log: {exc.strerror}") from exc
        stat = os.fstat(fd)
        self._fd, self._identity = fd, (stat.st_dev, stat.st_ino)

    def _moved(self) -> bool:
        try:
            stat = os.stat(self._path)
        except FileNotFoundError:
            return True
        return (stat.st_dev, stat.st_ino) != self._identity

    def write(self, line: str) -> None:
        data = (line + "\n").encode("ascii")
        with self._lock:
            if self._fd < 0 or self._moved():
                self._reopen_locked()
            os.write(self._fd, data)

    def reopen(self) -> None:
        with self._lock:
            self._reopen_locked()

    def _reopen_locked(self) -> None:
        old = self._fd
        try:
            self._open()
        except AuditError as exc:
            raise OSError(str(exc)) from exc
        if old >= 0:
            os.close(old)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class SyslogSink:
    """One syslog message per line, tagged menshen-audit (journald reads /dev/log)."""

    def __init__(self, facility: str, address: str = SYSLOG_SOCKET) -> None:
        code = logging.handlers.SysLogHandler.facility_names[facility]
        try:
            self._handler = logging.handlers.SysLogHandler(address=address, facility=code)
        except OSError as exc:
            raise AuditError(f"cannot reach syslog at {address}: {exc.strerror or exc}") from exc
        self._handler.ident = SYSLOG_TAG + ": "
        # Raise rather than print a traceback to stderr: the caller counts failures.
        self._handler.handleError = _raise_current  # type: ignore[method-assign]

    def write(self, line: str) -> None:
        record = logging.LogRecord(SYSLOG_TAG, logging.INFO, "", 0, line, None, None)
        self._handler.emit(record)

    def reopen(self) -> None:
        """Nothing to reopen: the socket reconnects by itself."""

    def close(self) -> None:
        self._handler.close()


def _raise_current(record: logging.LogRecord) -> None:
    raise OSError("cannot send the audit line to syslog")


def open_audit_log(config: AuditConfig) -> AuditRecorder | None:
    """The recorder the configuration asks for; None for target none. Raises AuditError."""
    if config.target is AuditTarget.NONE:
        return None
    key: bytes | None = None
    if config.hash_addresses:
        if config.hash_key_file is None:
            raise AuditError("audit.hash_addresses needs audit.hash_key_file")
        try:
            key = config.hash_key_file.read_bytes().strip()
        except OSError as exc:
            raise AuditError(
                f"{config.hash_key_file}: cannot read the hash key: {exc.strerror}"
            ) from exc
        if len(key) < 16:
            raise AuditError(f"{config.hash_key_file}: the hash key needs 16 bytes or more")
    sink: AuditSink
    if config.target is AuditTarget.FILE:
        sink = FileSink(config.file)
    else:
        sink = SyslogSink(config.syslog_facility)
    return AuditRecorder(sink, hash_key=key, include_terms=config.include_terms)


def read_audit_lines(path: Path) -> list[dict[str, Any]]:
    """Every record of an audit file, in order (for reports and tests)."""
    records: list[dict[str, Any]] = []
    with path.open(encoding="ascii") as lines:
        for line in lines:
            if line.strip():
                records.append(json.loads(line))
    return records
