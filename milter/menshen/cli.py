"""The `menshen` command line.

In:  argv. Subcommands: check, configtest, wordlist lint, wordlist test, serve, reload,
     quarantine and stats (menshen.opscli), quota (menshen.quotacli), version.
     serve and reload run and steer the milter daemon (see menshen.daemon).
Out: text (or one JSON object with --json) on stdout; problems on stderr.
Exit status, as clamdscan and linters use it:
  check       0 accept, 1 any other verdict (quarantine, reject, tempfail), 2 usage/config error
  configtest  0 "configuration OK", 2 the errors
  wordlist    lint: 0 clean, 1 issues found, 2 unreadable input; test: 0 no hit, 1 hits, 2 error
  serve       0 stopped by a signal, 1 cannot listen, 2 configuration error
  reload      0 signalled, 2 configuration refused or no daemon running
  quarantine  0 done, 1 no such held message, 2 error; stats 0, 2 endpoint unreadable
  quota       0 done, 1 no rule counts that key, 2 configuration or store error
Fails: never with a traceback; an unexpected failure prints one line and exits 2.
Thread safety: single-threaded command.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from menshen import __version__, opscli, quotacli
from menshen.composition import Assembly, assemble, wordlist_source
from menshen.config import SOCKET_SPEC, Config, ConfigError, config_path, load_config
from menshen.daemon import ServeOptions, read_pid_file
from menshen.keywords.lint import lint_wordlists
from menshen.keywords.wordlist import WordlistError
from menshen.model import Action, Envelope, ParsedMessage, TextSegment, Verdict, Where
from menshen.quota import QuotaStoreError
from menshen.supervisor import serve

EXIT_OK = 0
EXIT_VERDICT = 1
EXIT_ERROR = 2


class _UsageError(Exception):
    """Bad input from the command line (missing file and the like)."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "handler"):
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        _print_problems("configuration error", exc.problems)
        return EXIT_ERROR
    except WordlistError as exc:
        _print_problems("wordlist error", exc.problems)
        return EXIT_ERROR
    except QuotaStoreError as exc:
        print(f"menshen: quota store: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except _UsageError as exc:
        print(f"menshen: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_ERROR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="menshen",
        description="menshen: content-security milter for Postfix",
    )
    parser.add_argument("--version", action="version", version=f"menshen {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    check = commands.add_parser(
        "check",
        help="run the milter's engine over one message, without an MTA",
        description="Decide one message exactly as the milter would. Exit 0 accept, "
        "1 any other verdict, 2 usage or configuration error.",
    )
    _add_config(check)
    check.add_argument("--wordlists", metavar="DIR", type=Path, help=_WORDLISTS_HELP)
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.add_argument(
        "--from", dest="sender", default="", metavar="ADDR", help="envelope sender (MAIL FROM)"
    )
    check.add_argument(
        "--rcpt",
        action="append",
        default=[],
        metavar="ADDR",
        help="envelope recipient (repeatable)",
    )
    check.add_argument("--client-ip", default="", metavar="IP", help="connecting client address")
    check.add_argument("--helo", default="", metavar="NAME", help="HELO/EHLO name")
    check.add_argument("--auth", default="", metavar="USER", help="SASL login of the sender")
    check.add_argument("message", metavar="FILE.eml|-", help="the message; - reads stdin")
    check.set_defaults(handler=_check)

    configtest = commands.add_parser(
        "configtest",
        help="validate the configuration and the wordlists it names",
        description="Print 'configuration OK' (exit 0) or every error with file:line (exit 2).",
    )
    _add_config(configtest)
    configtest.set_defaults(handler=_configtest)

    wordlist = commands.add_parser("wordlist", help="check and try keyword lists")
    wordlist_commands = wordlist.add_subparsers(title="wordlist commands", metavar="COMMAND")
    lint = wordlist_commands.add_parser(
        "lint",
        help="report duplicates, terms that normalise to nothing and shadowed terms",
        description="Lint keyword lists: file:line: CODE message. Exit 0 clean, 1 issues, "
        "2 unreadable input. Without DIR, the configured lists.",
    )
    _add_config(lint)
    lint.add_argument("directory", nargs="?", type=Path, metavar="DIR")
    lint.set_defaults(handler=_wordlist_lint)
    test = wordlist_commands.add_parser(
        "test",
        help="show which terms a text or a message hits",
        description="Match a text (or, if the argument is a file, a whole message) against "
        "the lists. Exit 0 no hit, 1 hits, 2 error.",
    )
    _add_config(test)
    test.add_argument("--wordlists", metavar="DIR", type=Path, help=_WORDLISTS_HELP)
    test.add_argument("--json", action="store_true", help="print one JSON object")
    test.add_argument("input", metavar="TEXT|FILE.eml")
    test.set_defaults(handler=_wordlist_test)
    opscli.register_wordlist_report(wordlist_commands, _add_config, _load)

    serve = commands.add_parser(
        "serve",
        help="run the milter daemon in the foreground",
        description="Listen for Postfix on the configured socket. SIGTERM drains and stops; "
        "SIGUSR1 (or `menshen reload`) reloads the configuration and wordlists.",
    )
    _add_config(serve)
    serve.add_argument(
        "--socket", metavar="unix:PATH|inet:PORT@HOST", help="overrides milter.socket"
    )
    serve.add_argument("--pid-file", type=Path, metavar="PATH", help="overrides milter.pid_file")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="overrides milter.workers (1: a single process, no supervising parent)",
    )
    serve.set_defaults(handler=_serve)

    reload = commands.add_parser(
        "reload",
        help="check the configuration, then tell the running daemon to reload it",
        description="Validate the configuration and wordlists exactly as the daemon will; "
        "when they are sound, send SIGUSR1 to the pid in the pid file. Exit 0 signalled, "
        "2 refused (errors printed) or no daemon found.",
    )
    _add_config(reload)
    reload.add_argument("--pid-file", type=Path, metavar="PATH", help="overrides milter.pid_file")
    reload.set_defaults(handler=_reload)

    opscli.register(commands, _add_config, _load)
    quotacli.register(commands, _add_config, _load)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=lambda _args: print(f"menshen {__version__}") or EXIT_OK)
    return parser


