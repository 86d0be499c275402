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
_SEPARATOR_CLASS = _char_class(_t.CJK_SEPARATORS)
_MARK_CLASS = _char_class(_t.NONSPACING_MARKS)


def _bmp_class(ranges: tuple[tuple[int, int], ...]) -> str:
    """The BMP part of ``ranges`` as one plain class, for text known to have no astral chars."""
    return f"[{_class_body([(a, min(b, 0xFFFF)) for a, b in ranges if a <= 0xFFFF])}]"


# Every search below starts with a plain character class wherever possible: the regex engine
# then skips ahead in C to the candidates. The classes of ``_char_class`` are alternations
# (so that BMP characters are not tested against the astral ranges) and lose that skip, so
# each pattern also has a BMP-only variant, used when the text has no astral character.
_ANY_ASTRAL = re.compile("[\\U00010000-\\U0010ffff]")
_ANY_MARK = re.compile(_MARK_CLASS)
_ANY_MARK_BMP = re.compile(_bmp_class(_t.NONSPACING_MARKS))
_MARKS_AFTER_LATIN = re.compile(f"(?<=[{_class_body(list(_t.LATIN))}])(?:{_MARK_CLASS})+")
_ANY_CJK = re.compile(_CJK_CLASS)
_ANY_CJK_BMP = re.compile(_bmp_class(_t.CJK))


def _separated(cjk: str, separator: str) -> re.Pattern[str]:
    # A run of separators whose first character follows a CJK character (looked behind for
    # only once a separator is found) and whose end is followed by one; the CJK characters
    # are not consumed, so "代 开*发" loses both separators.
    return re.compile(f"{separator}(?<={cjk}{separator}){separator}*(?={cjk})")


_CJK_SEPARATED = _separated(_CJK_CLASS, _SEPARATOR_CLASS)
_CJK_SEPARATED_BMP = _separated(_bmp_class(_t.CJK), _bmp_class(_t.CJK_SEPARATORS))
# Unified ideographs of the BMP are starters that never compose with a neighbour, so NFKC can
# be applied to the text between them piece by piece; NFKC of the whole string is several
# times slower on Chinese text, where any full-width comma sends it down the slow path.
_BETWEEN_IDEOGRAPHS = re.compile("[^\u4e00-\u9fff]+")
# The full-width forms and the ideographic space are what keeps nearly all Chinese text from
# being NFKC. Each is replaced by its compatibility decomposition (one ASCII character), which
# leaves NFKD, and therefore NFKC, of the whole text unchanged; NFKC proper then runs only
# when something else needs it.
_FULLWIDTH = re.compile("[\u3000\uff01-\uff5e]")
_FULLWIDTH_MAP = {chr(cp): unicodedata.normalize("NFKC", chr(cp)) for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH_MAP["\u3000"] = " "
_COMMON_FULLWIDTH = "，：；！？（）\u3000"
# Most mail needs none of the table (simplified Chinese, plain English); finding that out with
# one regex scan is far cheaper than str.translate, which looks up every non-ASCII character.
# When only a few distinct characters need it (覆 乾 著 in simplified Chinese, a few accented
# letters in French), str.replace of each is cheaper still. No image in the table is itself a
# key (chains are resolved when the table is generated), so the replacements commute.
_TABLE_RANGES = _merge(_TABLE)
_NEEDS_TABLE_BMP = re.compile(f"[{_class_body([r for r in _TABLE_RANGES if r[1] <= 0xFFFF])}]")
_TABLE_STR = {
    chr(cp): "" if to is None else chr(to) if isinstance(to, int) else to
    for cp, to in _TABLE.items()
}
_MAX_REPLACED = 16
_MAKES_ASTRAL = frozenset(
    ch for ch, to in _TABLE_STR.items() if any(ord(image) > 0xFFFF for image in to)
)
_ASCII_TABLE = {cp: to for cp, to in _TABLE.items() if cp < 0x80}
_ASCII_TABLE.update({ord(ch): " " for ch in "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"})
_SPACES = re.compile("  +")
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


def _nfkc(text: str) -> str:
    # str.replace of a character absent from the text is a scan at memory speed, many times
    # faster than a regex scan; the common punctuation goes first, the rest only if needed.
    for ch in _COMMON_FULLWIDTH:
        if ch in text:
            text = text.replace(ch, _FULLWIDTH_MAP[ch])
    if unicodedata.is_normalized("NFKC", text):
        return text
    for ch in set(_FULLWIDTH.findall(text)):
        text = text.replace(ch, _FULLWIDTH_MAP[ch])
    if unicodedata.is_normalized("NFKC", text):
        return text
    return _BETWEEN_IDEOGRAPHS.sub(_nfkc_piece, text)


def _fold(text: str, astral: bool) -> tuple[str, bool]:
    """Step 3: ``text.translate(_TABLE)``, done the cheapest way for this text.

    Also says whether the result has astral characters: some traditional characters of
    the BMP have an astral simplified form (勣 -> U+2A7DD).
    """
    found = _NEEDS_TABLE_BMP.findall(text)
    if astral:
        found += [ch for ch in _ANY_ASTRAL.findall(text) if ord(ch) in _TABLE]
    if not found:
        return text, astral
    distinct = set(found)
    astral = astral or not _MAKES_ASTRAL.isdisjoint(distinct)
    if len(distinct) > _MAX_REPLACED:
        return text.translate(_TABLE), astral
    for ch in distinct:
        text = text.replace(ch, _TABLE_STR[ch])
    return text, astral


def _collapse_spaces(text: str) -> str:
    """Step 6 when every whitespace character is a space: ``" ".join(text.split())``.

    ``str.split`` makes one object per word, which costs more than the regex on Latin text.
    """
    return _SPACES.sub(" ", text).strip(" ")


def _ascii_pass(text: str) -> str:
    # ASCII text is NFKC, casefolds as lower(), has no CJK, marks or folded letters; the table
    # only removes controls, and whitespace controls become spaces here.
    return _collapse_spaces(text.lower().translate(_ASCII_TABLE))


def _has_astral(text: str) -> bool:
    # Astral characters are the ones UTF-16 encodes in four bytes (lone surrogates in two).
    return len(text.encode("utf-16-le", "surrogatepass")) != 2 * len(text)


def _one_pass(text: str) -> str:
    if text.isascii():
        return _ascii_pass(text)
    astral = _has_astral(text)
    if not unicodedata.is_normalized("NFKC", text):
        text = _nfkc(text)
        # A few compatibility ideographs of the BMP decompose to astral ones (U+FA6C).
        astral = astral or _has_astral(text)
    # str.replace, not the table: these two are in nearly every Chinese text, and keeping
    # them out of the table lets most text skip str.translate altogether.
    text, astral = _fold(text.casefold().replace("。", ".").replace("、", ","), astral)
    if (_ANY_MARK if astral else _ANY_MARK_BMP).search(text) is not None:
        text = _MARKS_AFTER_LATIN.sub("", text)
    if astral:
        if _ANY_CJK.search(text) is not None:
            text = _CJK_SEPARATED.sub("", text)
    elif _ANY_CJK_BMP.search(text) is not None:
        text = _CJK_SEPARATED_BMP.sub("", text)
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
