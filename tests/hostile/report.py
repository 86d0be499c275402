"""Measure every hostile-input case and write the table into docs/RELIABILITY.md.

In:  `python tests/hostile/report.py [--repeats N] [--output FILE] [CASE ...]`, run by
     `make hostile-report`. Each case is evaluated N times (default 3), each time in a
     fresh forked child of this process (isolation.run_isolated), through the real engine
     on the built-in configuration.
Out: the table between the markers `<!-- hostile-report:start -->` and
     `<!-- hostile-report:end -->` in FILE (default docs/RELIABILITY.md) is replaced:
     per case the message size, the verdict and the limits reported, the worst
     extraction and total time, the worst peak RSS of the child while evaluating and the
     worst RSS growth over the level before evaluating; plus the verdict rate. The rest
     of FILE is left as it is. The table is also printed.
Fails: exit status 1 when a case gave a verdict its row does not allow, raised, or hung
     (the table is still written, with the failure in the verdict column).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hostile_cases import CASES, HostileCase  # noqa: E402
from isolation import Measurement, run_isolated  # noqa: E402

from menshen.composition import assemble  # noqa: E402
from menshen.config import load_config  # noqa: E402

START = "<!-- hostile-report:start -->"
END = "<!-- hostile-report:end -->"
MB = 1 << 20
_INFORMATIONAL = frozenset({"MIME_DEFECT", "MIME_LIMIT"})


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _ok(case: HostileCase, result: Measurement) -> bool:
    return (
        not result.error
        and not result.problems
        and result.action in {verdict.value for verdict in case.verdicts}
        and case.limits <= set(result.limits)
        and case.codes <= set(result.codes)
    )


def _verdict(case: HostileCase, runs: list[Measurement]) -> str:
    bad = [run for run in runs if not _ok(case, run)]
    if bad:
        first = bad[0]
        error = first.error.strip().splitlines()[-1] if first.error else first.action
        return f"**FAILED**: {error[:60]}"
    result = runs[0]
    why = list(result.limits) or [
        code.removeprefix("ATTACHMENT_").lower()
        for code in result.codes
        if code not in _INFORMATIONAL
    ]
    return f"{result.action} ({', '.join(why)})" if why else result.action


def measure(cases: list[HostileCase], repeats: int) -> tuple[list[str], int]:
    engine = assemble(load_config(None)).engine
    rows = [
        "| case | input | size | verdict (limits hit, or findings) | extract s | total s "
        "| peak RSS MB "
        "| RSS growth MB |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    failures = 0
    for case in cases:
        runs = [run_isolated(case, lambda: engine) for _ in range(repeats)]
        if any(not _ok(case, run) for run in runs):
            failures += 1
        rows.append(
            f"| `{case.name}` | {case.what} | {max(r.size for r in runs) / MB:.2f} MB "
            f"| {_verdict(case, runs)} "
            f"| {max(r.extract_seconds for r in runs):.3f} "
            f"| {max(r.total_seconds for r in runs):.3f} "
            f"| {max(r.peak_rss for r in runs) / MB:.0f} "
            f"| {max(r.rss_growth for r in runs) / MB:.0f} |"
        )
        print(rows[-1], flush=True)
    return rows, failures


def render(rows: list[str], failures: int, total: int, repeats: int, seconds: float) -> str:
    answered = total - failures
    return "\n".join(
        [
            START,
            "",
            f"Measured {time.strftime('%Y-%m-%d')} on {_cpu_model()} ({platform.machine()}), "
            f"Python {platform.python_version()}, built-in configuration; worst of "
            f"{repeats} runs per case, each in a fresh forked process; {seconds:.0f} s in all.",
            f"**Verdict rate: {answered} of {total} cases answered as their row allows** "
            "(no traceback, no tempfail, no hang).",
            "",
            *rows,
            "",
            END,
        ]
    )


def write(document: Path, block: str) -> None:
    text = document.read_text(encoding="utf-8") if document.exists() else ""
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    document.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="measure the hostile-input cases")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=HERE.parents[1] / "docs/RELIABILITY.md")
    parser.add_argument("cases", nargs="*", metavar="CASE")
    args = parser.parse_args(argv)
    known = {case.name: case for case in CASES}
    unknown = [name for name in args.cases if name not in known]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    cases = [known[name] for name in args.cases] if args.cases else list(CASES)
    started = time.monotonic()
    rows, failures = measure(cases, args.repeats)
    block = render(rows, failures, len(cases), args.repeats, time.monotonic() - started)
    if not args.cases:  # a partial run never replaces the recorded table
        write(args.output, block)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
