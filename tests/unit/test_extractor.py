"""Extractor: raw bytes -> ParsedMessage, on the samples and on hostile MIME."""

from __future__ import annotations

import base64
import binascii
import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menshen.extraction import Extractor
from menshen.model import ExtractionLimits, ParsedMessage, Where

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
PHRASE = "代开发票"
EXTRACTOR = Extractor(ExtractionLimits())


def texts(parsed: ParsedMessage, where: Where) -> list[str]:
    return [s.text for s in parsed.segments if s.where is where]


def has(parsed: ParsedMessage, where: Where, needle: str) -> bool:
    return any(needle in t for t in texts(parsed, where))


def limit_names(parsed: ParsedMessage) -> set[str]:
    return {hit.limit for hit in parsed.limits_hit}


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def msg(headers: str, body: bytes = b"") -> bytes:
    head = "\r\n".join(["From: a@example.com", "To: b@example.com", *headers.splitlines()])
    return head.encode() + b"\r\n\r\n" + body


def text_part(text: str, charset: str = "utf-8", cte: str = "base64") -> bytes:
    data = text.encode(charset)
    body = b64(data) if cte.strip().lower() == "base64" else data
    return (
        f"Content-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n".encode()
        + body
    )


def mixed(*parts: bytes, boundary: str = "BOUNDARY") -> bytes:
    out = [b"preamble\r\n"]
    for part in parts:
        out.append(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n")
    out.append(b"--" + boundary.encode() + b"--\r\n")
    return msg(f'Content-Type: multipart/mixed; boundary="{boundary}"', b"".join(out))


# -- samples -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples")
    subprocess.run(
        [sys.executable, str(SAMPLES / "make_samples.py"), str(out)], check=True, timeout=60
    )
    return out


@pytest.mark.parametrize(
    ("name", "where", "needle"),
    [
        ("kw-subject-gb2312.eml", Where.SUBJECT, PHRASE),
        ("kw-body-gbk-base64.eml", Where.BODY, PHRASE),
        ("kw-body-gb18030-qp.eml", Where.BODY, PHRASE),
        ("kw-body-big5.eml", Where.BODY, "代開發票"),
        ("kw-html-split.eml", Where.HTML, PHRASE),
        ("kw-zero-width.eml", Where.BODY, "代\u200b开\u200d发\ufeff票"),
        ("kw-spaced.eml", Where.BODY, "代 开*发 票"),
        ("kw-attachment-txt.eml", Where.ATTACHMENT_TEXT, PHRASE),
        ("kw-attachment-docx.eml", Where.ATTACHMENT_TEXT, PHRASE),
        ("kw-attached-message.eml", Where.BODY, PHRASE),
        ("kw-pharma-en.eml", Where.BODY, "cialis"),
        ("clean-specialist.eml", Where.BODY, "specialist"),
        ("clean-chinese-business.eml", Where.BODY, "季度报告"),
        ("clean-chinese-business.eml", Where.ATTACHMENT_NAME, "会议纪要.pdf"),
    ],
)
def test_sample_extracts_phrase(samples: Path, name: str, where: Where, needle: str) -> None:
    parsed = EXTRACTOR.extract((samples / name).read_bytes())
    assert has(parsed, where, needle), parsed.segments
    assert parsed.limits_hit == ()


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.eml")))
def test_committed_samples_match_generator(samples: Path, name: str) -> None:
    assert (SAMPLES / name).read_bytes() == (samples / name).read_bytes()


def test_samples_use_crlf_and_clean_ones_stay_clean(samples: Path) -> None:
    for path in samples.glob("*.eml"):
        raw = path.read_bytes()
        assert raw.count(b"\n") == raw.count(b"\r\n"), path.name
    for name in ("clean-specialist.eml", "clean-chinese-business.eml"):
        parsed = EXTRACTOR.extract((samples / name).read_bytes())
        # "specialist" contains the letters of "cialis"; only a word match may count.
        assert not any(
            PHRASE in s.text or re.search(r"\bcialis\b", s.text) for s in parsed.segments
        )


def test_html_split_plain_part_is_clean(samples: Path) -> None:
    parsed = EXTRACTOR.extract((samples / "kw-html-split.eml").read_bytes())
    assert not has(parsed, Where.BODY, PHRASE)
    assert [s.part for s in parsed.segments if s.where is Where.HTML] == ["2"]


def test_attached_message_paths(samples: Path) -> None:
    parsed = EXTRACTOR.extract((samples / "kw-attached-message.eml").read_bytes())
    by_where = {(s.where, s.part) for s in parsed.segments}
    assert (Where.SUBJECT, "") in by_where
    assert (Where.SUBJECT, "2") in by_where
    assert (Where.HEADER, "2") in by_where  # display name of the attached message
    assert (Where.BODY, "2.1") in by_where
    assert (Where.ATTACHMENT_NAME, "2") in by_where
    assert parsed.subject == "转发邮件"


# -- charsets and transfer encodings ----------------------------------------------------


@pytest.mark.parametrize(
    ("charset", "cte", "text"),
    [
        ("utf-8", "base64", PHRASE),
        ("gbk", "base64", PHRASE),
        ("gb2312", "8bit", PHRASE),
        ("gb18030", "base64", "𠀀" + PHRASE),
        ("big5", "base64", "代開發票"),
        ("utf-8", "BASE64", PHRASE),
        ("utf-8", "base64  ", PHRASE),
        ("x-bogus", "8bit", PHRASE),
        ("uft-8", "8bit", PHRASE),
        ("us-ascii", "7bit", PHRASE),  # 8-bit body declared 7bit and ascii
    ],
)
def test_body_charsets_and_encodings(charset: str, cte: str, text: str) -> None:
    data = text.encode("utf-8" if charset in ("x-bogus", "uft-8", "us-ascii") else charset)
    body = b64(data) if cte.strip().lower() == "base64" else data
    raw = msg(
        f"Subject: t\r\nContent-Type: text/plain; charset={charset}\r\n"
        f"Content-Transfer-Encoding: {cte}",
        body,
    )
    parsed = EXTRACTOR.extract(raw)
    assert texts(parsed, Where.BODY) == [text]


def test_quoted_printable_soft_breaks() -> None:
    encoded = "".join(f"={b:02X}" for b in PHRASE.encode())
    body = (encoded[:15] + "=\r\n" + encoded[15:]).encode()
    raw = msg(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable",
        body,
    )
    assert texts(EXTRACTOR.extract(raw), Where.BODY) == [PHRASE]


def test_uuencode() -> None:
    data = (PHRASE * 5).encode()
    lines = [binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45)]
    body = b"begin 644 x.txt\r\n" + b"".join(lines).replace(b"\n", b"\r\n") + b"`\r\nend\r\n"
    raw = msg(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: x-uuencode", body
    )
    assert texts(EXTRACTOR.extract(raw), Where.BODY) == [PHRASE * 5]


