"""The quarantine is Postfix's hold queue: list, show, release and delete held messages.

In:  the Postfix configuration directory of the instance (None: the default one), the name
     of the header in which menshen records why it quarantined a message, and a runner for
     Postfix's own tools (postqueue -j, postcat -q, postsuper -H/-d, postqueue -i).
Out: HeldMessage values (queue id, arrival, size, sender, recipients, menshen's reason),
     a message's text as postcat shows it, and release/delete that act on held mail only:
     an id that is not in the hold queue is refused before postsuper is run, so "ALL", a
     typo or an active message is never touched.
Fails: QuarantineError when a tool is missing or fails (with its output, or a pointer to the
     mail log, where Postfix's tools write when stderr is not a terminal); NotHeldError for an id
     that is not in the hold queue. Queue ids are checked against Postfix's alphabet before
     any tool sees them.
Thread safety: stateless apart from the injected settings; each call runs its own tools.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

QUEUE_ID = re.compile(r"^[0-9A-Za-z]{6,32}$")  # short (hex) and long (base 52) queue ids
SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")
HOLD = "hold"
TOOL_TIMEOUT = 120.0

Runner = Callable[[Sequence[str]], "ToolResult"]


class QuarantineError(Exception):
    """A Postfix tool is missing or failed."""


class NotHeldError(QuarantineError):
    """No message with this id is in the hold queue."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    status: int
    stdout: str
    stderr: str


@dataclass(frozen=True, slots=True)
class HeldMessage:
    queue_id: str
    arrival: datetime
    size: int
    sender: str
    recipients: tuple[str, ...]
    reason: str  # menshen's reason; "" when the message carries none (held by someone else)

    def as_json(self) -> dict[str, Any]:
        return {
            "queue_id": self.queue_id,
            "arrival_time": self.arrival.isoformat(timespec="seconds").replace("+00:00", "Z"),
            "size": self.size,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "reason": self.reason or None,
        }


def run_tool(argv: Sequence[str]) -> ToolResult:
    """Run one Postfix tool, capturing both streams (never a terminal: no prompts)."""
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise QuarantineError(f"{argv[0]}: {exc}") from exc
    return ToolResult(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def find_tool(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN:
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    raise QuarantineError(f"{name} not found: is Postfix installed?")


class HoldQueue:
    """Postfix's hold queue, seen through Postfix's own tools."""

    def __init__(
        self,
        config_directory: Path | None,
        reason_header: str,
        runner: Runner = run_tool,
        tool: Callable[[str], str] = find_tool,
    ) -> None:
        self._config = config_directory
        self._reason_header = reason_header.lower()
        self._run = runner
        self._tool = tool

    def _argv(self, name: str, *args: str) -> list[str]:
        argv = [self._tool(name)]
        if self._config is not None:
            argv += ["-c", str(self._config)]
        return argv + list(args)

    def _checked(self, name: str, *args: str) -> ToolResult:
        argv = self._argv(name, *args)
        result = self._run(argv)
        if result.status != 0:
            detail = result.stderr.strip() or result.stdout.strip() or "see the mail log"
            raise QuarantineError(f"{' '.join(argv)} failed (status {result.status}): {detail}")
        return result

    def _records(self) -> list[dict[str, Any]]:
        out = self._checked("postqueue", "-j").stdout
        records: list[dict[str, Any]] = []
        for line in out.splitlines():
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise QuarantineError(f"postqueue -j: unreadable line: {line[:80]!r}") from exc
        return [r for r in records if r.get("queue_name") == HOLD]

    def list(self) -> list[HeldMessage]:
        """Every held message with menshen's reason, oldest first."""
        held = [self._message(record) for record in self._records()]
        return sorted(held, key=lambda m: (m.arrival, m.queue_id))

    def get(self, queue_id: str) -> HeldMessage:
        _check_id(queue_id)
        for record in self._records():
            if record.get("queue_id") == queue_id:
                return self._message(record)
        raise NotHeldError(f"{queue_id}: no such message in the hold queue")

    def show(self, queue_id: str, body: bool = False) -> str:
        """The envelope and headers (and with `body`, the body) as postcat prints them."""
        self.get(queue_id)
        flags = "-ehb" if body else "-eh"
        return self._checked("postcat", flags, "-q", queue_id).stdout

    def release(self, queue_id: str) -> None:
        """Take the message out of the hold queue and ask for its delivery now."""
        self.get(queue_id)
        self._checked("postsuper", "-H", queue_id)
        # Released mail waits for the next queue run; -i schedules it at once. A failure
        # here only delays delivery, so it is not an error.
        self._run(self._argv("postqueue", "-i", queue_id))

    def delete(self, queue_id: str) -> None:
        self.get(queue_id)
        self._checked("postsuper", "-d", queue_id, HOLD)  # HOLD: only from the hold queue

    def _message(self, record: dict[str, Any]) -> HeldMessage:
        queue_id = str(record.get("queue_id", ""))
        recipients = tuple(
            str(r.get("address", "")) for r in record.get("recipients", []) if isinstance(r, dict)
        )
        return HeldMessage(
            queue_id=queue_id,
            arrival=datetime.fromtimestamp(int(record.get("arrival_time", 0)), UTC),
            size=int(record.get("message_size", 0)),
            sender=str(record.get("sender", "")),
            recipients=recipients,
            reason=self._reason(queue_id) if QUEUE_ID.match(queue_id) else "",
        )

    def _reason(self, queue_id: str) -> str:
        result = self._run(self._argv("postcat", "-h", "-q", queue_id))
        if result.status != 0:
            return ""  # released or deleted meanwhile: list what is left
        return header_value(result.stdout, self._reason_header)


def header_value(headers: str, name: str) -> str:
    """The last value of header `name` (case-insensitive) in postcat -h output, unfolded."""
    value: str | None = None
    current: list[str] | None = None
    prefix = name.lower() + ":"
    found: list[str] = []
    for line in headers.splitlines():
        if current is not None and line[:1] in (" ", "\t"):
            current.append(line.strip())
            continue
        if current is not None:
            found.append(" ".join(current))
            current = None
        if line.lower().startswith(prefix):
            current = [line[len(prefix) :].strip()]
    if current is not None:
        found.append(" ".join(current))
    if found:
        value = found[-1]
    return value or ""


def _check_id(queue_id: str) -> None:
    if not QUEUE_ID.match(queue_id):
        raise NotHeldError(f"{queue_id!r}: not a Postfix queue id")
