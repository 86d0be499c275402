"""Multi-term keyword matching over normalised text (Aho-Corasick).

In:  ``KeywordMatcher.build(wordlists)`` once per configuration; then ``find(text)`` or
     ``search(text)`` with text already passed through ``menshen.text.normalise``.
Out: one ``Match`` per term found (several terms, even of different categories, may share a
     normalised key), with the number of hits of that term; ``search`` also says whether the
     hit cap stopped the scan.
Fails: never raises on a ``str`` (lone surrogates are encoded with surrogatepass).
Thread safety: the automaton is built inside ``build`` and never changed afterwards, so one
     matcher is shared by all milter threads (pyahocorasick is not safe for concurrent
     mutation, but concurrent ``iter`` on a finished automaton is). The search holds the GIL.

Why bytes: pyahocorasick finds the child of a trie node by a linear scan over its children. A
CJK wordlist gives the root thousands of children and the scan collapses (about 2 MB/s at 10 k
terms). The automaton is therefore built over the UTF-8 bytes of the keys shown as a latin-1
``str``, and the text is converted the same way: fan-out is at most 256, the hits are the same,
and offsets become byte offsets.

Word boundaries: a term whose first (last) character is a letter or digit of a non-CJK script
matches only where the text character before (after) the hit is not such a letter or digit:
"cialis" hits "buy cialis now", "cialis." and "购买cialis药品", but not "specialist". CJK edges
match anywhere, as Chinese has no spaces between words. Edges that are punctuation or symbols
need no boundary either. Boundary checks run in Python only for candidate hits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

from menshen.keywords.wordlist import Term, Wordlist
from menshen.text.normalise import is_cjk

__all__ = ["KeywordMatcher", "Match", "SearchResult", "is_word_char"]


@dataclass(frozen=True, slots=True)
class Match:
    term: Term
    count: int


@dataclass(frozen=True, slots=True)
class SearchResult:
    matches: tuple[Match, ...]
    truncated: bool  # the scan stopped at max_hits and at least one more hit existed


def is_word_char(ch: str) -> bool:
    """A letter or digit that takes part in whole-word matching (not CJK)."""
    return ch.isalnum() and not is_cjk(ch)


def _char_before(data: str, start: int) -> str:
    """The character ending just before byte offset ``start`` of latin-1-viewed UTF-8."""
    if start <= 0:
        return ""
    begin = start - 1
    # Walk back over continuation bytes (10xxxxxx) to the lead byte; a UTF-8 char is <= 4 bytes.
    while begin > 0 and start - begin < 4 and 0x80 <= ord(data[begin]) < 0xC0:
        begin -= 1
    return data[begin:start].encode("latin-1").decode("utf-8", "replace")[-1:]


def _char_after(data: str, end: int) -> str:
    """The character starting at byte offset ``end`` (one past the hit)."""
    if end >= len(data):
        return ""
    lead = ord(data[end])
    size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return data[end : end + size].encode("latin-1").decode("utf-8", "replace")[:1]


@dataclass(frozen=True, slots=True)
class _Key:
    group: int  # index into KeywordMatcher._groups
    length: int  # bytes
    check_before: bool
    check_after: bool


class KeywordMatcher:
    """An immutable matcher over the terms of some wordlists; build with ``build``."""

    __slots__ = ("_automaton", "_groups", "_size")

    def __init__(self, automaton: object | None, groups: tuple[tuple[Term, ...], ...]) -> None:
        self._automaton = automaton
        self._groups = groups
        self._size = sum(len(group) for group in groups)

    @classmethod
    def build(cls, wordlists: Iterable[Wordlist]) -> KeywordMatcher:
        by_key: dict[str, list[Term]] = {}
        for wordlist in wordlists:
            for term in wordlist.terms:
                if term.normalised:
                    by_key.setdefault(term.normalised, []).append(term)
        if not by_key:
            return cls(None, ())
        automaton = ahocorasick.Automaton()
        groups: list[tuple[Term, ...]] = []
        for key, terms in by_key.items():
            encoded = key.encode("utf-8", "surrogatepass").decode("latin-1")
            value = _Key(len(groups), len(encoded), is_word_char(key[0]), is_word_char(key[-1]))
            automaton.add_word(encoded, value)
            groups.append(tuple(terms))
        automaton.make_automaton()
        return cls(automaton, tuple(groups))

    def __len__(self) -> int:
        """The number of terms (not distinct keys) the matcher was built from."""
        return self._size

    @property
    def terms(self) -> tuple[Term, ...]:
        return tuple(term for group in self._groups for term in group)

    def search(self, normalised_text: str, max_hits: int = 1000) -> SearchResult:
        """Find the terms in ``normalised_text``; stop after ``max_hits`` hits (all terms)."""
        if self._automaton is None or not normalised_text:
            return SearchResult((), False)
        data = normalised_text.encode("utf-8", "surrogatepass").decode("latin-1")
        counts: dict[int, int] = {}
        hits = 0
        truncated = False
        for last, key in self._automaton.iter(data):  # type: ignore[attr-defined]
            start = last + 1 - key.length
            if key.check_before and is_word_char(_char_before(data, start)):
                continue
            if key.check_after and is_word_char(_char_after(data, last + 1)):
                continue
            if hits >= max_hits:
                truncated = True
                break
            hits += 1
            counts[key.group] = counts.get(key.group, 0) + 1
        matches = tuple(
            Match(term, count) for group, count in counts.items() for term in self._groups[group]
        )
        return SearchResult(matches, truncated)

    def find(self, normalised_text: str, max_hits: int = 1000) -> list[Match]:
        """The terms found in ``normalised_text``, counted per term, at most ``max_hits`` hits."""
        return list(self.search(normalised_text, max_hits).matches)
