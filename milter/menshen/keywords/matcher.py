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

The start of an ASCII word is structural. Before the scan, the text and every key pass through
``_mark_words``: each space becomes the marker byte 0x01, and the marker, preceded by the joint
byte 0x02, is inserted before every ASCII letter or digit that follows a byte other than an
ASCII letter, digit or space (punctuation, the last byte of a non-ASCII character). ``normalise``
leaves neither byte in a text, and it leaves no whitespace but single spaces, so every ASCII
word starts right after a marker (the text is scanned with a space in front). A key that starts
with an ASCII letter or digit is prefixed with the marker, so it can only match at a word
start: "specialist" is no candidate for "cialis", and the automaton enters the states of the
Latin terms only at word starts (within a word, a letter is a cheap miss at the root). The
joint keeps "( cialis" and "(cialis" apart, and it tells a marker that stands for a space from
one that was inserted. Only a word start that follows a non-ASCII character ("жcialis",
"购买cialis") and the end of a hit are checked in Python, for candidate hits only.

Speed: the scan is pyahocorasick's C loop, which for each byte scans the child table of the
current state and then walks the failure chain: it is bound by memory latency, and it is most
of the cost of ``search``. Markers replace spaces instead of being inserted after them, so the
text grows only where a joint goes, and it is prepared by C passes (encode, one
``bytes.translate`` and one search to find the joints, one ``bytes.replace``) with a Python loop
over the joints only. The automaton is created level by level for the first ``_PACKED_LEVELS``
bytes of the keys (pyahocorasick allocates nodes and child tables in the order it creates
them), which packs the shallow states that nearly every step visits; on the benchmark's
uniform term lists the scan ran 10-35 % faster at 10 k terms and 65-80 % at 100 k than with
the keys added one by one. Only the layout changes, so the hits cannot depend on it; the
calls used (``add_word``, ``remove_word``, ``make_automaton``, ``iter``) behave the same in
pyahocorasick 1.4 (Debian 12) and 2.x.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
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
_JOINT = b"\x02"
_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Byte classes for finding where a joint goes: "a" ASCII letter or digit, "p" a byte a joint
# may follow (punctuation, controls, UTF-8 continuation bytes), " " the rest: the space, which
# becomes a marker itself, and UTF-8 lead bytes, which a continuation byte always follows.
# Fewer "p" and "a" bytes let the searches below skip further.
_CLASSES = bytes(
    ord("a") if byte in _ALNUM else ord(" ") if byte == 0x20 or byte >= 0xC0 else ord("p")
    for byte in range(256)
)
_BEFORE_JOINT = re.compile(b"pa")
# How many leading bytes of the keys are allocated level by level (see the module docstring):
# two CJK characters, or the marker and five letters. Deeper levels gained little and each
# level costs one pass over the keys in ``build``.
_PACKED_LEVELS = 6


def _joint_places(data: bytes, chars: int) -> Iterator[int]:
    """The offsets of the ASCII letters and digits that a joint must precede.

    ``data`` is the UTF-8 of ``chars`` characters; the count picks the search that skips further.
    """
    classes = data.translate(_CLASSES)
    # len(data) - chars is the number of continuation bytes, nearly all of the "p" bytes.
    if 2 * (len(data) - chars) < chars:
        # English or mixed text, where "p" is rarer than "a": the regex engine skips from "p"
        # to "p" in C, where bytes.find would stop at nearly every letter.
        for match in _BEFORE_JOINT.finditer(classes):
            yield match.end() - 1
    else:
        # Mostly CJK: "p" is common and bytes.find, which checks for the "a" first, is faster.
        at = classes.find(b"pa")
        while at >= 0:
            yield at + 1
            at = classes.find(b"pa", at + 2)


