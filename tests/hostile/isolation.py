"""Run one hostile case in a forked child under a hang guard and a memory cap; measure it.

In:  `run_isolated(case, engine_factory, timeout=..., memory_cap=...)`: a HostileCase and a
     callable returning the Engine to use (called in the parent, so the child inherits a
     built engine and measures only the message).
Out: a Measurement: the verdict's action, reason, finding codes, MIME limits hit and
     problems (an INTERNAL_ERROR finding, an "internal error" limit, a traceback in the
     child), the message size, extraction and total time from the verdict's timings,
     wall time, the child's peak RSS while evaluating (VmHWM after a reset, so building the
     message does not count) and the growth of RSS over the level just before evaluating.
     `error` carries the child's traceback, "timeout" or "killed by signal N".
Fails: never raises for a misbehaving case: a hang is killed at `timeout` (SIGKILL) and
     reported; a memory blow-up hits RLIMIT_AS in the child (MemoryError, reported).
Thread safety: forks; call from the main thread of a process that runs no other threads
     doing work (pytest's is fine). Linux only (/proc/self/status, /proc/self/clear_refs).
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from hostile_cases import HostileCase

from menshen.engine import Engine
from menshen.model import INTERNAL_ERROR, Envelope

__all__ = ["Measurement", "run_isolated"]

DEFAULT_TIMEOUT = 60.0
DEFAULT_MEMORY_CAP = 4 << 30  # address space of the child


@dataclass(frozen=True, slots=True)
class Measurement:
    case: str
    action: str = ""
    reason: str = ""
    codes: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    size: int = 0
    extract_seconds: float = 0.0
    total_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss: int = 0  # bytes
    rss_growth: int = 0  # bytes over the RSS just before evaluating
    error: str = ""
    headers: tuple[tuple[str, str], ...] = field(default=())
    reply: str = ""


def _status_kb(key: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # Writing 5 resets the peak resident set size (VmHWM) to the current RSS (Linux 4.0+).
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")


def _evaluate(case: HostileCase, engine: Engine) -> Measurement:
    raw = case.build()
    envelope = Envelope(
        client_ip="192.0.2.1",
        helo="client.example",
        sender=case.sender,
        recipients=("rcpt@example.com",),
        queue_id="HOSTILE",
    )
    _reset_peak()
    before = _status_kb("VmRSS")
    started = time.perf_counter()
    verdict = engine.evaluate(envelope, raw)
    wall = time.perf_counter() - started
    peak = _status_kb("VmHWM")
    timings = dict(verdict.timings)
    problems = [
        f"INTERNAL_ERROR in {f.scanner}: {f.detail}"
        for f in verdict.findings
        if f.code == INTERNAL_ERROR
    ]
    limits: list[str] = []
    for finding in verdict.findings:
        if finding.code == "MIME_LIMIT":
            name, _, detail = finding.detail.partition(":")
            limits.append(name)
            if "internal error" in detail:
                problems.append(f"extraction failed: {detail.strip()}")
    return Measurement(
        case=case.name,
        action=verdict.action.value,
        reason=verdict.reason,
        codes=tuple(sorted({f.code for f in verdict.findings})),
        limits=tuple(sorted(set(limits))),
        problems=tuple(problems),
        size=len(raw),
        extract_seconds=timings.get("extract", 0.0),
        total_seconds=timings.get("total", 0.0),
        wall_seconds=wall,
        peak_rss=peak * 1024,
        rss_growth=max(peak - before, 0) * 1024,
        headers=verdict.headers,
        reply=str(verdict.reply) if verdict.reply else "",
    )


def _child(case: HostileCase, engine: Engine, write_fd: int, memory_cap: int) -> None:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_cap, memory_cap))
        result = asdict(_evaluate(case, engine))
    except BaseException:
        result = asdict(Measurement(case=case.name, error=traceback.format_exc()[-2000:]))
    data = json.dumps(result).encode()
    with os.fdopen(write_fd, "wb") as out:
        out.write(data)


def _read_all(read_fd: int, deadline: float) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def run_isolated(
    case: HostileCase,
    engine_factory: Callable[[], Engine],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    memory_cap: int = DEFAULT_MEMORY_CAP,
) -> Measurement:
    """Evaluate `case` in a forked child; see the module docstring."""
    engine = engine_factory()
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        # The child only evaluates and writes to the pipe: no lock another thread of the
        # parent could hold is needed there (Python 3.12 warns about any fork).
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never return into the caller's stack
        code = 0
        try:
            os.close(read_fd)
            _child(case, engine, write_fd, memory_cap)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        data = _read_all(read_fd, time.monotonic() + timeout)
    finally:
        os.close(read_fd)
    if data is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return Measurement(case=case.name, error=f"timeout: no verdict within {timeout:g} s")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return Measurement(case=case.name, error=f"killed by signal {os.WTERMSIG(status)}")
    if not data:
        return Measurement(case=case.name, error=f"child exited with status {status} and no result")
    fields = json.loads(data)
    fields["codes"] = tuple(fields["codes"])
    fields["limits"] = tuple(fields["limits"])
    fields["problems"] = tuple(fields["problems"])
    fields["headers"] = tuple(tuple(pair) for pair in fields["headers"])
    return Measurement(**fields)
