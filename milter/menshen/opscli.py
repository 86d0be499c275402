"""Operators' commands: `menshen quarantine list|show|release|delete`, `menshen stats` and
`menshen wordlist report`.

In:  argparse subcommands registered on the main parser by cli.py (register()), the
     configuration (headers.reason, quarantine.postfix_config_directory, metrics) and, for
     the quarantine, Postfix's tools.
Out: text, or JSON with --json, on stdout. Exit status:
       quarantine list   0 (even when nothing is held)
       quarantine show|release|delete   0 done, 1 no such message in the hold queue
       stats, wordlist report   0
     and 2 for a configuration error, a Postfix tool that fails or an endpoint that cannot
     be read (one line on stderr).
Fails: never with a traceback; the errors of quarantine.py and stats.py become exit 2.
Thread safety: single-threaded commands.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from menshen.composition import wordlist_source
from menshen.config import Config
from menshen.keywords.wordlist import load_wordlist_dir
from menshen.printable import printable
from menshen.quarantine import HoldQueue, NotHeldError, QuarantineError
from menshen.stats import StatsError, render, scrape, summarise
from menshen.wordlistreport import ReportError, build_report, read_records
from menshen.wordlistreport import render as render_report

EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_ERROR = 2

AddConfig = Callable[[argparse.ArgumentParser], None]
LoadConfig = Callable[[argparse.Namespace], Config]


def register(
    commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_config: AddConfig,
    load: LoadConfig,
) -> None:
    """Add the quarantine and stats commands; `load` reads the config the usual way."""
    quarantine = commands.add_parser(
        "quarantine",
        help="list, show, release or delete messages held in Postfix's hold queue",
        description="Quarantined mail is in Postfix's hold queue; these wrap postqueue, "
        "postcat and postsuper (release and delete need root), and show menshen's reason.",
    )
    sub = quarantine.add_subparsers(title="quarantine commands", metavar="COMMAND")

    def common(parser: argparse.ArgumentParser) -> None:
        add_config(parser)
        parser.add_argument(
            "-C",
            "--postfix-config",
            type=Path,
            metavar="DIR",
            help="Postfix config_directory of the instance "
            "(default: quarantine.postfix_config_directory, else Postfix's default)",
        )

    listing = sub.add_parser("list", help="held messages with menshen's reason")
    common(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=lambda args: _list(args, load))

    show = sub.add_parser("show", help="envelope and headers of a held message (postcat)")
    common(show)
    show.add_argument("--body", action="store_true", help="the body too")
    show.add_argument("queue_id", metavar="ID")
    show.set_defaults(handler=lambda args: _show(args, load))

    for name, verb in (("release", "deliver"), ("delete", "delete")):
        action = sub.add_parser(name, help=f"{verb} a held message (postsuper)")
        common(action)
        action.add_argument("queue_id", metavar="ID")
        action.set_defaults(handler=lambda args, name=name: _act(args, load, name))

    stats = commands.add_parser(
        "stats",
        help="print the running daemon's counters",
        description="Read the daemon's metrics endpoint (the metrics section of the "
        "config) and print the counters since it started.",
    )
    add_config(stats)
    stats.add_argument("--url", help="metrics URL (default: from the metrics section)")
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(handler=lambda args: _stats(args, load))


def register_wordlist_report(
    wordlist_commands: argparse._SubParsersAction,  # type: ignore[type-arg]
    add_config: AddConfig,
    load: LoadConfig,
) -> None:
    """Add `menshen wordlist report` under the wordlist command."""
    report = wordlist_commands.add_parser(
        "report",
        help="what the lists caught, from the audit trail",
        description="Messages per category, per term (with audit.include_terms) and the "
        "terms that never hit, read from the audit trail (.gz files too). Exit 0, or 2 when "
        "a file cannot be read.",
    )
    add_config(report)
    report.add_argument(
        "--audit",
        action="append",
        type=Path,
        metavar="FILE",
        help="audit file (repeatable; default: audit.file)",
    )
    report.add_argument("--since", metavar="DATE", help="ISO date or time (UTC when no zone)")
    report.add_argument("--wordlists", type=Path, metavar="DIR", help="lists to report on")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(handler=lambda args: _wordlist_report(args, load))


def _wordlist_report(args: argparse.Namespace, load: LoadConfig) -> int:
    config = load(args)
    since = None
    if args.since is not None:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            return _fail(f"--since {args.since!r}: expected an ISO date such as 2026-12-01")
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    paths = args.audit or [config.audit.file]
    wordlists = load_wordlist_dir(wordlist_source(config, args.wordlists))
    try:
        report = build_report(read_records(paths, since), wordlists)
    except ReportError as exc:
        return _fail(str(exc))
    if args.json:
        json.dump(report, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_report(report))
    return EXIT_OK


def _queue(args: argparse.Namespace, config: Config) -> HoldQueue:
    directory = args.postfix_config or config.quarantine.postfix_config_directory
    return HoldQueue(directory, config.policy.headers.reason)


def _fail(message: str) -> int:
    print(f"menshen: {message}", file=sys.stderr)
    return EXIT_ERROR


def _list(args: argparse.Namespace, load: LoadConfig) -> int:
    try:
        held = _queue(args, load(args)).list()
    except QuarantineError as exc:
        return _fail(str(exc))
    if args.json:
        json.dump([m.as_json() for m in held], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for message in held:
        arrived = message.arrival.strftime("%Y-%m-%d %H:%M:%S")
        recipients = ", ".join(printable(r) for r in message.recipients)
        print(
            f"{message.queue_id}  {arrived}Z  {message.size:>9}  "
            f"{printable(message.sender) or '<>'} -> {recipients}"
        )
        print(f"    reason: {printable(message.reason) or '(not held by menshen)'}")
    print(f"-- {len(held)} held message{'s' if len(held) != 1 else ''}")
    return EXIT_OK


def _show(args: argparse.Namespace, load: LoadConfig) -> int:
    try:
        queue = _queue(args, load(args))
        message = queue.get(args.queue_id)
        text = queue.show(args.queue_id, body=args.body)
    except NotHeldError as exc:
        print(f"menshen: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except QuarantineError as exc:
        return _fail(str(exc))
    print(f"menshen reason: {printable(message.reason) or '(not held by menshen)'}")
    sys.stdout.write(text)
    return EXIT_OK


def _act(args: argparse.Namespace, load: LoadConfig, name: str) -> int:
    try:
        queue = _queue(args, load(args))
        if name == "release":
            queue.release(args.queue_id)
        else:
            queue.delete(args.queue_id)
    except NotHeldError as exc:
        print(f"menshen: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except QuarantineError as exc:
        return _fail(str(exc))
    print(f"{args.queue_id}: {'released' if name == 'release' else 'deleted'}")
    return EXIT_OK


def _stats(args: argparse.Namespace, load: LoadConfig) -> int:
    url = args.url
    if url is None:
        settings = load(args).metrics
        if not settings.enabled:
            return _fail("metrics are disabled (metrics.enabled: false); nothing to read")
        host = f"[{settings.address}]" if ":" in settings.address else settings.address
        if settings.address in ("0.0.0.0", "::"):
            host = "127.0.0.1" if settings.address == "0.0.0.0" else "[::1]"
        url = f"http://{host}:{settings.port}/metrics"
    try:
        summary = summarise(scrape(url))
    except StatsError as exc:
        return _fail(str(exc))
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(summary, url))
    return EXIT_OK
