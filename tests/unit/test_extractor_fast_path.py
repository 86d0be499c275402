"""The extractor's fast MIME path builds what the stdlib parser builds.

`_parse_fast` cuts bodies at their delimiter lines itself and hands everything unusual to
the stdlib feed parser. For every input here, extracting with the fast path and with it
switched off gives the same ParsedMessage. For well-formed input the fast path must
actually be taken, so that the comparison is not vacuous.
"""

from __future__ import annotations

import sys
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menshen.extraction import Extractor
from menshen.extraction import extractor as extractor_module
from menshen.extraction.charsets import decode_rfc2047
from menshen.model import ExtractionLimits, ParsedMessage

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
EXTRACT_CORPUS = ROOT / "fuzz" / "corpus" / "extract"
sys.path.insert(0, str(ROOT / "tests" / "hostile"))

from hostile_cases import CASES as HOSTILE_CASES  # noqa: E402
from hostile_cases import HostileCase  # noqa: E402

EXTRACTOR = Extractor(ExtractionLimits())
PHRASE = "代开发票"


FULL_PARSER = Extractor(ExtractionLimits(), fast_path=False)


def both_ways(raw: bytes) -> tuple[ParsedMessage, ParsedMessage]:
    return EXTRACTOR.extract(raw), FULL_PARSER.extract(raw)


def takes_fast_path(raw: bytes) -> bool:
    return extractor_module._parse_fast(raw) is not None


# --- fixed cases ---------------------------------------------------------------------------


def entity(headers: list[str], body: bytes, eol: bytes = b"\r\n") -> bytes:
    return b"".join(h.encode("utf-8", "surrogateescape") + eol for h in headers) + eol + body


def multipart(
    parts: list[bytes],
    boundary: str = "B",
    *,
    eol: bytes = b"\r\n",
    preamble: bytes = b"",
    epilogue: bytes = b"",
    padding: bytes = b"",
    close: bool = True,
    subtype: str = "mixed",
    extra: tuple[str, ...] = (),
) -> bytes:
    delimiter = b"--" + boundary.encode("utf-8", "surrogateescape")
    out = [preamble]
    for part in parts:
        out.append(delimiter + padding + eol + part + eol)
    if close:
        out.append(delimiter + b"--" + padding + eol + epilogue)
    header = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
    return entity([header, *extra], b"".join(out), eol)


def message(body_entity: bytes, eol: bytes = b"\r\n") -> bytes:
    return entity(["From: Zhang <a@example.com>", "Subject: test"], b"", eol)[: -len(eol)] + (
        body_entity
    )


TEXT = entity(["Content-Type: text/plain; charset=utf-8"], f"hello {PHRASE}".encode())
HTML = entity(["Content-Type: text/html; charset=utf-8"], f"<p>{PHRASE}</p>".encode())
PDF = entity(
    [
        "Content-Type: application/pdf; name=a.pdf",
        "Content-Transfer-Encoding: base64",
        'Content-Disposition: attachment; filename="a.pdf"',
    ],
    b"JVBERi0xLjcK\r\nAAECAwQ=",
)
LF_TEXT = entity(["Content-Type: text/plain"], b"lf body", b"\n")

# Well formed: the fast path must take these.
TAKEN = {
    "mixed-text-pdf": message(multipart([TEXT, PDF])),
    "alternative-in-mixed": message(multipart([multipart([TEXT, HTML], "ALT"), PDF], "MIX")),
    "lf-only": message(multipart([LF_TEXT], eol=b"\n"), b"\n"),
    "preamble-epilogue": message(
        multipart([TEXT], preamble=b"This is MIME.\r\n--B is not it\r\n", epilogue=b"bye\r\n")
    ),
    "transport-padding": message(multipart([TEXT, HTML], padding=b" \t ")),
    "part-without-headers": message(multipart([b"\r\nno headers here"])),
    "empty-body-part": message(multipart([entity(["Content-Type: text/plain"], b"")])),
    "boundary-look-alikes": message(multipart([entity([], b"--BX\r\n--B--x\r\n-- B\r\n--\r\n")])),
    "prefix-boundaries": message(multipart([multipart([TEXT], "AB"), TEXT], "A")),
    "close-without-eol": message(multipart([TEXT]))[:-2],
    "eight-bit-part": message(
        multipart([entity(["Content-Type: text/plain; charset=gbk"], PHRASE.encode("gbk"))])
    ),
    "unquoted-boundary": message(
        entity(
            ["Content-Type: multipart/mixed; boundary=plain"],
            b"--plain\r\n" + TEXT + b"\r\n--plain--\r\n",
        )
    ),
    "boundary-with-space": message(multipart([TEXT], "a b c")),
    "single-part": message(TEXT),
    "mixed-line-ends": message(multipart([LF_TEXT, TEXT])),
}

