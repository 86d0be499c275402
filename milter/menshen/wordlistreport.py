"""`menshen wordlist report`: what the wordlists caught, from the audit trail.

In:  audit files (plain or .gz, as logrotate leaves them), an optional start time, and the
     wordlists in use.
Out: a report (a plain dict, also the --json output): messages read; per category the
     messages with a hit and the actions they got; per term the messages it hit; and the
     terms of each list that hit nothing. Per-term counts need `audit.include_terms: true`;
     without it the report says so and gives categories only.
Fails: ReportError for an unreadable file or a line that is not an audit record (with
     file:line). Lines are read one at a time: memory does not grow with the log.
Thread safety: stateless functions.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from menshen.keywords.wordlist import Wordlist


class ReportError(Exception):
    """An audit file cannot be read."""


def _open(path: Path) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="ascii")
    return path.open(encoding="ascii")


def read_records(paths: Iterable[Path], since: datetime | None) -> Iterator[dict[str, Any]]:
    """Every record of the files, those older than `since` (aware datetime) left out."""
    for path in paths:
        try:
            with _open(path) as lines:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        when = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
                    except (ValueError, KeyError, TypeError, AttributeError) as exc:
                        raise ReportError(f"{path}:{number}: not an audit record") from exc
                    if since is None or when >= since:
                        yield record
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise ReportError(f"{path}: cannot read: {exc}") from exc


def build_report(
    records: Iterable[dict[str, Any]], wordlists: Iterable[Wordlist]
) -> dict[str, Any]:
    messages = 0
    terms_logged = False
    category_messages: Counter[str] = Counter()
    category_actions: dict[str, Counter[str]] = defaultdict(Counter)
    term_messages: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        messages += 1
        action = str(record.get("monitored_action") or record.get("action") or "")
        for category in record.get("categories") or ():
            category_messages[category] += 1
            category_actions[category][action] += 1
        if "terms" in record:
            terms_logged = True
            for entry in record["terms"]:
                category, _, term = str(entry).partition(":")
                term_messages[category][term] += 1
    lists = {wordlist.category: wordlist for wordlist in wordlists}
    report: dict[str, Any] = {
        "messages": messages,
        "terms_logged": terms_logged,
        "categories": {
            category: {
                "messages": category_messages.get(category, 0),
                "actions": dict(sorted(category_actions[category].items())),
            }
            for category in sorted(set(lists) | set(category_messages))
        },
    }
    if terms_logged:
        report["terms"] = {
            category: dict(counts.most_common())
            for category, counts in sorted(term_messages.items())
        }
        report["never_hit"] = {
            category: [t.text for t in wordlist.terms if t.text not in term_messages[category]]
            for category, wordlist in sorted(lists.items())
        }
    return report


def render(report: dict[str, Any], top: int = 10) -> str:
    lines = [f"{report['messages']} messages in the audit trail"]
    lines.append("category                 messages  actions")
    for category, entry in report["categories"].items():
        actions = ", ".join(f"{action} {count}" for action, count in entry["actions"].items())
        lines.append(f"  {category:<22} {entry['messages']:>8}  {actions or '-'}")
    if not report["terms_logged"]:
        lines.append(
            "terms: not in the audit trail (set audit.include_terms: true for per-term counts)"
        )
        return "\n".join(lines)
    for category, counts in report["terms"].items():
        best = ", ".join(f"{term} {count}" for term, count in list(counts.items())[:top])
        lines.append(f"top terms of {category}: {best}")
    for category, never in report["never_hit"].items():
        if never:
            lines.append(f"never hit in {category} ({len(never)}): " + ", ".join(never[:top]))
            if len(never) > top:
                lines[-1] += f", ... ({len(never) - top} more; --json lists all)"
    return "\n".join(lines)
