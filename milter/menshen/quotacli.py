"""Operators' quota commands: `menshen quota show KEY` and `menshen quota reset KEY`.

In:  argparse subcommands registered on the main parser by cli.py (register()); KEY is an
     identity as a rule counts it: a sender address, a SASL login, a sender domain or a
     client address (grouped by the rule's prefix). The configured store is read directly,
     so the commands work whether or not the daemon runs.
Out: show: one row per rule that can count KEY (used, limit, window, when it resets), or
     JSON with --json; reset: how many counters were cleared.
     Exit status 0 done, 1 no rule counts such a key, 2 configuration or store error.
Fails: a store that cannot be read is one line on stderr and exit 2 (QuotaStoreError).
Thread safety: single-threaded commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from menshen.composition import quota_limiter
from menshen.config import Config
from menshen.opscli import EXIT_ERROR, EXIT_OK, AddConfig, LoadConfig
from menshen.quota import QuotaStoreError, UsageRow

EXIT_NO_RULE = 1


def register(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_config: AddConfig,
    load: LoadConfig,
) -> None:
    quota = commands.add_parser(
        "quota",
        help="show or reset what a sender has used of its quotas",
        description="Read or clear the quota counters in the configured store "
        "(quotas.store), whether or not the daemon is running.",
    )
    sub = quota.add_subparsers(title="quota commands", metavar="COMMAND")
    show = sub.add_parser("show", help="usage per rule, limit and reset time")
    add_config(show)
    show.add_argument("--json", action="store_true", help="print a JSON array")
    show.add_argument("key", metavar="KEY", help="sender, SASL login, domain or client IP")
    show.set_defaults(handler=lambda args: _show(args, load))
    reset = sub.add_parser("reset", help="clear the counters of KEY under every rule")
    add_config(reset)
    reset.add_argument("key", metavar="KEY", help="sender, SASL login, domain or client IP")
    reset.set_defaults(handler=lambda args: _reset(args, load))


def _show(args: argparse.Namespace, load: LoadConfig) -> int:
    config = load(args)
    try:
        rows = quota_limiter(config.quotas).report(args.key)
    except QuotaStoreError as exc:
        print(f"menshen: quota store: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.json:
        json.dump([_row_json(row, config) for row in rows], sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif rows:
        _print_rows(rows, config)
    if not config.quotas.enabled:
        print(f"note: quotas are disabled in {config.source}", file=sys.stderr)
    if not rows:
        print(f"menshen: no quota rule counts {args.key!r}", file=sys.stderr)
        return EXIT_NO_RULE
    return EXIT_OK


def _reset(args: argparse.Namespace, load: LoadConfig) -> int:
    config = load(args)
    limiter = quota_limiter(config.quotas)
    try:
        if not limiter.report(args.key):
            print(f"menshen: no quota rule counts {args.key!r}", file=sys.stderr)
            return EXIT_NO_RULE
        cleared = limiter.reset(args.key)
    except QuotaStoreError as exc:
        print(f"menshen: quota store: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"cleared {cleared} counter(s) of {args.key}")
    return EXIT_OK


def _resets(row: UsageRow, config: Config) -> str:
    if row.resets_at is None:
        return "rolling"
    local = datetime.fromtimestamp(row.resets_at, UTC).astimezone(config.quotas.zone)
    return local.isoformat(timespec="minutes")


def _row_json(row: UsageRow, config: Config) -> dict[str, object]:
    return {
        "rule": row.rule,
        "key": row.key,
        "identity": row.identity,
        "used": row.used,
        "limit": row.limit,
        "window": row.window,
        "resets": _resets(row, config),
    }


def _print_rows(rows: list[UsageRow], config: Config) -> None:
    table = [("RULE", "KEY", "IDENTITY", "USED", "LIMIT", "WINDOW", "RESETS")]
    for row in rows:
        limit = "unlimited" if row.limit is None else str(row.limit)
        table.append(
            (
                row.rule,
                row.key,
                row.identity,
                str(row.used),
                limit,
                row.window,
                _resets(row, config),
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
