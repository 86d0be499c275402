"""Extraction throughput: menshen's Extractor against a bare stdlib parse, same run.

In:  `run(quick=False)`; standalone: `python bench/bench_extraction.py [--quick]`.
Out: a JSON-able dict: corpus size, msgs/s and MB/s of both methods (median of interleaved
     repetitions), and ratio_vs_stdlib (Extractor msgs/s / baseline msgs/s; below 1 means
     the Extractor is slower, which it is: it also renders HTML, decodes headers, names
     and attachment text).
Fails: raises only if the corpus or the extractor cannot be imported.
Thread safety: single-threaded by design; run it alone on a quiet machine.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import generate_corpus
from menshen.extraction import Extractor
from menshen.model import ExtractionLimits


def stdlib_baseline(raw: bytes) -> int:
    """compat32 parse + walk + transfer-decode and charset-decode of the text parts."""
    message: Message = BytesParser(policy=compat32).parsebytes(raw)
    chars = 0
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                chars += len(payload.decode(charset, "replace"))
            except LookupError:
                chars += len(payload.decode("utf-8", "replace"))
    return chars


def _time_once(fn: Callable[[bytes], object], corpus: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in corpus:
        fn(raw)
    return time.perf_counter() - start


def run(quick: bool = False) -> dict[str, object]:
    n, repetitions = (60, 5) if quick else (300, 7)
    corpus = generate_corpus(n, seed=1)
    total_bytes = sum(len(raw) for raw in corpus)
    extractor = Extractor(ExtractionLimits())
    methods: dict[str, Callable[[bytes], object]] = {
        "extractor": extractor.extract,
        "stdlib_compat32": stdlib_baseline,
    }
    for fn in methods.values():  # warm-up: imports, codec lookups, regex compilation
        _time_once(fn, corpus[:10])
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repetitions):
        for name, fn in methods.items():  # interleaved, so drift hits both alike
            times[name].append(_time_once(fn, corpus))
    result: dict[str, object] = {
        "messages": n,
        "corpus_mb": round(total_bytes / 1e6, 2),
        "mean_kb": round(total_bytes / n / 1e3, 1),
        "repetitions": repetitions,
    }
    rates: dict[str, float] = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        rates[name] = n / median
        result[name] = {
            "msgs_per_s": round(n / median, 1),
            "mb_per_s": round(total_bytes / 1e6 / median, 1),
            "median_s": round(median, 4),
            "spread_s": round(max(samples) - min(samples), 4),
        }
    result["ratio_vs_stdlib"] = round(rates["extractor"] / rates["stdlib_compat32"], 3)
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2))
