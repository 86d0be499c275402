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
"cialis" hits "buy cialis now", "(cialis)", "cialis." and "购买cialis药品", but not "specialist",
"1cialis" or "жcialis". CJK edges match anywhere, as Chinese has no spaces between words.
Edges that are punctuation or symbols need no boundary either.

The start of an ASCII word is structural: before the scan, a marker byte (0x01, which
``normalise`` never leaves in a text) is inserted before every ASCII letter or digit that
follows a byte other than an ASCII letter or digit (a space, punctuation, the last byte of a
non-ASCII character) and at the start of the text. Keys are transformed in the same way, and a
key that starts with an ASCII letter or digit is prefixed with the marker, so it can only match
at a word start: "specialist" is no candidate for "cialis", and the automaton enters the states
of the Latin terms only at word starts (within a word, a letter is a cheap miss at the root).
Only a marker that follows a non-ASCII character ("жcialis", "购买cialis") and the end of
a hit are checked in Python, for candidate hits only.
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


_MARK = b"\x01"
_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Byte classes for finding where a marker goes: "a" ASCII letter or digit, " " the space
# (handled by one bytes.replace), "p" every other byte.
_CLASSES = bytes(
    ord("a") if byte in _ALNUM else ord(" ") if byte == 0x20 else ord("p") for byte in range(256)
)


def _mark_words(data: bytes) -> bytes:
    """Insert the marker before every ASCII letter or digit that does not follow one.

    Context-free: the result for a key depends only on the key, except for the marker before
    its first byte, which ``KeywordMatcher.build`` adds for keys that start a word.
    """
    classes = data.translate(_CLASSES)
    at = classes.find(b"pa")
    if at >= 0:
        # Punctuation or a non-ASCII character before a word: rare next to the spaces.
        pieces = []
        last = 0
        while at >= 0:
            pieces.append(data[last : at + 1])
            last = at + 1
            at = classes.find(b"pa", last)
        pieces.append(data[last:])
        data = _MARK.join(pieces)
    return data.replace(b" ", b" " + _MARK)


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
    """The character starting at byte offset ``end`` (one past the hit), markers skipped."""
    if end < len(data) and data[end] == "\x01":
        end += 1  # "cialisжx": the marker before x follows a hit that ends in a letter
    if end >= len(data):
        return ""
    lead = ord(data[end])
    size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return data[end : end + size].encode("latin-1").decode("utf-8", "replace")[:1]


@dataclass(frozen=True, slots=True)
class _Key:
    group: int  # index into KeywordMatcher._groups
    length: int  # bytes, markers included
    check_before: bool  # a word character before the hit rejects it
    check_after: bool  # a word character after the hit rejects it
    marked: bool  # starts with the marker: the hit starts a word unless a non-ASCII char precedes


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
            encoded = _mark_words(key.encode("utf-8", "surrogatepass"))
            ascii_start = key[0].isascii() and key[0].isalnum()
            if ascii_start:
                encoded = _MARK + encoded
            value = _Key(
                len(groups),
                len(encoded),
                is_word_char(key[0]) and not ascii_start,
                is_word_char(key[-1]),
                ascii_start,
            )
            automaton.add_word(encoded.decode("latin-1"), value)
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
        # The leading space marks a word at the start of the text.
        data = _mark_words(b" " + normalised_text.encode("utf-8", "surrogatepass")).decode(
            "latin-1"
        )
        counts: dict[int, int] = {}
        hits = 0
        truncated = False
        for last, key in self._automaton.iter(data):  # type: ignore[attr-defined]
            start = last + 1 - key.length
            if key.marked:
                # The byte before the marker is a space or punctuation unless it ends a
                # non-ASCII character, which may be a letter ("жcialis").
                if data[start - 1] >= "\x80" and is_word_char(_char_before(data, start)):
                    continue
            elif key.check_before and is_word_char(_char_before(data, start)):
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
