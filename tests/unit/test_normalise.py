"""normalise(): one named case per rule, plus hypothesis properties."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from menshen.text import normalise as normalise_module
from menshen.text import unihan_tables
from menshen.text.normalise import is_cjk, normalise

CASES = {
    "nfkc_fullwidth_latin": ("ＣＩＡＬＩＳ１２３", "cialis123"),
    "nfkc_math_bold": ("𝐜𝐢𝐚𝐥𝐢𝐬", "cialis"),
    "nfkc_ligature": ("ﬁle", "file"),
    "nfkc_circled_digit": ("①②", "12"),
    "nfkc_halfwidth_katakana": ("ｶﾀｶﾅ", "カタカナ"),
    "nfkc_compat_ideograph": ("\uf900", "岂"),
    "nfkc_kangxi_radical": ("\u2f00", "一"),
    "casefold_upper": ("Verify YOUR Account", "verify your account"),
    "casefold_sharp_s": ("STRAẞE", "strasse"),
    "casefold_turkish_dotted_i": ("İstanbul", "istanbul"),
    "ideographic_space": ("buy\u3000now", "buy now"),
    "fullwidth_punct_latin": ("ｂｕｙ！ｎｏｗ？", "buy!now?"),
    "ideographic_full_stop_in_domain": ("example。com", "example.com"),
    "zero_width_space": ("cia\u200blis", "cialis"),
    "zero_width_non_joiner": ("cia\u200clis", "cialis"),
    "zero_width_joiner": ("cia\u200dlis", "cialis"),
    "word_joiner": ("cia\u2060lis", "cialis"),
    "bom_inside": ("cia\ufefflis", "cialis"),
    "soft_hyphen": ("cia\u00adlis", "cialis"),
    "bidi_override": ("\u202ecialis\u202c", "cialis"),
    "bidi_isolates": ("\u2066cia\u2069lis", "cialis"),
    "combining_grapheme_joiner": ("cia\u034flis", "cialis"),
    "mongolian_vowel_separator": ("cia\u180elis", "cialis"),
    "variation_selector": ("代\ufe0f开发票", "代开发票"),
    "variation_selector_supplement": ("代\U000e0100开发票", "代开发票"),
    "hangul_filler": ("cia\u3164lis", "cialis"),
    "tag_characters": ("cia\U000e0041lis", "cialis"),
    "nul_and_controls": ("cia\x00li\x07s", "cialis"),
    "latin_diacritics": ("vïágrà", "viagra"),
    "strike_through_marks": ("k\u0336e\u0336y\u0336", "key"),
    "marks_after_kana_compose": ("か\u3099", "が"),
    "marks_after_cjk_kept": ("代\u0301", "代\u0301"),
    "whitespace_collapse": ("  buy \t\n  now  ", "buy now"),
    "cjk_space": ("代 开 发 票", "代开发票"),
    "cjk_star_and_zwsp": ("代 开*发\u200b票", "代开发票"),
    "cjk_fullwidth_punct": ("代，开。发 票", "代开发票"),
    "cjk_newline": ("法\n轮", "法轮"),
    "cjk_underscore_dot": ("法_轮.功", "法轮功"),
    "cjk_fullwidth_space": ("代\u3000开", "代开"),
    "cjk_separated_by_letter": ("代X开发票", "代x开发票"),
    "cjk_separated_by_digit": ("代1开", "代1开"),
    "cjk_latin_space_kept": ("购买 cialis 药品", "购买 cialis 药品"),
    "traditional_invoice": ("代開發票", "代开发票"),
    "traditional_confidential": ("機密", "机密"),
    "traditional_one_to_many": ("瀋陽", "沈阳"),
    "traditional_chain": ("薴", "苎"),
    "lone_surrogate": ("a\ud800b", "a\ufffdb"),
    "empty": ("", ""),
    "only_invisible": ("\u200b\u200d\ufeff", ""),
}


@pytest.mark.parametrize(("text", "expected"), CASES.values(), ids=CASES.keys())
def test_normalise_case(text: str, expected: str) -> None:
    assert normalise(text) == expected


IS_CJK = {
    "han": ("代", True),
    "han_ext_b": ("𠀀", True),
    "hiragana": ("あ", True),
    "katakana": ("カ", True),
    "hangul": ("한", True),
    "prolonged_sound_mark": ("ー", True),
    "latin": ("a", False),
    "digit": ("1", False),
    "cjk_punct": ("，", False),
    "two_chars": ("代开", False),
}


@pytest.mark.parametrize(("ch", "expected"), IS_CJK.values(), ids=IS_CJK.keys())
def test_is_cjk(ch: str, expected: bool) -> None:
    assert is_cjk(ch) is expected


@settings(max_examples=400, deadline=None)
@given(st.text())
def test_idempotent_and_total(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.integers(0, sys.maxunicode).map(chr), max_size=50))
def test_idempotent_on_cjk_and_marks(text: str) -> None:
    mixed = text + "代\u0301 \u200bé\u0308" + text
    once = normalise(mixed)
    assert normalise(once) == once


# --- differential: the fast paths against the documented steps, done the slow, plain way ----


def _is_separator(ch: str) -> bool:
    return any(first <= ord(ch) <= last for first, last in unihan_tables.CJK_SEPARATORS)


def _reference_pass(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("。", ".").replace("、", ",").translate(normalise_module._TABLE)
    text = normalise_module._MARKS_AFTER_LATIN.sub("", text)
    out = ""
    i = 0
    while i < len(text):
        j = i
        while j < len(text) and _is_separator(text[j]):
            j += 1
        if i < j < len(text) and out and is_cjk(out[-1]) and is_cjk(text[j]):
            i = j  # a run of separators between two CJK characters
            continue
        end = max(j, i + 1)
        out += text[i:end]
        i = end
    return " ".join(out.split())


def reference_normalise(text: str) -> str:
    result = _reference_pass(text)
    for _ in range(2):
        if unicodedata.is_normalized("NFKC", result):
            break
        again = _reference_pass(result)
        if again == result:
            break
        result = again
    return result


MIXED_CHARS = (
    "abc XYZ019\t\n\r\x00\x1c\x85\xa0,.(*_-$代开发票開發覆乾著，。、：；！\u3000ＡＢ０ｚ"
    "\u200b\u0301\u0336éÉ\u2028\U00020000𝐜\ufe0f\U000e0100か\u3099ｶßİ\ud800ǰ<\u0338＜ж"
)
MIXED = st.sampled_from(list(MIXED_CHARS))


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(), st.text(alphabet=MIXED, max_size=40)))
def test_matches_reference(text: str) -> None:
    assert normalise(text) == reference_normalise(text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=60))
def test_ascii_path_matches_reference(text: str) -> None:
    assert normalise(text) == reference_normalise(text)
    once = normalise(text)
    assert normalise(once) == once


def test_fold_many_distinct_characters_uses_the_table() -> None:
    traditional = "".join(
        chr(cp) for cp in list(normalise_module._TABLE)[:400] if chr(cp).isprintable()
    )
    assert normalise(traditional) == reference_normalise(traditional)
    assert normalise("乾著覆 代開發票") == reference_normalise("乾著覆 代開發票")


def test_separators_next_to_astral_cjk() -> None:
    assert normalise("𠀀 ，代") == "𠀀代"
    assert normalise("代 𠀀") == "代𠀀"
    assert normalise("a 𠀀 b") == "a 𠀀 b"
