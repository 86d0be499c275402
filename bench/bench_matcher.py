"""Keyword matcher benchmark: throughput on CJK-heavy text, build cost, and a `re` baseline.

In:  nothing (the wordlists and the haystack are generated from a fixed seed: half CJK terms
     of 2-6 characters drawn from the 3,755 level-1 hanzi of GB 2312, half Latin words of at
     least 6 letters; a ~1 MB UTF-8 haystack, ~70 % CJK, with a few planted hits).
Out: ``run(quick)`` returns a JSON-able dict (MB/s are megabytes of UTF-8 input per second,
     median of the repetitions); ``python bench/bench_matcher.py [--quick]`` prints it.
Fails: only on a broken installation.
Thread safety: single-threaded by design (the search holds the GIL anyway).
"""

from __future__ import annotations

import json
import random
import re
import statistics
import sys
import time
from collections.abc import Callable

from menshen.keywords.matcher import KeywordMatcher
from menshen.keywords.wordlist import Term, Wordlist
from menshen.text.normalise import normalise

SEED = 20240601
LATIN = "abcdefghijklmnopqrstuvwxyz"


def common_hanzi() -> list[str]:
    """GB 2312 level 1: the 3,755 most common hanzi, in rows 0xB0-0xD7."""
    chars = []
    for row in range(0xB0, 0xD8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.append(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def make_terms(count: int, rng: random.Random, hanzi: list[str]) -> list[str]:
    terms: set[str] = set()
    while len(terms) < count:
        if len(terms) % 2:
            terms.add("".join(rng.choice(hanzi) for _ in range(rng.randint(2, 6))))
        else:
            terms.add("".join(rng.choice(LATIN) for _ in range(rng.randint(6, 10))))
    return sorted(terms)


def make_haystack(size: int, rng: random.Random, hanzi: list[str], plant: list[str]) -> str:
    pieces: list[str] = []
    total = 0
    punct = ["，", "。", "、", "：", ""]
    while total < size:
        if rng.random() < 0.8:
            piece = "".join(rng.choice(hanzi) for _ in range(rng.randint(4, 20))) + rng.choice(
                punct
            )
        else:
            piece = (
                " "
                + " ".join(
                    "".join(rng.choice(LATIN) for _ in range(rng.randint(2, 9)))
                    for _ in range(rng.randint(1, 6))
                )
                + " "
            )
        pieces.append(piece)
        total += len(piece.encode("utf-8"))
    for term in plant:
        pieces.insert(rng.randrange(len(pieces)), f" {term} ")
    return "".join(pieces)


def median_seconds(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def wordlist(terms: list[str]) -> Wordlist:
    return Wordlist(
        "bench",
        "bench.txt",
        tuple(Term(t, normalise(t), "bench", "bench.txt", i + 1) for i, t in enumerate(terms)),
    )


def run(quick: bool = False) -> dict[str, object]:
    rng = random.Random(SEED)
    hanzi = common_hanzi()
    repeat = 5
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    all_terms = make_terms(max(sizes), rng, hanzi)
    planted = all_terms[:10]
    haystack = make_haystack(256_000 if quick else 1_000_000, rng, hanzi, planted)
    normalised = normalise(haystack)
    mb = len(haystack.encode("utf-8")) / 1e6
    mb_normalised = len(normalised.encode("utf-8")) / 1e6
    result: dict[str, object] = {
        "haystack_mb": round(mb, 3),
        "haystack_cjk_share": round(sum(ch >= "\u4e00" for ch in haystack) / len(haystack), 3),
        "repetitions": repeat,
        "normalise_mb_s": round(mb / median_seconds(lambda: normalise(haystack), repeat), 1),
        "sizes": {},
    }
    per_size: dict[str, dict[str, float | int]] = {}
    for size in sizes:
        terms = all_terms[:size] if size == max(sizes) else rng.sample(all_terms, size)
        terms = sorted(set(terms) | set(planted))
        start = time.perf_counter()
        matcher = KeywordMatcher.build([wordlist(terms)])
        build = time.perf_counter() - start
        found = sum(m.count for m in matcher.find(normalised, max_hits=10**9))

        def find_only(m: KeywordMatcher = matcher) -> object:
            return m.find(normalised, max_hits=10**9)

        def normalise_and_find(m: KeywordMatcher = matcher) -> object:
            return m.find(normalise(haystack), max_hits=10**9)

        find_s = median_seconds(find_only, repeat)
        both_s = median_seconds(normalise_and_find, repeat)
        per_size[str(size)] = {
            "terms": len(terms),
            "build_s": round(build, 3),
            "find_mb_s": round(mb_normalised / find_s, 1),
            "normalise_find_mb_s": round(mb / both_s, 1),
            "hits": found,
        }
    result["sizes"] = per_size

    baseline: dict[str, float | int] = {}
    terms_1k = sorted(set(rng.sample(all_terms, 1_000)) | set(planted))
    pattern = re.compile("|".join(re.escape(normalise(t)) for t in terms_1k))
    sample = normalised[:200_000]
    re_s = median_seconds(lambda: sum(1 for _ in pattern.finditer(sample)), 3)
    re_mb_s = len(sample.encode("utf-8")) / 1e6 / re_s
    baseline["re_1k_mb_s"] = round(re_mb_s, 2)
    find_1k = per_size["1000"]["find_mb_s"]
    baseline["ratio_find_vs_re_1k"] = round(float(find_1k) / re_mb_s, 1)
    if not quick:
        pattern_10k = re.compile(
            "|".join(re.escape(normalise(t)) for t in sorted(set(all_terms[:10_000])))
        )
        short = normalised[:20_000]
        re10_s = median_seconds(lambda: sum(1 for _ in pattern_10k.finditer(short)), 1)
        baseline["re_10k_mb_s"] = round(len(short.encode("utf-8")) / 1e6 / re10_s, 3)
    result["re_baseline"] = baseline
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2, ensure_ascii=False))