def test_no_charset_8bit_falls_back_to_gb18030() -> None:
    raw = msg("Content-Type: text/plain", PHRASE.encode("gbk"))
    parsed = EXTRACTOR.extract(raw)
    assert texts(parsed, Where.BODY) == [PHRASE]
    assert "CharsetFallback" in parsed.defects


def test_garbage_base64_is_decoded_leniently() -> None:
    good = base64.b64encode(f"hello {PHRASE} world".encode())
    body = good[:8] + b" !!\x00## " + good[8:] + b"\r\n=\r\n===garbage"
    raw = msg("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64", body)
    parsed = EXTRACTOR.extract(raw)
    assert has(parsed, Where.BODY, PHRASE)
    assert "InvalidBase64" in parsed.defects


def test_unknown_transfer_encoding_scanned_raw() -> None:
    raw = msg(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: x-weird",
        PHRASE.encode(),
    )
    parsed = EXTRACTOR.extract(raw)
    assert texts(parsed, Where.BODY) == [PHRASE]
    assert "UnknownTransferEncoding" in parsed.defects


# -- headers ------------------------------------------------------------------------------


def ew(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


@pytest.mark.parametrize("charset", ["gb2312", "utf-8", "big5", "gbk", "gb18030"])
def test_subject_rfc2047(charset: str) -> None:
    phrase = "代開發票" if charset == "big5" else PHRASE
    parsed = EXTRACTOR.extract(msg(f"Subject: Re: {ew(phrase, charset)}", b"body"))
    assert parsed.subject == f"Re: {phrase}"
    assert texts(parsed, Where.SUBJECT) == [f"Re: {phrase}"]
    assert [s.part for s in parsed.segments if s.where is Where.SUBJECT] == [""]


def test_raw_8bit_subject() -> None:
    raw = b"Subject: " + PHRASE.encode("gbk") + b"\r\n\r\nbody"
    assert EXTRACTOR.extract(raw).subject == PHRASE


def test_display_names_decoded() -> None:
    raw = (
        f'From: "{ew("代开", "utf-8")}" <a@example.com>\r\n'
        f"To: {ew('发票', 'gbk')} <b@example.com>, plain@example.com\r\n"
        f"Cc: Third Person <c@example.com>\r\n"
        f"Reply-To: {ew('回复', 'gb2312')} <r@example.com>\r\n\r\nbody"
    ).encode()
    headers = texts(EXTRACTOR.extract(raw), Where.HEADER)
    assert headers == ["代开", "发票", "Third Person", "回复"]


def test_huge_address_header_is_matched_raw() -> None:
    to = ", ".join(f"n{i} <u{i}@example.com>" for i in range(3000))
    raw = f"To: {to}, {ew(PHRASE, 'utf-8')} <x@example.com>\r\n\r\nbody".encode()
    parsed = EXTRACTOR.extract(raw)
    assert has(parsed, Where.HEADER, PHRASE)


def test_content_description() -> None:
    part = f"Content-Description: {ew(PHRASE, 'gbk')}\r\n".encode() + text_part("x")
    parsed = EXTRACTOR.extract(mixed(part))
    assert any(
        s.where is Where.HEADER and s.part == "1" and s.text == PHRASE for s in parsed.segments
    )


# -- attachments --------------------------------------------------------------------------


def attachment(disposition: str, ctype: str, data: bytes) -> bytes:
    return (
        f"Content-Type: {ctype}\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-Disposition: {disposition}\r\n\r\n".encode()
        + b64(data)
    )


@pytest.mark.parametrize(
    ("disposition", "ctype", "name"),
    [
        pytest.param(
            "attachment; filename*=gbk''%B4%FA%BF%AA%B7%A2%C6%B1.txt",
            "application/octet-stream",
            f"{PHRASE}.txt",
            id="rfc2231-gbk",
        ),
        pytest.param(
            "attachment; filename*0*=gbk''%B4%FA%BF%AA; filename*1*=%B7%A2%C6%B1; "
            'filename*2=".txt"',
            "application/octet-stream",
            f"{PHRASE}.txt",
            id="rfc2231-gbk-continuations",
        ),
        pytest.param(
            "attachment; filename*=UTF-8'zh'%E4%BB%A3%E5%BC%80%E5%8F%91%E7%A5%A8.pdf",
            "application/pdf",
            f"{PHRASE}.pdf",
            id="rfc2231-utf-8-language",
        ),
        pytest.param(
            f'attachment; filename="{ew(PHRASE, "gb2312")}.pdf"',
            "application/pdf",
            f"{PHRASE}.pdf",
            id="rfc2047-in-filename",
        ),
        pytest.param(
            "attachment",
            f'application/pdf; name="{ew(PHRASE, "utf-8")}"',
            PHRASE,
            id="content-type-name-only",
        ),
        pytest.param(
            "attachment; filename*=x-bogus''%E4%BB%A3%E5%BC%80%E5%8F%91%E7%A5%A8",
            "application/pdf",
            PHRASE,
            id="rfc2231-unknown-charset",
        ),
    ],
)
def test_attachment_file_names(disposition: str, ctype: str, name: str) -> None:
    parsed = EXTRACTOR.extract(mixed(text_part("body"), attachment(disposition, ctype, b"%PDF")))
    assert texts(parsed, Where.ATTACHMENT_NAME) == [name]
    (att,) = parsed.attachments
    assert (att.part, att.filename, att.size, att.payload) == ("2", name, 4, b"%PDF")


def test_raw_8bit_filename() -> None:
    part = (
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="'
        + PHRASE.encode("gbk")
        + b'.pdf"\r\n\r\n%PDF'
    )
    parsed = EXTRACTOR.extract(mixed(part))
    assert texts(parsed, Where.ATTACHMENT_NAME) == [f"{PHRASE}.pdf"]


@pytest.mark.parametrize(
    ("filename", "ctype", "data", "expected"),
    [
        ("a.txt", "application/octet-stream", PHRASE.encode(), PHRASE),
        ("a.csv", "text/csv", f"x,{PHRASE}".encode("gbk"), f"x,{PHRASE}"),
        ("a.log", "application/octet-stream", PHRASE.encode(), PHRASE),
        ("a.md", "application/octet-stream", PHRASE.encode(), PHRASE),
        ("a.html", "application/octet-stream", "代<b>开</b>&#21457;票".encode(), PHRASE),
        ("noext", "text/plain; charset=gbk", PHRASE.encode("gbk"), PHRASE),
    ],
)
def test_text_attachments(filename: str, ctype: str, data: bytes, expected: str) -> None:
    part = attachment(f'attachment; filename="{filename}"', ctype, data)
    parsed = EXTRACTOR.extract(mixed(text_part("body"), part))
    assert texts(parsed, Where.ATTACHMENT_TEXT) == [expected]


def office_zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "members"),
    [
        (
            "a.docx",
            {
                "word/document.xml": (
                    "<w:p><w:r><w:t>代开</w:t></w:r><w:r><w:t>发票</w:t></w:r></w:p>"
                )
            },
        ),
        ("a.xlsx", {"xl/sharedStrings.xml": "<sst><si><t>代开发票</t></si></sst>"}),
        ("a.pptx", {"ppt/slides/slide1.xml": "<a:p><a:r><a:t>代开发票</a:t></a:r></a:p>"}),
        (
            "a.odt",
            {"mimetype": "x", "content.xml": "<text:p>代开<text:span>发票</text:span></text:p>"},
        ),
        ("renamed.bin", {"word/document.xml": "<w:p><w:r><w:t>代开发票</w:t></w:r></w:p>"}),
    ],
)
def test_office_attachments(filename: str, members: dict[str, str]) -> None:
    part = attachment(
        f'attachment; filename="{filename}"', "application/octet-stream", office_zip(members)
    )
    parsed = EXTRACTOR.extract(mixed(text_part("body"), part))
    assert texts(parsed, Where.ATTACHMENT_TEXT) == [PHRASE]


