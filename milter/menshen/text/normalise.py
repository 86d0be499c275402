"""Text normalisation shared by the wordlists and the message text.

In:  any ``str`` (decoded message text or a wordlist term), including lone surrogates, controls
     and unassigned code points.
Out: ``normalise(text)``, the canonical form the keyword matcher sees. It is applied in exactly
     the same way to the terms and to the text, so every fold below widens what a term matches
     and never makes a term unmatchable. ``is_cjk(ch)`` tells whether a character belongs to
     the Han, kana, hangul or bopomofo letters used by the CJK rules here and in the matcher.
Fails: never raises on a ``str``.
Thread safety: pure functions over constant tables; safe from any number of threads.

The steps, in order:

1. NFKC: full-width forms to ASCII (Ａ -> a, ！ -> !, U+3000 -> space), half-width katakana,
   compatibility ideographs (U+F900 block), Kangxi radicals, ligatures, circled digits.
2. ``str.casefold`` (ß -> ss, Turkish İ -> i plus a dot that step 4 removes).
3. One ``str.translate`` with a generated table (see generate_tables.py):
   - removes whole classes: Default_Ignorable_Code_Point (zero-width space and joiners, word
     joiner, BOM, soft hyphen, bidi embeddings and isolates, U+034F, U+180E, variation
     selectors, U+3164 and the other hangul fillers, tags), every format character (Cf) and the
     C0/C1 controls that are not whitespace;
   - folds traditional to simplified Chinese (Unihan kSimplifiedVariant, 代開發票 -> 代开发票);
   - folds lowercase Latin letters with diacritics to their base letter (é -> e);
   - turns lone surrogates into U+FFFD so the result can always be encoded as UTF-8;
   the ideographic full stop and comma (。、) become ASCII, so "example。com" is a domain.
4. Nonspacing marks (Mn) following a Latin letter or digit are removed: strike-through and
   "zalgo" noise (k̶e̶y̶) and decomposed accents. This costs one scan for any Mn, which
   text without such marks passes at C speed; marks after CJK, Greek, Cyrillic, Indic and
   other scripts are left alone because they are letters of those scripts.
5. Runs of whitespace, punctuation, symbols and controls (Z*, P*, S*, Cc) between two CJK
   characters are removed (代 开*发，票 -> 代开发票). Chinese needs no spaces between words,
   so a separator there is either punctuation or an attempt to split a keyword. CJK characters
   separated by letters or digits stay apart.
6. Whitespace runs collapse to one space; leading and trailing whitespace is dropped.

If the result is not NFKC (removing an invisible character can join a base letter and a mark,
or two hangul jamo), the steps run again so that ``normalise`` is idempotent.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable

from menshen.text import unihan_tables as _t

__all__ = ["is_cjk", "normalise"]


def _build_table() -> dict[int, int | str | None]:
    table: dict[int, int | str | None] = {}
    for first, last in _t.REMOVED:
        for cp in range(first, last + 1):
            table[cp] = None
    for cp in range(0xD800, 0xE000):
        table[cp] = 0xFFFD
    pairs = _t.TRAD_TO_SIMP + _t.LATIN_FOLD
    for i in range(0, len(pairs), 2):
        table[ord(pairs[i])] = ord(pairs[i + 1])
    return table


def _merge(points: Iterable[int]) -> list[tuple[int, int]]:
    ranges: list[tuple[int, int]] = []
    for cp in sorted(points):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges


def _class_body(ranges: list[tuple[int, int]]) -> str:
    return "".join(
        f"\\U{first:08x}" if first == last else f"\\U{first:08x}-\\U{last:08x}"
        for first, last in ranges
    )


def _char_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """A regex matching one character of ``ranges``, fast on BMP text.

    The regex engine tests a character against a BMP class with one table lookup, but walks
    ranges above U+FFFF one by one; the astral ranges are therefore tested only for astral
    characters.
    """
    bmp = [(a, min(b, 0xFFFF)) for a, b in ranges if a <= 0xFFFF]
    astral = [(max(a, 0x10000), b) for a, b in ranges if b > 0xFFFF]
    if not astral:
        return f"[{_class_body(bmp)}]"
    return f"(?:[{_class_body(bmp)}]|(?=[\\U00010000-\\U0010ffff])[{_class_body(astral)}])"


_TABLE = _build_table()
_CJK_CLASS = _char_class(_t.CJK)
_ANY_MARK = re.compile(_char_class(_t.NONSPACING_MARKS))
_MARKS_AFTER_LATIN = re.compile(
    f"(?<=[{_class_body(list(_t.LATIN))}])(?:{_char_class(_t.NONSPACING_MARKS)})+"
)
# The leading CJK character is consumed and put back rather than looked behind for: a pattern
# that starts with a character class lets the regex engine skip ahead in C to candidates.
_CJK_SEPARATED = re.compile(f"({_CJK_CLASS})(?:{_char_class(_t.CJK_SEPARATORS)})+(?={_CJK_CLASS})")
# Unified ideographs of the BMP are starters that never compose with a neighbour, so NFKC can
# be applied to the text between them piece by piece; NFKC of the whole string is several
# times slower on Chinese text, where any full-width comma sends it down the slow path.
_BETWEEN_IDEOGRAPHS = re.compile("[^\u4e00-\u9fff]+")
# Most mail needs none of the table (simplified Chinese, plain English); finding that out with
# one regex scan is far cheaper than str.translate, which looks up every non-ASCII character.
_TABLE_RANGES = _merge(_TABLE)
_NEEDS_TABLE_BMP = re.compile(f"[{_class_body([r for r in _TABLE_RANGES if r[1] <= 0xFFFF])}]")
_ANY_ASTRAL = re.compile("[\\U00010000-\\U0010ffff]")
_CJK_STARTS = tuple(first for first, _ in _t.CJK)
_CJK_ENDS = tuple(last for _, last in _t.CJK)
_MAX_PASSES = 3


def is_cjk(ch: str) -> bool:
    """True when ``ch`` (one character) is a Han, kana, hangul or bopomofo letter."""
    if len(ch) != 1:
        return False
    cp = ord(ch)
    i = bisect_right(_CJK_STARTS, cp) - 1
    return i >= 0 and cp <= _CJK_ENDS[i]


def _nfkc_piece(match: re.Match[str]) -> str:
    return unicodedata.normalize("NFKC", match.group())


def _first_group(match: re.Match[str]) -> str:
    return match.group(1)


def _one_pass(text: str) -> str:
    if not unicodedata.is_normalized("NFKC", text):
        text = _BETWEEN_IDEOGRAPHS.sub(_nfkc_piece, text)
    # str.replace, not the table: these two are in nearly every Chinese text, and keeping
    # them out of the table lets most text skip str.translate altogether.
    text = text.casefold().replace("。", ".").replace("、", ",")
    if _NEEDS_TABLE_BMP.search(text) is not None or any(
        ord(ch) in _TABLE for ch in _ANY_ASTRAL.findall(text)
    ):
        text = text.translate(_TABLE)
    if _ANY_MARK.search(text) is not None:
        text = _MARKS_AFTER_LATIN.sub("", text)
    text = _CJK_SEPARATED.sub(_first_group, text)
    return " ".join(text.split())


def normalise(text: str) -> str:
    """The canonical form of ``text`` for keyword matching (see the module docstring)."""
    result = _one_pass(text)
    for _ in range(_MAX_PASSES - 1):
        if unicodedata.is_normalized("NFKC", result):
            break
        again = _one_pass(result)
        if again == result:
            break
        result = again
    return result