def _mark_words(data: bytes, chars: int) -> bytes:
    """Spaces become the marker; the joint and the marker go before a word after other bytes.

    ``data`` is the UTF-8 of ``chars`` characters (see ``_joint_places``).

    Context-free: each byte's result depends only on that byte and the one before it, so the
    result for a key is a substring of the result for any text containing it, except for what
    goes before its first byte: ``KeywordMatcher.build`` prefixes a key that starts a word with
    the marker, which the text has there after a space and after a joint alike.
    """
    # A word right after punctuation or a non-ASCII character is far rarer than after a space,
    # so a Python loop over those places costs less than a whole-text pass that inserts them.
    pieces = []
    last = 0
    for at in _joint_places(data, chars):
        pieces.append(data[last:at])
        last = at
    if pieces:
        pieces.append(data[last:])
        data = (_JOINT + _MARK).join(pieces)
    # bytes.replace copies and then jumps from space to space with memchr: cheaper than
    # bytes.translate, which looks up every byte, the more so the fewer spaces there are.
    return data.replace(b" ", _MARK)


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
    """The character starting at byte offset ``end`` (one past the hit); a marker is a space."""
    if end >= len(data):
        return ""
    if data[end] == "\x02":
        # "cialisжx": the joint and the marker stand between the hit and the word after it.
        return data[end + 2 : end + 3]
    lead = ord(data[end])
    size = 1 if lead < 0x80 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return data[end : end + size].encode("latin-1").decode("utf-8", "replace")[:1]


@dataclass(frozen=True, slots=True)
class _Key:
    group: int  # index into KeywordMatcher._groups
    length: int  # bytes, markers and joints included
    check_before: bool  # a word character before the hit rejects it
    check_after: bool  # a word character after the hit rejects it
    # Starts with the marker: the hit starts a word, unless the marker follows a joint that
    # follows a letter of another script ("жcialis").
    marked: bool


def _packed_automaton(keys: dict[str, _Key]) -> object:
    """The automaton of ``keys``, its first levels created level by level (see the docstring).

    pyahocorasick cannot create a node without a word ending there, so each level's missing
    prefixes are added as placeholder words and removed again before ``make_automaton``;
    removing a word whose node has children only clears its end-of-word flag, which leaves the
    nodes where they were allocated.
    """
    automaton = ahocorasick.Automaton()
    placeholders: list[str] = []
    for depth in range(1, _PACKED_LEVELS + 1):
        for prefix in sorted({key[:depth] for key in keys if len(key) > depth}):
            if prefix not in keys:
                placeholders.append(prefix)
            automaton.add_word(prefix, keys.get(prefix))
    for key, value in keys.items():
        automaton.add_word(key, value)
    for prefix in placeholders:
        automaton.remove_word(prefix)
    automaton.make_automaton()
    return automaton


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
        keys: dict[str, _Key] = {}
        groups: list[tuple[Term, ...]] = []
        for key, terms in by_key.items():
            encoded = _mark_words(key.encode("utf-8", "surrogatepass"), len(key))
            ascii_start = key[0].isascii() and key[0].isalnum()
            if ascii_start:
                encoded = _MARK + encoded
            keys[encoded.decode("latin-1")] = _Key(
                len(groups),
                len(encoded),
                is_word_char(key[0]) and not ascii_start,
                is_word_char(key[-1]),
                ascii_start,
            )
            groups.append(tuple(terms))
        return cls(_packed_automaton(keys), tuple(groups))

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
        encoded = b" " + normalised_text.encode("utf-8", "surrogatepass")
        data = _mark_words(encoded, len(normalised_text) + 1).decode("latin-1")
        counts: dict[int, int] = {}
        hits = 0
        truncated = False
        for last, key in self._automaton.iter(data):  # type: ignore[attr-defined]
            start = last + 1 - key.length
            if key.marked:
                # The marker is a space unless the joint precedes it; then punctuation or a
                # non-ASCII character, which may be a letter ("жcialis"), precedes the word.
                if (
                    start > 0
                    and data[start - 1] == "\x02"
                    and is_word_char(_char_before(data, start - 1))
                ):
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