def test_broken_office_attachment_is_a_defect() -> None:
    part = attachment(
        'attachment; filename="a.docx"', "application/octet-stream", b"PK\x03\x04junk"
    )
    parsed = EXTRACTOR.extract(mixed(text_part("body"), part))
    assert "CorruptOfficeDocument" in parsed.defects


def test_eml_attachment_parsed_as_message() -> None:
    inner = msg(f"Subject: {ew(PHRASE, 'utf-8')}", b"inner body " + PHRASE.encode())
    part = attachment('attachment; filename="fwd.eml"', "application/octet-stream", inner)
    parsed = EXTRACTOR.extract(mixed(text_part("body"), part))
    assert any(
        s.where is Where.SUBJECT and s.part == "2" and s.text == PHRASE for s in parsed.segments
    )
    assert any(
        s.where is Where.BODY and s.part == "2.1" and PHRASE in s.text for s in parsed.segments
    )
    assert parsed.attachments[0].filename == "fwd.eml"


def test_binary_attachment_kept_for_antivirus() -> None:
    payload = bytes(range(256)) * 4
    part = attachment('attachment; filename="x.jpg"', "image/jpeg", payload)
    parsed = EXTRACTOR.extract(mixed(text_part("body"), part))
    (att,) = parsed.attachments
    assert (att.content_type, att.payload, att.size) == ("image/jpeg", payload, 1024)
    assert texts(parsed, Where.ATTACHMENT_TEXT) == []


