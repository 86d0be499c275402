"""Named regression tests for the crashes, hangs and bombs the hostile suite and the fuzzers
found, each with the smallest input that showed it. docs/RELIABILITY.md ("Crashes found and
fixed") says what each did before its fix and where the fix is:

- charset-idna-replace, charset-punycode-quadratic: extraction/charsets.py;
- office-many-bomb-members, office-text-budget, office-deadline, office-lying-sizes:
  extraction/office.py;
- deep-nesting-prefix, limit-details-are-printable, eight-bit-charset-label (fuzz target
  extract): extraction/extractor.py;
- normalise-astral-fold (fuzz target normalise): text/normalise.py;
- yaml-reader-error, yaml-deep-nesting (fuzz target config): yamlsource.py.
"""

from __future__ import annotations

import base64
import time
import zlib

import pytest
from hostile_cases import (
    PHRASE,
    RawEntry,
    deep_multipart,
    docx_mail,
    docx_many_bomb_members,
    message,
    raw_zip,
)

from menshen.config import ConfigError, parse_config
from menshen.extraction import Extractor
from menshen.extraction.charsets import decode_bytes, decode_replacing, resolve_charset
from menshen.extraction.office import read_office
from menshen.model import ExtractionLimits, Where
from menshen.text.normalise import normalise

EXTRACTOR = Extractor(ExtractionLimits())
MB = 1 << 20


def _text(raw: bytes, where: Where) -> str:
    return "\n".join(s.text for s in EXTRACTOR.extract(raw).segments if s.where is where)


# --- charsets -------------------------------------------------------------------------


@pytest.mark.parametrize("label", ["idna", "punycode", "undefined", "unicode_escape"])
def test_codecs_that_are_no_charsets_are_unknown(label: str) -> None:
    assert resolve_charset(label) == ()
    text, fallback = decode_bytes(f"x {PHRASE}".encode(), label)
    assert fallback and PHRASE in text


def test_charset_idna_replace() -> None:
    # decode_text decoded the declared charset a second time with errors="replace".
    raw = message(["Content-Type: text/plain; charset=idna"], b"\xff\xfe " + PHRASE.encode())
    parsed = EXTRACTOR.extract(raw)
    assert not [hit for hit in parsed.limits_hit if "internal error" in hit.detail]
    assert PHRASE in _text(raw, Where.BODY)
    assert decode_replacing(b"abc", "idna") == "abc"


def test_charset_punycode_quadratic() -> None:
    raw = message(["Content-Type: text/plain; charset=punycode"], b"a-" + b"b" * MB)
    started = time.monotonic()
    EXTRACTOR.extract(raw)
    assert time.monotonic() - started < 10  # minutes before the fix


# --- Office documents ------------------------------------------------------------------


def test_office_many_bomb_members() -> None:
    data = docx_many_bomb_members(100, 21 * MB)
    result = read_office(data, "bomb.docx", ExtractionLimits(), byte_budget=50 * MB)
    assert result.bytes_read <= 50 * MB
    assert any(p.startswith("over budget") for p in result.problems), result.problems
    parsed = EXTRACTOR.extract(docx_mail(data))
    assert {"decoded_bytes", "text_chars"} & {hit.limit for hit in parsed.limits_hit}


def test_office_text_budget_stops_reading() -> None:
    data = docx_many_bomb_members(10, 2 * MB)
    result = read_office(data, "bomb.docx", ExtractionLimits(), char_budget=1000)
    assert len(result.text) <= 1000
    assert result.bytes_read < 10 * 2 * MB
    assert any(p.endswith("of text") for p in result.problems), result.problems


def test_office_deadline_is_polled_between_members() -> None:
    data = docx_many_bomb_members(3, 2 * MB)
    result = read_office(data, "bomb.docx", ExtractionLimits(), should_stop=lambda: True)
    assert result.bytes_read == 0
    assert result.problems[0].startswith("deadline")


@pytest.mark.parametrize("declared_size", [3, 1 << 31], ids=["too-small", "too-large"])
def test_office_lying_sizes(declared_size: int) -> None:
    body = f"<w:p><w:r><w:t>{PHRASE}</w:t></w:r></w:p>".encode()
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = packer.compress(body) + packer.flush()
    for crc in (zlib.crc32(body), 0xDEADBEEF):
        archive = raw_zip([RawEntry("word/document.xml", data, crc, declared_size)])
        result = read_office(archive, "a.docx", ExtractionLimits())
        assert PHRASE in result.text, result.problems
        assert all(p.startswith("corrupt") for p in result.problems), result.problems


# --- deep nesting ----------------------------------------------------------------------


def test_deep_nesting_prefix() -> None:
    raw = deep_multipart(3000, f"hello {PHRASE}")  # base64 text part before the nest
    parsed = Extractor(ExtractionLimits(max_parts=100_000)).extract(raw)
    assert {"depth", "parse"} <= {hit.limit for hit in parsed.limits_hit}
    assert any(PHRASE in s.text for s in parsed.segments if s.where is Where.BODY)


def test_eight_bit_charset_label() -> None:
    # A header line that is no header made the body of the header-only parse, whose
    # get_payload() decoded it with the charset label, which held a raw 0xFF byte: the
    # stdlib raised UnicodeEncodeError (encoding the codec name) out of the extractor.
    raw = (
        b"Subject: x\r\nContent-Type: text/plain; charset=\xff\r\nnot a header \xfe\r\n\r\n"
        + f"body {PHRASE}\r\n".encode()
    )
    parsed = EXTRACTOR.extract(raw)
    assert not [hit for hit in parsed.limits_hit if "internal error" in hit.detail]
    assert any(PHRASE in s.text for s in parsed.segments), parsed.segments


def test_limit_details_are_printable() -> None:
    name = "word/document\x1b[31m.xml"
    archive = raw_zip([RawEntry(name, b"\xff" * 10, 0, 10, 8)])
    parsed = EXTRACTOR.extract(docx_mail(archive, "a.docx"))
    for hit in parsed.limits_hit:
        assert hit.detail.isprintable(), hit


# --- normalisation ---------------------------------------------------------------------

NORMALISE_CRASH = base64.b64decode("5Lvi5YujgLzplovnmbyA4v+8gY+R77u/56Wo")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(NORMALISE_CRASH.decode("utf-8", "surrogateescape"), id="fuzz-crash"),
        pytest.param("勣，代", id="trad-to-astral-then-separator"),
        pytest.param("\ufa6c，代", id="nfkc-to-astral-then-separator"),
    ],
)
def test_normalise_astral_fold(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once
    assert "，" not in once and "," not in once


# --- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("mode: enforce\nspam: {action:\x01}\n", "f.yml:2: character U+0001", id="nul"),
        pytest.param("\ufffe", "f.yml:1: character U+FFFE", id="noncharacter"),
        pytest.param("a: " + "[" * 5000, "f.yml: nesting too deep", id="yaml-deep-nesting"),
        pytest.param("a: " + "{x: " * 3000 + "1" + "}" * 3000, "f.yml: nesting", id="mappings"),
    ],
)
def test_yaml_reader_error(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "f.yml", base_dir=None)
    assert caught.value.problems[0].startswith(problem), caught.value.problems
