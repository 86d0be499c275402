"""Charset resolver and RFC 2047 header decoding."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menshen.extraction.charsets import (
    decode_bytes,
    decode_rfc2047,
    lenient_b64decode,
    resolve_charset,
)

PHRASE = "代开发票"
TRAD = "代開發票"


def ew(text: str, charset: str, enc: str = "B") -> str:
    data = text.encode(charset)
    if enc == "B":
        return f"=?{charset}?B?{base64.b64encode(data).decode()}?="
    return f"=?{charset}?Q?{''.join(f'={b:02X}' for b in data)}?="


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        pytest.param("gb2312", ("gb18030",), id="gb2312-is-gb18030"),
        pytest.param("GBK", ("gb18030",), id="gbk-upper"),
        pytest.param("x-gbk", ("gb18030",), id="x-gbk"),
        pytest.param("CP936", ("gb18030",), id="cp936"),
        pytest.param("euc-cn", ("gb18030",), id="euc-cn"),
        pytest.param("GB_2312-80", ("gb18030",), id="gb_2312-80"),
        pytest.param('"csGB2312"', ("gb18030",), id="quoted-csgb2312"),
        pytest.param("chinese", ("gb18030",), id="chinese"),
        pytest.param(" gb18030 ", ("gb18030",), id="spaces"),
        pytest.param("big5", ("big5hkscs", "cp950"), id="big5"),
        pytest.param("Big5-HKSCS", ("big5hkscs", "cp950"), id="big5-hkscs"),
        pytest.param("cp950", ("big5hkscs", "cp950"), id="cp950"),
        pytest.param("UTF-8", ("utf-8",), id="utf-8"),
        pytest.param("utf8", ("utf-8",), id="utf8"),
        pytest.param("iso-8859-1", ("iso8859-1",), id="latin-1"),
        pytest.param("x-unknown-charset", (), id="unknown"),
        pytest.param("uft-8", (), id="typo"),
        pytest.param("base64", (), id="bytes-codec-is-not-a-charset"),
        pytest.param("zlib", (), id="zlib-is-not-a-charset"),
        pytest.param("", (), id="empty"),
        pytest.param(None, (), id="none"),
        pytest.param("a" * 200, (), id="absurdly-long"),
    ],
)
def test_resolve_charset(label: str | None, expected: tuple[str, ...]) -> None:
    assert resolve_charset(label) == expected


@pytest.mark.parametrize(
    ("data", "declared", "text", "fallback"),
    [
        pytest.param(PHRASE.encode("gbk"), "gb2312", PHRASE, False, id="gbk-bytes-gb2312-label"),
        pytest.param(
            "𠀀代开".encode("gb18030"), "gb2312", "𠀀代开", False, id="gb18030-4byte-gb2312-label"
        ),
        pytest.param(PHRASE.encode("gb18030"), "gbk", PHRASE, False, id="gb18030-gbk-label"),
        pytest.param(TRAD.encode("big5"), "big5", TRAD, False, id="big5"),
        pytest.param("€".encode("cp950"), "big5", "€", False, id="big5-euro-via-cp950"),
        pytest.param(PHRASE.encode(), "utf-8", PHRASE, False, id="utf-8"),
        pytest.param(PHRASE.encode(), None, PHRASE, False, id="no-label-utf-8"),
        pytest.param(PHRASE.encode("gbk"), None, PHRASE, True, id="no-label-gbk"),
        pytest.param(PHRASE.encode(), "bogus", PHRASE, True, id="bogus-label-utf-8"),
        pytest.param(PHRASE.encode("gbk"), "uft-8", PHRASE, True, id="typo-label-gbk"),
        pytest.param(PHRASE.encode(), "us-ascii", PHRASE, True, id="ascii-label-lies"),
        pytest.param(PHRASE.encode("gbk"), "utf-8", PHRASE, True, id="utf-8-label-lies"),
        pytest.param(b"", "bogus", "", False, id="empty"),
        pytest.param(b"plain", "base64", "plain", True, id="bytes-codec-label"),
    ],
)
def test_decode_bytes(data: bytes, declared: str | None, text: str, fallback: bool) -> None:
    assert decode_bytes(data, declared) == (text, fallback)


def test_decode_bytes_replaces_when_nothing_fits() -> None:
    text, fallback = decode_bytes(b"ok \xff\xfe\xff", "utf-8")
    assert fallback
    assert text.startswith("ok ")
    assert "\ufffd" in text


@given(st.binary(max_size=300), st.one_of(st.none(), st.text(max_size=30)))
def test_decode_bytes_never_raises(data: bytes, declared: str | None) -> None:
    text, fallback = decode_bytes(data, declared)
    assert isinstance(text, str)
    assert isinstance(fallback, bool)


@given(st.text(max_size=200), st.sampled_from(["utf-8", "gb18030", "big5hkscs"]))
def test_decode_bytes_round_trips_declared(text: str, charset: str) -> None:
    try:
        data = text.encode(charset)
    except UnicodeEncodeError:
        return
    assert decode_bytes(data, charset) == (text, False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(ew(PHRASE, "gb2312"), PHRASE, id="gb2312-b"),
        pytest.param(ew(PHRASE, "gbk", "Q"), PHRASE, id="gbk-q"),
        pytest.param(ew(PHRASE, "utf-8"), PHRASE, id="utf-8-b"),
        pytest.param(ew(TRAD, "big5"), TRAD, id="big5-b"),
        pytest.param(
            f"Re: {ew('代开', 'utf-8')} {ew('发票', 'utf-8')}", "Re: 代开发票", id="adjacent"
        ),
        pytest.param(
            f"{ew('代开', 'utf-8')}\r\n\t{ew('发票', 'gbk')}", PHRASE, id="folded-mixed-charsets"
        ),
        pytest.param(
            "=?utf-8?B?" + base64.b64encode(PHRASE.encode()[:4]).decode() + "?= "
            "=?utf-8?B?" + base64.b64encode(PHRASE.encode()[4:]).decode() + "?=",
            PHRASE,
            id="multibyte-char-split-across-words",
        ),
        pytest.param("a =?utf-8?Q?x?= b", "a x b", id="text-around-kept"),
        pytest.param("=?utf-8?Q?hello_world?=", "hello world", id="q-underscore"),
        pytest.param("=?utf-8*zh?B?5Luj5byA5Y+R56Wo?=", PHRASE, id="rfc2231-language"),
        pytest.param("=?bogus?B?5Luj5byA5Y+R56Wo?=", PHRASE, id="unknown-charset"),
        pytest.param("=?utf-8?B?5Luj5byA!!5Y+R56Wo?=", PHRASE, id="garbage-in-base64"),
        pytest.param("=?utf-8?B?5Luj5byA5Y+R56W?=", "代开发\ufffd", id="truncated-base64"),
        pytest.param("=?utf-8?B?====?=", "", id="only-padding"),
        pytest.param("=?utf-8?X?abc?=", "=?utf-8?X?abc?=", id="unknown-encoding-kept"),
        pytest.param("=?utf-8?B?unterminated", "=?utf-8?B?unterminated", id="unterminated"),
        pytest.param(
            PHRASE.encode("gbk").decode("ascii", "surrogateescape"), PHRASE, id="raw-8bit-gbk"
        ),
        pytest.param(
            PHRASE.encode().decode("ascii", "surrogateescape"), PHRASE, id="raw-8bit-utf-8"
        ),
        pytest.param("", "", id="empty"),
    ],
)
def test_decode_rfc2047(value: str, expected: str) -> None:
    assert decode_rfc2047(value) == expected


@given(st.text(max_size=200))
def test_decode_rfc2047_never_raises(value: str) -> None:
    assert isinstance(decode_rfc2047(value), str)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["utf-8", "gbk", "gb2312", "big5", "x-bogus", "base64", ""]),
            st.sampled_from("BbQqX"),
            st.text(alphabet="ABCabc012+/=_?!", max_size=20),
        ),
        max_size=6,
    )
)
def test_decode_rfc2047_never_raises_on_encoded_words(
    words: list[tuple[str, str, str]],
) -> None:
    value = " ".join(f"=?{c}?{e}?{t}?=" for c, e, t in words)
    assert isinstance(decode_rfc2047(value), str)


@pytest.mark.parametrize(
    ("data", "expected", "clean"),
    [
        pytest.param(b"QUJD", b"ABC", True, id="clean"),
        pytest.param(b"QU\r\nJD\r\n", b"ABC", True, id="line-breaks"),
        pytest.param(b"QUJ", b"AB", False, id="missing-padding"),
        pytest.param(b"QU JD!!\x00", b"ABC", False, id="noise"),
        pytest.param(b"QUJDRA==QUJD", b"ABCDABC", False, id="data-after-padding"),
        pytest.param(b"=", b"", False, id="lone-equals"),
        pytest.param(b"Q", b"", False, id="single-char"),
    ],
)
def test_lenient_b64decode(data: bytes, expected: bytes, clean: bool) -> None:
    assert lenient_b64decode(data) == (expected, clean)


@given(st.binary(max_size=200), st.binary(max_size=20), st.integers(0, 300))
def test_lenient_b64decode_survives_noise(payload: bytes, noise: bytes, at: int) -> None:
    encoded = base64.b64encode(payload)
    noisy = (
        encoded[:at]
        + noise.translate(
            None, b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
        )
        + encoded[at:]
    )
    assert lenient_b64decode(noisy)[0] == payload