# -- structure and part paths -------------------------------------------------------------


def test_part_paths_imap_style() -> None:
    inner_alt = (
        b'Content-Type: multipart/alternative; boundary="ALT"\r\n\r\n'
        b"--ALT\r\n" + text_part("plain") + b"\r\n"
        b"--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>html</p>\r\n--ALT--\r\n"
    )
    parsed = EXTRACTOR.extract(mixed(inner_alt, text_part("second")))
    paths = {(s.where, s.text): s.part for s in parsed.segments}
    assert paths[(Where.BODY, "plain")] == "1.1"
    assert paths[(Where.HTML, "html")] == "1.2"
    assert paths[(Where.BODY, "second")] == "2"


def test_single_part_body_is_part_1() -> None:
    parsed = EXTRACTOR.extract(msg("Subject: s", b"hello"))
    assert [(s.where, s.part, s.text) for s in parsed.segments] == [
        (Where.SUBJECT, "", "s"),
        (Where.BODY, "1", "hello"),
    ]
    assert parsed.size == len(msg("Subject: s", b"hello"))


def test_missing_closing_boundary_still_extracts() -> None:
    raw = mixed(text_part("first"), text_part(f"trailing {PHRASE}"))
    raw = raw[: raw.rindex(b"--BOUNDARY--")]
    parsed = EXTRACTOR.extract(raw)
    assert has(parsed, Where.BODY, PHRASE)
    assert "CloseBoundaryNotFoundDefect" in parsed.defects