# Unusual: whichever path runs, the result must be the stdlib's.
UNUSUAL = {
    "lone-cr": message(multipart([entity([], b"a\rb")])),
    "no-close": message(multipart([TEXT], close=False)),
    "no-start": message(entity(['Content-Type: multipart/mixed; boundary="B"'], b"text\r\n")),
    "close-first": message(
        entity(['Content-Type: multipart/mixed; boundary="B"'], b"--B--\r\n--B\r\n" + TEXT)
    ),
    "consecutive-delimiters": message(
        entity(['Content-Type: multipart/mixed; boundary="B"'], b"--B\r\n--B\r\n" + TEXT)
        + b"\r\n--B--\r\n"
    ),
    "no-boundary": message(entity(["Content-Type: multipart/mixed"], TEXT)),
    "empty-boundary": message(multipart([TEXT], "")),
    "base64-multipart": message(multipart([TEXT], extra=("Content-Transfer-Encoding: base64",))),
    "digest": message(multipart([entity(["Subject: inner"], b"x")], subtype="digest")),
    "rfc822-child": message(
        multipart([entity(["Content-Type: message/rfc822"], entity(["Subject: in"], b"x"))])
    ),
    "same-boundary-nested": message(multipart([multipart([TEXT], "B")], "B")),
    "headers-only-part": message(
        entity(['Content-Type: multipart/mixed; boundary="B"'], b"--B\r\nX-A: 1\r\n--B--\r\n")
    ),
    "not-a-header": message(multipart([b"not a header line\r\n\r\nbody"])),
    "two-content-types": message(
        multipart([entity(["Content-Type: text/plain", "Content-Type: text/html"], b"x")])
    ),
    "delimiter-at-eof": message(
        entity(['Content-Type: multipart/mixed; boundary="B"'], b"--B\r\n" + TEXT + b"\r\n--B")
    ),
    "eight-bit-boundary": message(multipart([TEXT], "b\udce9")),
    "rfc2231-boundary": message(
        entity(
            ["Content-Type: multipart/mixed; boundary*=utf-8''%E4%BB%A3"],
            "--代\r\n".encode() + TEXT + "\r\n--代--\r\n".encode(),
        )
    ),
    "deep": message(
        multipart([multipart([multipart([TEXT], "C")], "D")] * 2, "E"),
    ),
}


def _deep(levels: int) -> bytes:
    inner = TEXT
    for level in range(levels):
        inner = multipart([inner], f"L{level}")
    return message(inner)


UNUSUAL["nested-past-fast-depth"] = _deep(extractor_module._MAX_FAST_DEPTH + 3)
TAKEN["nested-within-fast-depth"] = _deep(extractor_module._MAX_FAST_DEPTH - 2)


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_well_formed_mail_takes_the_fast_path(name: str) -> None:
    raw = TAKEN[name]
    assert takes_fast_path(raw)
    fast, full = both_ways(raw)
    assert fast == full


@pytest.mark.parametrize("name", sorted(UNUSUAL))
def test_unusual_mail_reads_as_the_stdlib_reads_it(name: str) -> None:
    fast, full = both_ways(UNUSUAL[name])
    assert fast == full


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.eml")), ids=lambda p: p.name)
def test_samples(path: Path) -> None:
    raw = path.read_bytes()
    assert takes_fast_path(raw) or b"message/rfc822" in raw
    fast, full = both_ways(raw)
    assert fast == full


@pytest.mark.parametrize("path", sorted(EXTRACT_CORPUS.iterdir()), ids=lambda p: p.name)
def test_fuzz_corpus(path: Path) -> None:
    fast, full = both_ways(path.read_bytes())
    assert fast == full


# html-30mb is one text/html part; rendering it twice would take most of this file's time.
HOSTILE = [case for case in HOSTILE_CASES if case.name != "html-30mb"]


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_hostile_cases(case: HostileCase) -> None:
    fast, full = both_ways(case.build())
    assert fast == full


# --- generated trees -------------------------------------------------------------------------

_LEAF_HEADERS = st.sampled_from(
    [
        [],
        ["Content-Type: text/plain; charset=utf-8"],
        ["Content-Type: text/plain; charset=gbk", "Content-Transfer-Encoding: 8bit"],
        ["Content-Type: text/html", "Content-Transfer-Encoding: quoted-printable"],
        ["Content-Type: application/pdf; name=x.pdf", "Content-Transfer-Encoding: base64"],
        ['Content-Disposition: attachment; filename="n.txt"'],
        ["Content-Description: =?utf-8?B?5Luj5byA?="],
    ]
)
_CLEAN_LINES = st.sampled_from(
    [b"", b"plain text", PHRASE.encode("utf-8"), PHRASE.encode("gbk"), b"5Luj5byA", b"=E4=BB"]
)
_TRICKY_LINES = st.sampled_from(
    [b"--", b"--B", b"--B--", b"--BX", b"--B \t", b"--C", b"--C--", b"a\rb", b"From x", b" "]
)


