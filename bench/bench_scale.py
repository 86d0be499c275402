"""Scale sweeps: CPU per message against message size, and the matcher against list size.

In:  `run(quick=False)`; standalone: `python bench/bench_scale.py [--quick]`.
     Sizes: messages of 10 KB, 100 KB, 1 MB, 5 MB and 25 MB, each one fifth text (a body
     half Chinese, half English, in UTF-8 base64) and four fifths a base64 attachment of
     random bytes, through `Engine.evaluate` with the shipped configuration (keywords and
     attachment rules, no antivirus: clamd's cost is clamd's). Wordlists: 100 to 1,000,000
     terms (half CJK, half Latin, bench_matcher's generator) over bench_matcher's mixed
     haystack.
Out: a JSON-able dict: per size the CPU ms per message and per MB (median of interleaved
     repetitions)
     and the ratio of the per-MB cost at 25 MB to that at 1 MB; per wordlist size the build
     seconds, the automaton's RSS growth and `find` MB/s.
Fails: only on a broken installation.
Thread safety: single-threaded.
"""

from __future__ import annotations

import base64
import json
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_matcher import common_hanzi, make_mixed_haystack, make_terms, wordlist
from corpus import cjk_heavy_text
from menshen.composition import assemble
from menshen.config import load_config
from menshen.keywords.matcher import KeywordMatcher
from menshen.model import Envelope
from menshen.text.normalise import normalise

SIZES = (10_000, 100_000, 1_000_000, 5_000_000, 25_000_000)
TERM_COUNTS = (100, 1_000, 10_000, 100_000, 1_000_000)


def message_of(size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    text_bytes = size // 5
    text = cjk_heavy_text(max(200, text_bytes // 3), seed).encode("utf-8")[:text_bytes]
    attachment = rng.randbytes(max(1, (size - text_bytes) * 3 // 4))
    boundary = f"scale{seed}"
    parts = [
        "From: a@example.com\r\nTo: b@example.net\r\nSubject: scale\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n',
        f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n",
        base64.encodebytes(text).decode("ascii").replace("\n", "\r\n"),
        f"--{boundary}\r\nContent-Type: application/pdf; name=report.pdf\r\n"
        "Content-Transfer-Encoding: base64\r\n"
        'Content-Disposition: attachment; filename="report.pdf"\r\n\r\n',
        base64.encodebytes(b"%PDF-1.4\n" + attachment).decode("ascii").replace("\n", "\r\n"),
        f"--{boundary}--\r\n",
    ]
    return "".join(parts).encode("ascii")


def size_sweep(quick: bool) -> dict[str, Any]:
    engine = assemble(load_config(None)).engine
    envelope = Envelope(client_ip="192.0.2.1", sender="a@example.com", recipients=("b@x",))
    messages = {size: message_of(size, seed=size) for size in (SIZES[:4] if quick else SIZES)}
    samples: dict[int, list[float]] = {size: [] for size in messages}
    actions = {}
    for size, raw in messages.items():  # warm
        actions[size] = engine.evaluate(envelope, raw).action.value
    for _ in range(3 if quick else 7):
        for size, raw in messages.items():  # interleaved, so drift hits every size alike
            started = time.process_time()
            engine.evaluate(envelope, raw)
            samples[size].append(time.process_time() - started)
    rows = []
    for size, raw in messages.items():
        cpu_ms = 1000 * statistics.median(samples[size])
        rows.append(
            {
                "bytes": len(raw),
                "action": actions[size],
                "cpu_ms": round(cpu_ms, 3),
                "cpu_ms_per_mb": round(cpu_ms / (len(raw) / 1e6), 3),
            }
        )
    by_size = {row["bytes"] // 1_000_000: row for row in rows if row["bytes"] >= 1_000_000}
    ratio = None
    if 25 in by_size and 1 in by_size:
        ratio = round(by_size[25]["cpu_ms_per_mb"] / by_size[1]["cpu_ms_per_mb"], 3)
    return {"sizes": rows, "per_mb_25_vs_1": ratio}


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def wordlist_sweep(quick: bool) -> list[dict[str, Any]]:
    rng = random.Random(20240601)
    hanzi = common_hanzi()
    haystack = normalise(make_mixed_haystack(100_000, rng, hanzi, []))
    mb = len(haystack.encode("utf-8")) / 1e6
    rows = []
    for count in TERM_COUNTS[:4] if quick else TERM_COUNTS:
        terms = make_terms(count, random.Random(count), hanzi)
        before = _rss_kb()
        started = time.perf_counter()
        matcher = KeywordMatcher.build([wordlist(terms)])
        build_s = time.perf_counter() - started
        grown = _rss_kb() - before
        samples = []
        for _ in range(5):
            began = time.process_time()
            matcher.find(haystack)
            samples.append(time.process_time() - began)
        rows.append(
            {
                "terms": count,
                "build_s": round(build_s, 3),
                "rss_mb": round(grown / 1024, 1),
                "find_mb_s": round(mb / statistics.median(samples), 2),
            }
        )
        del matcher
    return rows


def run(quick: bool = False) -> dict[str, Any]:
    return {"message_size": size_sweep(quick), "wordlist_size": wordlist_sweep(quick)}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