def test_boundary_never_appears_body_still_scanned() -> None:
    raw = msg('Content-Type: multipart/mixed; boundary="NOPE"', f"just text {PHRASE}".encode())
    parsed = EXTRACTOR.extract(raw)
    assert has(parsed, Where.BODY, PHRASE)
    assert "StartBoundaryNotFoundDefect" in parsed.defects


def test_lf_only_line_endings() -> None:
    raw = mixed(
        text_part(PHRASE), attachment('attachment; filename="a.txt"', "text/plain", PHRASE.encode())
    )
    parsed = EXTRACTOR.extract(raw.replace(b"\r\n", b"\n"))
    assert has(parsed, Where.BODY, PHRASE)
    assert has(parsed, Where.ATTACHMENT_TEXT, PHRASE)


def test_nul_bytes() -> None:
    raw = msg(
        "Subject: a\x00b\r\nContent-Type: text/plain; charset=utf-8", b"x\x00" + PHRASE.encode()
    )
    parsed = EXTRACTOR.extract(raw)
    assert has(parsed, Where.BODY, PHRASE)


def test_duplicate_content_type_is_a_defect() -> None:
    raw = msg("Content-Type: text/plain\r\nContent-Type: text/html", b"x")
    assert "DuplicateContentType" in EXTRACTOR.extract(raw).defects


# -- limits ---------------------------------------------------------------------------------


def nested_multiparts(depth: int, leaf: bytes) -> bytes:
    head = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
        for i in range(depth)
    )
    tail = b"".join(b"\r\n--b%d--\r\n" % i for i in reversed(range(depth)))
    return b"Subject: deep\r\n" + head + leaf + tail


def test_depth_limit_multipart() -> None:
    raw = nested_multiparts(200, text_part("too deep"))
    parsed = Extractor(ExtractionLimits(max_depth=32)).extract(raw)
    assert "depth" in limit_names(parsed)
    assert parsed.subject == "deep"
    assert not has(parsed, Where.BODY, "too deep")


def test_depth_limit_rfc822() -> None:
    raw = b"Subject: outer\r\n" + b"Content-Type: message/rfc822\r\n\r\n" * 200 + b"\r\nbody"
    parsed = Extractor(ExtractionLimits(max_depth=32)).extract(raw)
    assert "depth" in limit_names(parsed)
    assert parsed.subject == "outer"


def test_parser_recursion_is_caught() -> None:
    raw = nested_multiparts(3000, text_part("x")) + PHRASE.encode()
    # A high part limit lets the whole nest reach the stdlib parser, which then recurses.
    parsed = Extractor(ExtractionLimits(max_parts=100_000)).extract(raw)
    assert {"parse", "depth"} <= limit_names(parsed)
    assert parsed.subject == "deep"
    assert has(parsed, Where.BODY, PHRASE)  # the raw body is still scanned


def test_parts_limit() -> None:
    parts = [b"Content-Type: text/plain\r\n\r\nx%d" % i for i in range(5000)]
    parsed = Extractor(ExtractionLimits(max_parts=1000)).extract(mixed(*parts))
    assert "parts" in limit_names(parsed)
    assert 900 <= len(texts(parsed, Where.BODY)) <= 1000


def test_part_bomb_is_cut_before_parsing() -> None:
    raw = mixed(*[b"\r\nxxxx"] * 200_000)
    start = time.perf_counter()
    parsed = EXTRACTOR.extract(raw)
    assert time.perf_counter() - start < 1.5
    assert "parts" in limit_names(parsed)


def test_decoded_bytes_limit() -> None:
    big = attachment('attachment; filename="a.bin"', "application/octet-stream", b"x" * 5000)
    parsed = Extractor(ExtractionLimits(max_decoded_bytes=3000)).extract(
        mixed(text_part("body"), big, big)
    )
    assert "decoded_bytes" in limit_names(parsed)
    assert [a.size for a in parsed.attachments] == [5000, 5000]
    assert sum(len(a.payload) for a in parsed.attachments) <= 3000