_WORDLISTS_HELP = (
    "use the lists in DIR instead of the configured ones (every file a category; "
    "categories absent from the config get wordlists.default_action)"
)


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="configuration file (default: $MENSHEN_CONFIG, /etc/menshen/menshen.yml, "
        "else the built-in defaults)",
    )


def _load(args: argparse.Namespace) -> Config:
    return load_config(config_path(args.config))


# --- check --------------------------------------------------------------------------------


def _check(args: argparse.Namespace) -> int:
    config = _load(args)
    raw = _read_message(args.message)
    assembly = assemble(config, args.wordlists, charge_quota=False)
    envelope = Envelope(
        client_ip=args.client_ip,
        helo=args.helo,
        sender=args.sender.strip("<>"),
        recipients=tuple(r.strip("<>") for r in args.rcpt),
        auth_user=args.auth,
    )
    verdict = assembly.engine.evaluate(envelope, raw)
    if args.json:
        json.dump(_verdict_json(verdict, config), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        _print_verdict(verdict, config, sys.stdout)
    return EXIT_OK if verdict.action is Action.ACCEPT else EXIT_VERDICT


def _read_message(name: str) -> bytes:
    if name == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(name).read_bytes()
    except OSError as exc:
        raise _UsageError(f"{name}: cannot read: {exc.strerror or exc}") from None


def _verdict_json(verdict: Verdict, config: Config) -> dict[str, Any]:
    return {
        "action": verdict.action.value,
        "smtp_reply": str(verdict.reply) if verdict.reply else None,
        "reason": verdict.reason,
        "score": verdict.score,
        "mode": config.policy.mode.value,
        "monitored_action": verdict.monitored_action.value if verdict.monitored_action else None,
        "findings": [
            {
                "scanner": f.scanner,
                "code": f.code,
                "category": f.category or None,
                "term": f.term or None,
                "where": f.where or None,
                "part": f.part or None,
                "filename": f.filename or None,
                "count": f.count,
                "detail": f.detail or None,
            }
            for f in verdict.findings
        ],
        "headers": [{"name": name, "value": value} for name, value in verdict.headers],
        "quota": [
            {"code": f.code, "rule": f.category or None, "detail": f.detail or None}
            for f in verdict.findings
            if f.scanner == "quota"
        ],
        "timings": {stage: round(seconds, 6) for stage, seconds in verdict.timings},
    }


def _print_verdict(verdict: Verdict, config: Config, out: TextIO) -> None:
    action = verdict.action.value
    if verdict.monitored_action is not None:
        action += f" (monitor mode; enforce would {verdict.monitored_action.value})"
    print(f"action: {action}", file=out)
    if verdict.reply:
        print(f"reply:  {verdict.reply}", file=out)
    print(f"reason: {verdict.reason}", file=out)
    print(f"score:  {verdict.score:g}", file=out)
    for name, value in verdict.headers:
        print(f"header: {name}: {value}", file=out)
    if verdict.findings:
        print("findings:", file=out)
    for f in verdict.findings:
        place = f" in {f.where}" if f.where else ""
        place += f" (part {f.part})" if f.part else ""
        place += f" file {f.filename!r}" if f.filename else ""
        subject = f" {f.category}: {f.term!r}" if f.term else ""
        detail = f" {f.detail}" if f.detail else ""
        times = f" x{f.count}" if f.count != 1 else ""
        print(f"  {f.scanner} {f.code}{subject}{detail}{place}{times}", file=out)


# --- serve and reload ---------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    if args.socket is not None and not SOCKET_SPEC.match(args.socket):
        raise _UsageError(f"--socket {args.socket!r}: expected unix:/PATH or inet:PORT@HOST")
    if args.workers is not None and not 1 <= args.workers <= 256:
        raise _UsageError(f"--workers {args.workers}: expected 1 to 256")
    options = ServeOptions(
        config_file=config_path(args.config),
        socket=args.socket,
        pid_file=args.pid_file,
        workers=args.workers,
    )
    return serve(options)


def _reload(args: argparse.Namespace) -> int:
    config = _load(args)
    assemble(config, charge_quota=False)  # the daemon would refuse what fails here
    pid_file = args.pid_file or config.milter.pid_file
    if pid_file is None:
        raise _UsageError("no pid file: give --pid-file or set milter.pid_file")
    try:
        pid = read_pid_file(pid_file)
    except (OSError, ValueError) as exc:
        raise _UsageError(f"{pid_file}: no running daemon found ({exc})") from None
    os.kill(pid, signal.SIGUSR1)
    print(f"configuration OK; reload signalled to menshen (pid {pid})")
    return EXIT_OK


# --- configtest ---------------------------------------------------------------------------


def _configtest(args: argparse.Namespace) -> int:
    config = _load(args)
    assembly: Assembly = assemble(config, charge_quota=False)
    for note in assembly.notes:
        print(f"warning: {note}", file=sys.stderr)
    terms = sum(len(w.terms) for w in assembly.wordlists)
    print(f"configuration OK ({config.source}; {len(assembly.wordlists)} wordlists, {terms} terms)")
    return EXIT_OK


# --- wordlist -----------------------------------------------------------------------------


def _wordlist_lint(args: argparse.Namespace) -> int:
    if args.directory is not None:
        if not args.directory.is_dir():
            raise _UsageError(f"{args.directory}: not a directory")
        source: Any = args.directory
    else:
        source = wordlist_source(_load(args))
    issues = lint_wordlists(source)
    for issue in issues:
        print(issue)
    return EXIT_VERDICT if issues else EXIT_OK


def _wordlist_test(args: argparse.Namespace) -> int:
    config = _load(args)
    assembly = assemble(config, args.wordlists, charge_quota=False)
    path = Path(args.input)
    if path.is_file():
        verdict = assembly.engine.evaluate(Envelope(), path.read_bytes())
        findings = [f for f in verdict.findings if f.term]
    else:
        # Bare text: the engine's own keyword scanner over one segment, as if it were a body.
        message = ParsedMessage(
            size=len(args.input.encode("utf-8", "surrogateescape")),
            subject="",
            segments=(TextSegment(Where.BODY, "", args.input),),
        )
        findings = [f for f in assembly.keyword_scanner.scan(message, Envelope()) if f.term]
    if args.json:
        rows = [
            {
                "category": f.category,
                "term": f.term,
                "where": f.where,
                "part": f.part or None,
                "count": f.count,
            }
            for f in findings
        ]
        json.dump({"hits": rows}, sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    else:
        for f in findings:
            part = f" (part {f.part})" if f.part else ""
            print(f"{f.category}: {f.term!r} in {f.where}{part} x{f.count}")
        if not findings:
            print("no hit")
    return EXIT_VERDICT if findings else EXIT_OK


def _print_problems(title: str, problems: Sequence[str]) -> None:
    print(f"menshen: {title}:", file=sys.stderr)
    for problem in problems:
        print(f"  {problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