@st.composite
def _tree(draw: st.DrawFn, depth: int, clean: bool, boundary_of_parent: str) -> bytes:
    eol = b"\r\n" if clean or draw(st.booleans()) else b"\n"
    lines = _CLEAN_LINES if clean else st.one_of(_CLEAN_LINES, _TRICKY_LINES)
    if depth >= 3 or draw(st.integers(0, 2)) == 0:
        headers = draw(_LEAF_HEADERS)
        body = eol.join(draw(st.lists(lines, max_size=6)))
        return entity(headers, body, eol)
    if clean:
        boundary = f"{boundary_of_parent}x{depth}"
    else:
        boundary = draw(st.sampled_from(["B", "C", boundary_of_parent, "B x"]))
    children = draw(
        st.lists(_tree(depth + 1, clean, boundary), min_size=1 if clean else 0, max_size=3)
    )
    return multipart(
        children,
        boundary,
        eol=eol,
        preamble=b"" if clean else eol.join(draw(st.lists(lines, max_size=2))),
        epilogue=eol.join(draw(st.lists(lines, max_size=2))) if not clean else b"",
        padding=draw(st.sampled_from([b"", b" ", b"\t "])),
        close=clean or draw(st.integers(0, 5)) > 0,
        subtype=draw(st.sampled_from(["mixed", "alternative"] + ([] if clean else ["digest"]))),
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree(0, clean=True, boundary_of_parent="P"))
def test_generated_well_formed_trees(body_entity: bytes) -> None:
    raw = message(body_entity)
    assert takes_fast_path(raw)
    fast, full = both_ways(raw)
    assert fast == full


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tree(0, clean=False, boundary_of_parent="B"))
def test_generated_unusual_trees(body_entity: bytes) -> None:
    fast, full = both_ways(message(body_entity))
    assert fast == full


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_after_a_multipart_header(tail: bytes) -> None:
    raw = message(entity(['Content-Type: multipart/mixed; boundary="B"'], tail))
    fast, full = both_ways(raw)
    assert fast == full


# --- header blocks ---------------------------------------------------------------------------

_HEADER_LINES = st.sampled_from(
    [
        b"Subject: x",
        b"Subject:x",
        b"X-Empty:",
        b"X-Pad: \t value \t",
        b" continued",
        b"\tcontinued",
        b" ",
        b"From sender@example.com Mon Jan  1",
        b"From: Zhang <a@example.com>",
        b"not a header line",
        b": no name",
        b"X Space: v",
        b"\xc3\x9c: eight-bit name",
        b"Subject: \xb4\xfa eight-bit value",
        b"Content-Type: text/plain;",
        b"X-Colons: a: b: c",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_HEADER_LINES, st.sampled_from([b"\r\n", b"\n"])), max_size=8))
def test_header_blocks_read_as_the_stdlib_reads_them(lines: list[tuple[bytes, bytes]]) -> None:
    head = b"".join(line + eol for line, eol in lines) + b"\r\n"
    ours = extractor_module._parse_head(head)
    theirs = BytesParser(policy=extractor_module._POLICY).parsebytes(head, headersonly=True)
    stdlib_is_plain = not theirs.get_payload() and not theirs.defects and not theirs.get_unixfrom()
    if ours is None:
        return  # the full parser takes it: always allowed
    assert stdlib_is_plain
    assert list(ours.raw_items()) == list(theirs.raw_items())


def test_ordinary_header_blocks_are_read_here() -> None:
    head = b"From: Zhang <a@example.com>\r\nSubject: a\r\n b\r\nX-Empty:\r\n\r\n"
    ours = extractor_module._parse_head(head)
    assert ours is not None
    assert list(ours.raw_items()) == [
        ("From", "Zhang <a@example.com>"),
        ("Subject", "a\r\n b"),
        ("X-Empty", ""),
    ]


# --- display names ---------------------------------------------------------------------------


def names_by_getaddresses(value: str) -> str:
    pairs = getaddresses([value])
    return "\n".join(decode_rfc2047(name) for name, _ in pairs if name)


_PLAIN_PIECES = ["a", " ", "\t", "\r\n ", ".", "-", "'", "!#$%&*+/^_`{|}~", "=?gbk?B?tPq/qg==?="]
_SPECIAL_PIECES = ["<", ">", "@", '"', "(", ")", ",", ";", ":", "[", "]", "\\", "\udcb4", "代"]
_ADDRESS_PIECES = st.sampled_from([*_PLAIN_PIECES, *_SPECIAL_PIECES])


@settings(max_examples=1000, deadline=None)
@given(st.lists(_ADDRESS_PIECES, max_size=12).map("".join))
def test_display_names_match_getaddresses(value: str) -> None:
    assert extractor_module._Run.display_names(value) == names_by_getaddresses(value)


@pytest.mark.parametrize(
    "value",
    [
        "Zhang Wei <zhang@example.com>",
        "=?utf-8?B?5byg5Lyf?= <zhang@example.com>",
        "J. Smith\r\n <j@example.com>",
        "<bare@example.com>",
        "bare@example.com",
        "  spaced   out   name  <a@b>  ",
    ],
)
def test_simple_addresses_take_the_fast_path(value: str) -> None:
    assert extractor_module._SIMPLE_ADDRESS.fullmatch(value)
    assert extractor_module._Run.display_names(value) == names_by_getaddresses(value)