def test_text_chars_limit() -> None:
    parsed = Extractor(ExtractionLimits(max_text_chars=100)).extract(
        mixed(text_part("a" * 80), text_part("b" * 80))
    )
    assert "text_chars" in limit_names(parsed)
    assert sum(len(s.text) for s in parsed.segments) <= 100


def test_message_bytes_limit() -> None:
    raw = msg("Subject: big\r\nContent-Type: text/plain", PHRASE.encode() + b"x" * 10_000)
    parsed = Extractor(ExtractionLimits(max_message_bytes=1000)).extract(raw)
    assert "message_bytes" in limit_names(parsed)
    assert parsed.size == len(raw)
    assert has(parsed, Where.BODY, PHRASE)


def test_deadline_with_fake_clock() -> None:
    ticks = iter(range(1_000_000))
    limits = ExtractionLimits(deadline_seconds=5)
    parsed = Extractor(limits, clock=lambda: float(next(ticks))).extract(
        mixed(*[text_part(f"part{i}") for i in range(20)])
    )
    assert "time" in limit_names(parsed)
    assert 0 < len(texts(parsed, Where.BODY)) < 20


# -- never raises ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_never_raises_on_bytes(raw: bytes) -> None:
    parsed = EXTRACTOR.extract(raw)
    assert parsed.size == len(raw)


_MIME_TOKENS = st.sampled_from(
    [
        b"\r\n",
        b"\n",
        b"\r\n\r\n",
        b"--B\r\n",
        b"--B--\r\n",
        b"--C\r\n",
        b'Content-Type: multipart/mixed; boundary="B"\r\n',
        b'Content-Type: multipart/alternative; boundary="C"\r\n',
        b"Content-Type: message/rfc822\r\n",
        b"Content-Type: text/html; charset=gbk\r\n",
        b"Content-Type: text/plain; charset=x-bogus\r\n",
        b"Content-Type: application/octet-stream; name*0*=gbk''%B4%FA; name*1*=%FF\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"Content-Transfer-Encoding: x-uuencode\r\n",
        b'Content-Disposition: attachment; filename="=?utf-8?B?5Luj?=.docx"\r\n',
        b"Subject: =?gb2312?B?tPq/qg==?= =?utf-8?Q?=E4=BB?=\r\n",
        b'From: =?utf-8?B?5Luj?= <a@b>, "x" <c@d>\r\n',
        b"PK\x03\x04",
        b"5Luj5byA5Y+R56Wo",
        b"=E4=BB=A3=\r\n",
        b"begin 644 x\r\n",
        b"<b>x</b><!--",
        "代开发票".encode("gbk"),
        b"\x00\xff",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_MIME_TOKENS, max_size=60).map(b"".join))
def test_never_raises_on_mime_soup(raw: bytes) -> None:
    parsed = EXTRACTOR.extract(raw)
    assert isinstance(parsed, ParsedMessage)


# --- the single-part fast path ---------------------------------------------------------------


def _single_part_messages() -> list[tuple[str, bytes]]:
    cases = [(path.name, path.read_bytes()) for path in sorted(SAMPLES.glob("*.eml"))]
    cases += [
        ("lf-only", b"Subject: a\nContent-Type: text/plain\n\nbody\n"),
        ("no-blank-line", b"Subject: a\nnot a header line\nmore\n"),
        (
            "8bit-gbk",
            b"Subject: x\r\nContent-Type: text/plain; charset=gbk\r\n\r\n"
            + "代开发票".encode("gbk")
            + b"\r\n",
        ),
        (
            "two-content-types",
            b"Content-Type: text/plain\r\nContent-Type: text/html\r\n\r\n<b>x</b>\r\n",
        ),
        ("folded", b"Subject: =?utf-8?B?5Luj5byA?=\r\n =?utf-8?B?5Y+R56Wo?=\r\n\r\nhi\r\n"),
        ("headers-only", b"Subject: only headers\r\n"),
    ]
    return cases


@pytest.mark.parametrize(
    ("name", "raw"), _single_part_messages(), ids=[n for n, _ in _single_part_messages()]
)
def test_single_part_fast_path_matches_the_full_parser(name: str, raw: bytes) -> None:
    fast = Extractor(ExtractionLimits()).extract(raw)
    full = Extractor(ExtractionLimits(), fast_path=False).extract(raw)
    assert fast == full
