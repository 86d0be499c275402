"""KeywordMatcher: CJK substrings, Latin whole words, caps, sharing, threads, properties, and
the text transform and packed automaton against plain versions."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import ahocorasick
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from menshen.keywords import matcher as matcher_module
from menshen.keywords.matcher import KeywordMatcher, is_word_char
from menshen.keywords.wordlist import Term, Wordlist
from menshen.text.normalise import normalise


def wordlist(category: str, *texts: str) -> Wordlist:
    source = f"{category}.txt"
    return Wordlist(
        category,
        source,
        tuple(Term(t, normalise(t), category, source, i + 1) for i, t in enumerate(texts)),
    )


MATCHER = KeywordMatcher.build(
    [
        wordlist("pharma", "cialis", "viagra", "代购处方药"),
        wordlist("invoice", "代开发票", "fake invoice", "发票代开"),
        wordlist("gambling", "百家乐", "online casino", "ab12"),
        wordlist("mixed", "cialis代购", "$$$ bonus"),
        wordlist("shared", "代开发票"),
    ]
)


def hits(text: str, matcher: KeywordMatcher = MATCHER) -> set[tuple[str, str, int]]:
    return {(m.term.category, m.term.text, m.count) for m in matcher.find(normalise(text))}


CASES = {
    "cjk_substring": (
        "我们可以代开发票，请联系",
        {("invoice", "代开发票", 1), ("shared", "代开发票", 1)},
    ),
    "cjk_inside_longer_run": ("专业百家乐平台", {("gambling", "百家乐", 1)}),
    "cjk_overlapping_terms": (
        "代开发票代开",
        {("invoice", "代开发票", 1), ("shared", "代开发票", 1), ("invoice", "发票代开", 1)},
    ),
    "latin_inside_word": ("the specialist said", set()),
    "latin_prefix_of_word": ("cialisx", set()),
    "latin_suffix_of_word": ("xcialis", set()),
    "latin_with_period": ("cialis.", {("pharma", "cialis", 1)}),
    "latin_phrase_word": ("buy cialis now", {("pharma", "cialis", 1)}),
    "latin_next_to_cjk": ("购买cialis药品", {("pharma", "cialis", 1)}),
    "latin_after_digit": ("1cialis", set()),
    "latin_underscore_is_separator": ("buy_cialis_now", {("pharma", "cialis", 1)}),
    "latin_accented_neighbour": ("écialis", set()),
    "latin_cyrillic_neighbour": ("жcialis", set()),
    "multi_word_phrase": ("see our Online  Casino!", {("gambling", "online casino", 1)}),
    "multi_word_phrase_split_word": ("online casinos", set()),
    "alnum_term": ("code ab12 here", {("gambling", "ab12", 1)}),
    "alnum_term_in_word": ("ab123", set()),
    "mixed_term": ("限时cialis代购", {("pharma", "cialis", 1), ("mixed", "cialis代购", 1)}),
    "symbol_edges_substring": ("x$$$ bonusy", set()),
    "symbol_edge_start": ("win$$$ bonus", {("mixed", "$$$ bonus", 1)}),
    "counted": ("viagra viagra, VIAGRA", {("pharma", "viagra", 3)}),
    "evasion_traditional": ("代開發票", {("invoice", "代开发票", 1), ("shared", "代开发票", 1)}),
    "evasion_fullwidth": ("ＶＩＡＧＲＡ", {("pharma", "viagra", 1)}),
    "evasion_zero_width": ("vi\u200bag\u200dra", {("pharma", "viagra", 1)}),
    "evasion_cjk_punct": ("代，购*处 方\u200b药", {("pharma", "代购处方药", 1)}),
    "no_hit": ("普通的商务邮件，发票已收到。", set()),
    "empty_text": ("", set()),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_find(text: str, expected: set[tuple[str, str, int]]) -> None:
    assert hits(text) == expected


def test_empty_matcher() -> None:
    empty = KeywordMatcher.build([])
    assert empty.find("anything 代开发票") == []
    assert len(empty) == 0
    assert KeywordMatcher.build([wordlist("none")]).find("x") == []


def test_hit_cap() -> None:
    result = MATCHER.search(normalise("viagra " * 50 + "百家乐" * 50), max_hits=10)
    assert result.truncated
    assert sum(m.count for m in result.matches) == 10
    exact = MATCHER.search(normalise("viagra " * 10), max_hits=10)
    assert not exact.truncated and exact.matches[0].count == 10
    assert sum(m.count for m in MATCHER.find(normalise("viagra " * 50), max_hits=7)) == 7


def test_max_hits_zero_reports_truncation_only() -> None:
    result = MATCHER.search("viagra", max_hits=0)
    assert result.truncated and result.matches == ()


def test_terms_and_len() -> None:
    assert len(MATCHER) == 12
    assert len(MATCHER.terms) == 12


def test_thread_safety_smoke() -> None:
    text = normalise("购买cialis代购 代開發票 online casino specialist " * 200)
    expected = MATCHER.find(text)
    results: list[object] = []

    def worker() -> None:
        for _ in range(20):
            results.append(MATCHER.find(text))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 320
    assert all(result == expected for result in results)


# --- properties -----------------------------------------------------------------------------

CJK_TERMS = ["代开发票", "代购处方药", "百家乐", "发票代开"]
LATIN_TERMS = ["cialis", "viagra", "fake invoice", "online casino"]
INVISIBLE = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u202e",
    "\u2066",
    "\u034f",
    "\u180e",
    "\ufe0f",
    "\u3164",
]
CJK_SEPARATORS = [" ", "*", "，", "。", "\n", "_", ".", "\u3000", "-", "、", "！"]
TRADITIONAL = str.maketrans("开发票购处药门乐", "開發票購處藥門樂")
filler = st.text(max_size=30)  # every code point but the surrogates


@st.composite
def evaded_cjk(draw: st.DrawFn) -> tuple[str, str]:
    term = draw(st.sampled_from(CJK_TERMS))
    if draw(st.booleans()):
        term = term.translate(TRADITIONAL)
    out = []
    for ch in term:
        out.append(ch)
        out.append("".join(draw(st.lists(st.sampled_from(INVISIBLE + CJK_SEPARATORS), max_size=3))))
    return term, "".join(out)


@st.composite
def evaded_latin(draw: st.DrawFn) -> tuple[str, str]:
    term = draw(st.sampled_from(LATIN_TERMS))
    out = []
    for letter in term:
        if letter == " ":
            out.append(draw(st.sampled_from([" ", "  ", "\u3000", "\t", "\n "])))
            continue
        ch = letter.upper() if draw(st.booleans()) else letter
        if draw(st.booleans()):
            ch = chr(ord(ch) + 0xFEE0)  # full-width form
        out.append(ch)
        out.append("".join(draw(st.lists(st.sampled_from(INVISIBLE), max_size=2))))
    return term, "".join(out)


@settings(max_examples=300, deadline=None)
@given(evaded_cjk(), filler, filler)
def test_cjk_evasion_is_found(case: tuple[str, str], before: str, after: str) -> None:
    term, evaded = case
    found = {m.term.normalised for m in MATCHER.find(normalise(before + evaded + after))}
    assert normalise(term) in found


@settings(max_examples=300, deadline=None)
@given(evaded_latin(), filler, filler)
def test_latin_evasion_is_found(case: tuple[str, str], before: str, after: str) -> None:
    term, evaded = case
    found = {m.term.normalised for m in MATCHER.find(normalise(f"{before} {evaded} {after}"))}
    assert term in found


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    MATCHER.find(text)
    MATCHER.find(normalise(text), max_hits=3)


# --- differential: the automaton against a plain reference -----------------------------------

REFERENCE_TERMS = [
    "cialis",
    "ab12",
    "12ab",
    "fake invoice",
    "$$$ bonus",
    "!!!",
    "example.com",
    "e-mail",
    "代开发票",
    "发票",
    "cialis代购",
    "购买cialis",
    "жcialis",
    "cialisж",
    "ж",
    "a",
    "1",
    "x.y",
    "(cialis)",
    "( cialis",
    "ж cialis",
    "代x",
    "é",
]
REFERENCE = KeywordMatcher.build([wordlist("ref", *REFERENCE_TERMS)])
PIECES = [
    "cialis",
    "specialist",
    "ab12",
    "12ab",
    "fake",
    "invoice",
    "$$$",
    "bonus",
    "!",
    "example",
    ".com",
    "e-mail",
    "代开发票",
    "代",
    "购买",
    "ж",
    "жcialis",
    "a",
    "1",
    "x",
    ".",
    ",",
    "(",
    ")",
    " ",
    "  ",
    "_",
    "-",
    "é",
    "\u0301",
    "\x01",
]


def reference_hits(text: str, keys: list[str]) -> dict[str, int]:
    """Every occurrence of each key with the documented boundary rules, by str.find."""
    counts: dict[str, int] = {}
    for key in keys:
        at = text.find(key)
        while at >= 0:
            end = at + len(key)
            before = text[at - 1] if at else ""
            after = text[end] if end < len(text) else ""
            if not (is_word_char(key[0]) and is_word_char(before)) and not (
                is_word_char(key[-1]) and is_word_char(after)
            ):
                counts[key] = counts.get(key, 0) + 1
            at = text.find(key, at + 1)
    return counts


def matcher_hits(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for match in REFERENCE.find(text, max_hits=10**6):
        found[match.term.normalised] = match.count
    return found


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=25), st.text(max_size=10))
def test_matches_reference(pieces: list[str], noise: str) -> None:
    keys = sorted({normalise(t) for t in REFERENCE_TERMS})
    for raw in ("".join(pieces), "".join(pieces) + noise, noise + "".join(pieces)):
        text = normalise(raw)
        assert matcher_hits(text) == reference_hits(text, keys), text


def test_boundary_cases_against_reference() -> None:
    keys = sorted({normalise(t) for t in REFERENCE_TERMS})
    for raw in [
        "cialis",
        "(cialis)",
        "购买cialis药品",
        "specialist",
        "1cialis",
        "écialis",
        "жcialis x",
        "cialisжx",
        "cialisж x",
        "win$$$ bonus!!!!",
        "see example.com, e-mail",
        "12ab ab12 ab123 x12ab",
        "代xy 代x",
        "(cialis ( cialis (  cialis",
        "ж cialis жcialis ж  cialis",
    ]:
        text = normalise(raw)
        assert matcher_hits(text) == reference_hits(text, keys), raw


def test_pathological_inside_words_are_not_candidates() -> None:
    text = normalise("specialist " * 20_000)
    assert MATCHER.find(text) == []


# --- the text transform and the packed automaton against plain versions ----------------------

ALNUM = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def reference_mark_words(data: bytes) -> bytes:
    """The documented transform, byte by byte."""
    out = bytearray()
    for i, byte in enumerate(data):
        if byte in ALNUM and i and data[i - 1] not in ALNUM and data[i - 1] != 0x20:
            out += b"\x02\x01"
        out.append(0x01 if byte == 0x20 else byte)
    return bytes(out)


ascii_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60)
mixed_text = st.text(alphabet=st.sampled_from("ab1 .(-_жé代开\u3000\U0001f600"), max_size=60)


@settings(max_examples=500, deadline=None)
@given(st.one_of(ascii_text, mixed_text, st.text(max_size=40)))
def test_mark_words_matches_reference(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    expected = reference_mark_words(data)
    assert matcher_module._mark_words(data, len(text)) == expected
    # The character count only picks the search for joints: force each of the two.
    assert matcher_module._mark_words(data, len(data)) == expected  # the regex engine
    assert matcher_module._mark_words(data, 0) == expected  # bytes.find


def plain_automaton(keys: Mapping[str, object]) -> Any:
    automaton = ahocorasick.Automaton()
    for key, value in keys.items():
        automaton.add_word(key, value)
    automaton.make_automaton()
    return automaton


# Keys and texts as the automaton sees them: markers, letters, UTF-8 bytes of 一 (E4 B8 80).
key_text = st.text(alphabet=st.sampled_from("\x01abc\xe4\xb8\x80"), min_size=1, max_size=9)


@settings(max_examples=300, deadline=None)
@given(st.lists(key_text, min_size=1, max_size=30, unique=True), st.lists(key_text, max_size=8))
def test_packed_automaton_equals_plain(keys: list[str], texts: list[str]) -> None:
    # Keys of up to 9 letters cross _PACKED_LEVELS, so placeholders are made and removed.
    values = {
        key: matcher_module._Key(i, len(key), False, False, False) for i, key in enumerate(keys)
    }
    packed: Any = matcher_module._packed_automaton(values)
    plain = plain_automaton(values)
    assert sorted(packed.keys()) == sorted(keys)  # no placeholder is left as a word
    text = "".join(texts) + "".join(keys)
    assert list(packed.iter(text)) == list(plain.iter(text))
