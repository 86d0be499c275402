"""Keyword matcher benchmark: throughput, build cost, a `re` baseline, and normalisation.

In:  nothing; every input is generated from a fixed seed. Wordlists: half CJK terms of 2-6
     characters drawn from the 3,755 level-1 hanzi of GB 2312, half Latin words of 6-10
     letters. Two haystacks, each with ten planted terms (the "rare hits" regime):

     * the mixed haystack, the one the matcher goals were set on: 100 k characters, 127 KB
       of UTF-8, runs separated by single spaces, 30 % of them CJK runs (1-4 hanzi) and
       70 % Latin pseudo-words (2-9 random letters). CJK is 14 % of its characters and 36 %
       of its bytes. Its figures are the top-level ones (``sizes``, ``re_baseline``), which
       the goals are checked against;
     * a Chinese mail body (``chinese_mail``): ~1 MB, CJK runs of 4-20 hanzi ending in
       full-width punctuation, and Latin phrases; 66 % of its characters (85 % of its bytes)
       are CJK, which makes it the harder case for the matcher.

     Normalisation is also timed on ~1 MB of Chinese text (the Chinese mail body) and on ~1 MB
     of plain ASCII English (sentences of common words with capitals, punctuation and line
     breaks).
Out: ``run(quick)`` returns a JSON-able dict; ``python bench/bench_matcher.py [--quick]``
     prints it. MB/s are megabytes of UTF-8 input per second (of the normalised text for
     ``find``, of the raw text otherwise), timed in CPU seconds of this process
     (``time.process_time``), which a shared, noisy machine distorts less than wall time;
     every figure is the median of interleaved repetitions, and each pair that forms a ratio
     is measured in the same loop.
     The `re` baseline is the alternation of the same normalised terms, compiled once, with
     ``finditer`` over the same normalised text (the whole mixed haystack, the first
     200 k characters of the Chinese one; at 10 k terms, one pass over 20 k characters).
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
_ENGLISH = (
    "the of and to a in is you that it he was for on are as with his they at be this have from "
    "or one had by word but not what all were we when your can said there use an each which "
    "she do how their if will up other about out many then them these so some her would make "
    "like him into time has look two more write go see number no way could people my than "
    "first water been call who oil its now find long down day did get come made may part "
    "account payment invoice please verify password offer free click order delivery"
)
ENGLISH_WORDS = _ENGLISH.split()
PUNCT = ["，", "。", "、", "：", ""]
MIN_SAMPLE_S = 0.05  # a timed sample repeats the call until it lasts this long


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


def plant(pieces: list[str], rng: random.Random, terms: list[str]) -> str:
    for term in terms:
        pieces.insert(rng.randrange(len(pieces)), f" {term} ")
    return "".join(pieces)


def make_mixed_haystack(
    chars: int, rng: random.Random, hanzi: list[str], planted: list[str]
) -> str:
    """The goals' haystack: 30 % CJK runs, 70 % Latin pseudo-words, ~1.27 bytes per char."""
    pieces: list[str] = []
    total = 0
    while total < chars:
        if rng.random() < 0.3:
            piece = "".join(rng.choice(hanzi) for _ in range(rng.randint(1, 4)))
        else:
            piece = "".join(rng.choice(LATIN) for _ in range(rng.randint(2, 9)))
        pieces.append(piece + " ")
        total += len(piece) + 1
    return plant(pieces, rng, planted)


def make_chinese_haystack(
    size: int, rng: random.Random, hanzi: list[str], planted: list[str]
) -> str:
    """A Chinese mail body: mostly hanzi runs with full-width punctuation, some Latin."""
    pieces: list[str] = []
    total = 0
    while total < size:
        if rng.random() < 0.8:
            piece = "".join(rng.choice(hanzi) for _ in range(rng.randint(4, 20)))
            piece += rng.choice(PUNCT)
        else:
            words = (
                "".join(rng.choice(LATIN) for _ in range(rng.randint(2, 9)))
                for _ in range(rng.randint(1, 6))
            )
            piece = " " + " ".join(words) + " "
        pieces.append(piece)
        total += len(piece.encode("utf-8"))
    return plant(pieces, rng, planted)


def make_english(size: int, rng: random.Random) -> str:
    """Plain ASCII English-like text: sentences, commas, line breaks, blank lines."""
    lines: list[str] = []
    line = ""
    total = 0
    while total < size:
        words = [rng.choice(ENGLISH_WORDS) for _ in range(rng.randint(5, 18))]
        words[0] = words[0].capitalize()
        if len(words) > 6:
            words[rng.randrange(2, len(words) - 2)] += ","
        sentence = " ".join(words) + rng.choice([".", ".", ".", "?", "!"])
        line = f"{line} {sentence}" if line else sentence
        if len(line) > 72:
            lines.append(line)
            total += len(line) + 1
            line = ""
            if rng.random() < 0.1:
                lines.append("")
    return "\n".join(lines) + "\n"


def interleaved(funcs: dict[str, Callable[[], object]], repeat: int) -> dict[str, float]:
    """Median seconds per call of each function, the functions taking turns."""
    loops: dict[str, int] = {}
    for name, func in funcs.items():  # warm-up, and how many calls make a sample
        start = time.process_time()
        func()
        loops[name] = max(1, round(MIN_SAMPLE_S / max(time.process_time() - start, 1e-9)))
    samples: dict[str, list[float]] = {name: [] for name in funcs}
    for _ in range(repeat):
        for name, func in funcs.items():
            start = time.process_time()
            for _ in range(loops[name]):
                func()
            samples[name].append((time.process_time() - start) / loops[name])
    return {name: statistics.median(times) for name, times in samples.items()}


