"""Run the atheris fuzz targets for a given time each; record CPU time and crashes.

In:  `python fuzz/run.py [--seconds N] [--work DIR] [TARGET ...]` (no TARGET: all of
     fuzz_targets.TARGETS, one after another). `make fuzz` runs it with FUZZ_SECONDS.
     `python fuzz/run.py --child TARGET [libFuzzer options] [corpus dirs]` is one
     libFuzzer process (what the parent starts; usable by hand, e.g. to reproduce a
     crash file: `python fuzz/run.py --child extract CRASH-FILE`).
Out: per target a line "TARGET: N s CPU, exit S, crashes K, corpus C files"; each run is
     appended as one JSON line to WORK/results.jsonl (time, target, cpu_seconds, runs,
     exit status, crash files), so runs add up. `--summary` prints them as a table
     (CPU time of runs without a crash, per target; `--since TIME` counts only runs
     started at TIME or later, e.g. since the last fix); `--record DOC` also writes that
     table between the fuzz-record markers of DOC (docs/RELIABILITY.md). New corpus entries go to
     WORK/TARGET/corpus (not committed); crash, timeout and out-of-memory inputs go to
     WORK/TARGET/artifacts/. The committed seeds in fuzz/corpus/TARGET are read only.
Fails: exit status 1 when any target found a crash (libFuzzer exits non-zero), 2 when
     atheris is not installed.
Bounds: per input 10 s (-timeout) and 2048 MB RSS (-rss_limit_mb); inputs up to 64 KB.
     The instrumented modules are menshen's own plus the stdlib and PyYAML parsers they
     drive (email, html, zipfile, yaml), so coverage guides the fuzzer through those too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
DICTIONARIES = HERE / "dictionaries"
INSTRUMENTED = ["menshen", "email", "html", "zipfile", "yaml", "fuzz_targets"]
LIBFUZZER_OPTIONS = ["-timeout=10", "-rss_limit_mb=2048", "-max_len=65536"]
TARGET_NAMES = ("extract", "normalise", "wordlist", "config", "engine")
DICTIONARY = {
    "extract": "mime.dict",
    "engine": "mime.dict",
    "config": "yaml.dict",
    "normalise": "text.dict",
    "wordlist": "text.dict",
}


def child(target: str, options: list[str]) -> None:
    """One libFuzzer process for `target`; never returns (libFuzzer exits)."""
    _background()
    try:
        import atheris  # type: ignore[import-not-found,import-untyped,unused-ignore]  # noqa: PLC0415
    except ImportError:
        print("atheris is not installed: pip install -e '.[dev]'", file=sys.stderr)
        sys.exit(2)
    sys.path.insert(0, str(HERE))
    with atheris.instrument_imports(include=INSTRUMENTED):
        import fuzz_targets  # noqa: PLC0415

    atheris.Setup([sys.argv[0], *options], fuzz_targets.TARGETS[target])
    atheris.Fuzz()


def run_target(target: str, seconds: int, work: Path) -> dict[str, object]:
    corpus = work / target / "corpus"
    artifacts = work / target / "artifacts"
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    seeds = CORPUS / ("extract" if target == "engine" else target)
    before = set(artifacts.iterdir())
    options = [
        *LIBFUZZER_OPTIONS,
        f"-max_total_time={seconds}",
        f"-dict={DICTIONARIES / DICTIONARY[target]}",
        f"-artifact_prefix={artifacts}/",
        "-print_final_stats=1",
        str(corpus),
        str(seeds),
    ]
    log = work / target / "last-run.log"
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    with log.open("wb") as output:
        status = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", target, *options],
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
            start_new_session=True,  # its own autogroup, which _background() lowers
        ).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    runs = 0
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("stat::number_of_executed_units:"):
            runs = int(line.split(":")[-1])
    crashes = sorted(str(p) for p in set(artifacts.iterdir()) - before)
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "target": target,
        "seconds": seconds,
        "cpu_seconds": round(cpu, 1),
        "runs": runs,
        "exit": status,
        "crashes": crashes,
        "corpus_files": len(list(corpus.iterdir())),
    }


def summary(results: Path, since: str = "") -> str:
    """A markdown table of the recorded runs (those started at `since` or later, an ISO
    UTC time such as 2026-01-31T12:00:00Z): CPU time without a crash, per target."""
    clean: dict[str, float] = dict.fromkeys(TARGET_NAMES, 0.0)
    crashed: dict[str, float] = dict.fromkeys(TARGET_NAMES, 0.0)
    crashes: dict[str, int] = dict.fromkeys(TARGET_NAMES, 0)
    runs: dict[str, int] = dict.fromkeys(TARGET_NAMES, 0)
    first = last = ""
    lines = results.read_text(encoding="utf-8").splitlines() if results.exists() else []
    for line in lines:
        record = json.loads(line)
        if str(record["time"]) < since:
            continue
        target = str(record["target"])
        first, last = first or str(record["time"]), str(record["time"])
        runs[target] += int(record["runs"])
        if record["exit"] == 0 and not record["crashes"]:
            clean[target] += float(record["cpu_seconds"])
        else:
            crashed[target] += float(record["cpu_seconds"])
            crashes[target] += max(len(record["crashes"]), 1)
    rows = [
        f"Runs recorded from {first or '-'} to {last or '-'} (`{results.name}`).",
        "",
        "| target | CPU s without a crash | executions | CPU s of runs that crashed | crashes |",
        "|---|---:|---:|---:|---:|",
    ]
    for target in TARGET_NAMES:
        rows.append(
            f"| `{target}` | {clean[target]:.0f} | {runs[target]} "
            f"| {crashed[target]:.0f} | {crashes[target]} |"
        )
    total = sum(clean.values())
    rows.append(
        f"| **all** | **{total:.0f}** ({total / 3600:.2f} CPU-hours) | {sum(runs.values())} "
        f"| {sum(crashed.values()):.0f} | {sum(crashes.values())} |"
    )
    return "\n".join(rows)


def record(document: Path, table: str) -> None:
    """Replace the block between the fuzz-record markers of `document` with `table`."""
    start, end = "<!-- fuzz-record:start -->", "<!-- fuzz-record:end -->"
    text = document.read_text(encoding="utf-8")
    head, found, rest = text.partition(start)
    if not found or end not in rest:
        raise SystemExit(f"{document}: no {start} ... {end} block")
    document.write_text(f"{head}{start}\n{table}\n{end}{rest.partition(end)[2]}", "utf-8")


def _background() -> None:
    """Yield the CPU to everything else, for real.

    With the kernel's autogroup scheduling (Debian's default), `nice` only orders processes
    within one session, and sessions share the CPU equally: a niced fuzzer still takes a
    whole core from the tests and benchmarks in other sessions. So each libFuzzer process
    runs in a session of its own (start_new_session) and lowers that session's autogroup.
    """
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text("19\n")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2:])
    parser = argparse.ArgumentParser(description="run the atheris fuzz targets")
    parser.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    parser.add_argument("--work", type=Path, default=HERE.parent / ".fuzz", help="work dir")
    parser.add_argument("--summary", action="store_true", help="print WORK/results.jsonl")
    parser.add_argument("--record", type=Path, metavar="DOC", help="write the summary to DOC")
    parser.add_argument("--since", default="", metavar="TIME", help="summary: runs from TIME on")
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=", ".join(TARGET_NAMES))
    args = parser.parse_args(argv)
    if args.summary or args.record:
        table = summary(args.work / "results.jsonl", args.since)
        print(table)
        if args.record:
            record(args.record, table)
        return 0
    unknown = set(args.targets) - set(TARGET_NAMES)
    if unknown:
        parser.error(f"unknown targets: {', '.join(sorted(unknown))}")
    failed = False
    args.work.mkdir(parents=True, exist_ok=True)
    for target in args.targets or TARGET_NAMES:
        result = run_target(target, args.seconds, args.work)
        with (args.work / "results.jsonl").open("a", encoding="utf-8") as results:
            results.write(json.dumps(result) + "\n")
        crashes = result["crashes"]
        assert isinstance(crashes, list)
        print(
            f"{target}: {result['cpu_seconds']} s CPU, {result['runs']} runs, "
            f"exit {result['exit']}, crashes {len(crashes)}, corpus {result['corpus_files']} files",
            flush=True,
        )
        for crash in crashes:
            print(f"  {crash}", flush=True)
        failed = failed or result["exit"] != 0 or bool(crashes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
