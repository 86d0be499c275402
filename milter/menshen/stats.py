"""`menshen stats`: the daemon's counters in a terminal, for operators without Prometheus.

In:  the URL of a running daemon's metrics endpoint (from the config's metrics section).
Out: a summary (a plain dict, also the --json output): messages by action and mode,
     messages per keyword category, findings by code, clamd outcomes, mean scan time,
     connections in flight, reloads, quota events and audit errors. Counters count since the
     daemon started.
Fails: StatsError when the endpoint cannot be reached or does not speak Prometheus' text
     format (with the URL and the reason).
Thread safety: stateless functions.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

from menshen.metrics import parse_exposition

TIMEOUT = 5.0


class StatsError(Exception):
    """The metrics endpoint cannot be read."""


def scrape(url: str, timeout: float = TIMEOUT) -> str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatsError(
            f"{url}: cannot read the metrics ({reason}); is `menshen serve` running with "
            "metrics enabled?"
        ) from exc


def summarise(text: str) -> dict[str, Any]:
    """The counters an operator looks at first, from one scrape."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    try:
        for name, labels, value in parse_exposition(text):
            samples[name].append((labels, value))
    except ValueError as exc:
        raise StatsError(f"not Prometheus text format: {exc}") from exc

    def by(name: str, label: str) -> dict[str, int]:
        totals: dict[str, int] = defaultdict(int)
        for labels, value in samples.get(name, []):
            totals[labels.get(label, "")] += int(value)
        return dict(sorted(totals.items()))

    def single(name: str) -> float | None:
        values = samples.get(name)
        return values[0][1] if values else None

    enforced: dict[str, int] = {}
    monitored: dict[str, int] = {}
    for labels, value in samples.get("menshen_messages_total", []):
        target = monitored if labels.get("mode") == "monitor" else enforced
        target[labels.get("action", "")] = target.get(labels.get("action", ""), 0) + int(value)
    scans = single("menshen_message_scan_seconds_count") or 0.0
    scan_sum = single("menshen_message_scan_seconds_sum") or 0.0
    build = samples.get("menshen_build_info", [({}, 0.0)])[0][0]
    return {
        "version": build.get("version"),
        "messages": dict(sorted(enforced.items())),
        "monitor_would": {k: v for k, v in sorted(monitored.items()) if v},
        "keyword_messages": {
            k: v for k, v in by("menshen_keyword_messages_total", "category").items() if v
        },
        "findings": {k: v for k, v in by("menshen_findings_total", "code").items() if v},
        "clamd": by("menshen_clamd_scans_total", "result"),
        "mean_scan_seconds": round(scan_sum / scans, 6) if scans else None,
        "bytes_scanned": int(single("menshen_scanned_bytes_total") or 0),
        "connections_active": int(single("menshen_milter_connections_active") or 0),
        "reloads": by("menshen_reloads_total", "result"),
        "last_reload_ok": bool(single("menshen_config_last_reload_successful") or 0),
        "quota": {
            "warnings": sum(by("menshen_quota_warnings_total", "rule").values()),
            "limits_hit": sum(by("menshen_quota_limits_hit_total", "rule").values()),
            "backend_up": bool(single("menshen_quota_backend_up") or 0),
        },
        "audit_errors": int(single("menshen_audit_errors_total") or 0),
    }


def render(summary: dict[str, Any], url: str) -> str:
    """The summary as a few aligned lines."""

    def pairs(values: dict[str, int]) -> str:
        return "  ".join(f"{key} {value}" for key, value in values.items()) or "-"

    mean = summary["mean_scan_seconds"]
    quota = summary["quota"]
    lines = [
        f"menshen {summary['version'] or '?'} at {url}",
        f"messages          {pairs(summary['messages'])}",
    ]
    if summary["monitor_would"]:
        lines.append(f"monitor, would    {pairs(summary['monitor_would'])}")
    lines += [
        f"keyword messages  {pairs(summary['keyword_messages'])}",
        f"findings          {pairs(summary['findings'])}",
        f"clamd             {pairs(summary['clamd'])}",
        "scan time         "
        + (f"{mean * 1000:.1f} ms mean" if mean is not None else "-")
        + f", {summary['bytes_scanned']} bytes scanned",
        f"connections       {summary['connections_active']} in flight",
        f"reloads           {pairs(summary['reloads'])}"
        + ("" if summary["last_reload_ok"] else "  (LAST RELOAD REFUSED)"),
        f"quota             warnings {quota['warnings']}  limits hit {quota['limits_hit']}  "
        f"backend {'up' if quota['backend_up'] else 'DOWN'}",
        f"audit errors      {summary['audit_errors']}",
    ]
    return "\n".join(lines)