def wordlist(terms: list[str]) -> Wordlist:
    return Wordlist(
        "bench",
        "bench.txt",
        tuple(Term(t, normalise(t), "bench", "bench.txt", i + 1) for i, t in enumerate(terms)),
    )


def utf8_mb(text: str) -> float:
    return len(text.encode("utf-8")) / 1e6


def bench_haystack(
    haystack: str,
    term_sets: dict[int, list[str]],
    re_sample_chars: int,
    re_10k_chars: int | None,
    repeat: int,
) -> dict[str, object]:
    normalised = normalise(haystack)
    mb = utf8_mb(haystack)
    mb_normalised = utf8_mb(normalised)
    cjk = sum(ch >= "\u2e80" for ch in haystack)
    result: dict[str, object] = {
        "haystack_chars": len(haystack),
        "haystack_mb": round(mb, 3),
        "haystack_cjk_share": round(cjk / len(haystack), 3),
        "haystack_cjk_byte_share": round(
            sum(len(ch.encode("utf-8")) for ch in haystack if ch >= "\u2e80") / (mb * 1e6), 3
        ),
        "repetitions": repeat,
    }
    per_size: dict[str, dict[str, float | int]] = {}
    matchers: dict[int, KeywordMatcher] = {}
    for size, terms in term_sets.items():
        start = time.process_time()
        matcher = KeywordMatcher.build([wordlist(terms)])
        build = time.process_time() - start
        matchers[size] = matcher

        def find_only(m: KeywordMatcher = matcher) -> object:
            return m.find(normalised, max_hits=10**9)

        def normalise_and_find(m: KeywordMatcher = matcher) -> object:
            return m.find(normalise(haystack), max_hits=10**9)

        times = interleaved({"find": find_only, "both": normalise_and_find}, repeat)
        per_size[str(size)] = {
            "terms": len(terms),
            "build_s": round(build, 3),
            "find_mb_s": round(mb_normalised / times["find"], 1),
            "normalise_find_mb_s": round(mb / times["both"], 1),
            "hits": sum(m.count for m in matcher.find(normalised, max_hits=10**9)),
        }
    result["sizes"] = per_size

    # The baseline and the matcher at 1k terms, interleaved, over the same normalised text.
    terms_1k = term_sets[1_000]
    pattern = re.compile("|".join(re.escape(normalise(t)) for t in terms_1k))
    sample = normalised[:re_sample_chars]
    sample_mb = utf8_mb(sample)
    matcher_1k = matchers[1_000]
    times = interleaved(
        {
            "re": lambda: sum(1 for _ in pattern.finditer(sample)),
            "find": lambda: matcher_1k.find(sample, max_hits=10**9),
        },
        max(3, repeat // 2),
    )
    baseline: dict[str, float | int] = {
        "sample_chars": len(sample),
        "re_1k_mb_s": round(sample_mb / times["re"], 2),
        "find_1k_mb_s": round(sample_mb / times["find"], 1),
        "ratio_find_vs_re_1k": round(times["re"] / times["find"], 1),
    }
    if re_10k_chars is not None and 10_000 in term_sets:
        pattern_10k = re.compile("|".join(re.escape(normalise(t)) for t in term_sets[10_000]))
        short = normalised[:re_10k_chars]
        start = time.process_time()
        sum(1 for _ in pattern_10k.finditer(short))
        baseline["re_10k_sample_chars"] = len(short)
        baseline["re_10k_mb_s"] = round(utf8_mb(short) / (time.process_time() - start), 3)
    result["re_baseline"] = baseline
    return result


def run(quick: bool = False) -> dict[str, object]:
    rng = random.Random(SEED)
    hanzi = common_hanzi()
    repeat = 5
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    all_terms = make_terms(max(sizes), rng, hanzi)
    planted = all_terms[:10]
    term_sets: dict[int, list[str]] = {}
    for size in sizes:
        terms = all_terms[:size] if size == max(sizes) else rng.sample(all_terms, size)
        term_sets[size] = sorted(set(terms) | set(planted))

    mixed = make_mixed_haystack(100_000, rng, hanzi, planted)
    chinese = make_chinese_haystack(256_000 if quick else 1_000_000, rng, hanzi, planted)
    english = make_english(256_000 if quick else 1_000_000, rng)

    result = bench_haystack(mixed, term_sets, len(mixed), 20_000, repeat)
    result["haystack"] = "mixed: 30 % of runs CJK"
    result["chinese_mail"] = bench_haystack(
        chinese, term_sets, 200_000, None if quick else 20_000, repeat
    )
    times = interleaved(
        {
            "mixed": lambda: normalise(mixed),
            "chinese": lambda: normalise(chinese),
            "english": lambda: normalise(english),
        },
        repeat,
    )
    result["normalise_mb_s"] = round(utf8_mb(mixed) / times["mixed"], 1)
    result["normalise_chinese_mb_s"] = round(utf8_mb(chinese) / times["chinese"], 1)
    result["normalise_english_mb_s"] = round(utf8_mb(english) / times["english"], 1)
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv[1:]), indent=2, ensure_ascii=False))
