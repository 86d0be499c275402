"""Text from Office Open XML and OpenDocument files built in the tests."""

from __future__ import annotations

import io
import zipfile

import pytest

from menshen.extraction.office import office_text
from menshen.model import ExtractionLimits

LIMITS = ExtractionLimits()
PHRASE = "代开发票"
W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def build_zip(members: dict[str, str | bytes], *, compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
        for name, content in members.items():
            archive.writestr(name, content if isinstance(content, bytes) else content.encode())
    return buffer.getvalue()


def docx(body: str, **extra: str) -> bytes:
    return build_zip(
        {
            "[Content_Types].xml": "<Types/>",
            "_rels/.rels": "<Relationships/>",
            "word/document.xml": f"<w:document {W}><w:body>{body}</w:body></w:document>",
            **extra,
        }
    )


def test_docx_runs_join_and_paragraphs_break() -> None:
    data = docx(
        "<w:p><w:r><w:t>代开</w:t></w:r><w:r><w:rPr><w:b/></w:rPr><w:t>发票</w:t></w:r></w:p>"
        "<w:p><w:r><w:t>second</w:t><w:tab/><w:t>tabbed</w:t><w:br/><w:t>line</w:t></w:r></w:p>"
    )
    text, problems = office_text(data, "a.docx", LIMITS)
    assert problems == []
    assert text == f"{PHRASE}\nsecond tabbed\nline"


def test_docx_headers_footers_footnotes_and_entities() -> None:
    data = docx(
        "<w:p><w:r><w:t>body &amp; more</w:t></w:r></w:p>",
        **{
            "word/header1.xml": f"<w:hdr {W}><w:p><w:r><w:t>header</w:t></w:r></w:p></w:hdr>",
            "word/footer2.xml": f"<w:ftr {W}><w:p><w:r><w:t>footer</w:t></w:r></w:p></w:ftr>",
            "word/footnotes.xml": (
                f"<w:fn {W}><w:p><w:r><w:t>&#20195;开发票</w:t></w:r></w:p></w:fn>"
            ),
            "word/styles.xml": f"<w:styles {W}><w:name w:val='not text'/>STYLE</w:styles>",
        },
    )
    text, _ = office_text(data, "a.docx", LIMITS)
    assert "body & more" in text
    assert "header" in text
    assert "footer" in text
    assert PHRASE in text
    assert "STYLE" not in text


def test_xlsx_shared_and_inline_strings_without_numbers() -> None:
    data = build_zip(
        {
            "xl/workbook.xml": "<workbook/>",
            "xl/sharedStrings.xml": (
                "<sst><si><t>代开</t></si><si><r><t>发</t></r><r><t>票</t></r></si></sst>"
            ),
            "xl/worksheets/sheet1.xml": (
                "<worksheet><sheetData><row r='1'><c r='A1' t='s'><v>0</v></c>"
                "<c r='B1' t='inlineStr'><is><t>inline 代开发票</t></is></c>"
                "<c r='C1'><f>SUM(A1:A2)</f><v>12345</v></c></row></sheetData></worksheet>"
            ),
        }
    )
    text, problems = office_text(data, "a.xlsx", LIMITS)
    assert problems == []
    assert "代开\n发票" in text
    assert f"inline {PHRASE}" in text
    assert "12345" not in text
    assert "SUM" not in text


def test_pptx_slides_in_natural_order_and_notes() -> None:
    slide = "<p:sld><a:p><a:r><a:t>{}</a:t></a:r><a:r><a:t>{}</a:t></a:r></a:p></p:sld>"
    data = build_zip(
        {
            "ppt/presentation.xml": "<p/>",
            "ppt/slides/slide10.xml": slide.format("ten", ""),
            "ppt/slides/slide2.xml": slide.format("代开", "发票"),
            "ppt/notesSlides/notesSlide1.xml": slide.format("notes", ""),
        }
    )
    text, _ = office_text(data, "a.pptx", LIMITS)
    assert PHRASE in text
    assert text.index(PHRASE) < text.index("ten")
    assert "notes" in text


@pytest.mark.parametrize("ext", ["odt", "ods", "odp"])
def test_opendocument(ext: str) -> None:
    content = (
        "<office:document-content><office:body>"
        "<text:p>代<text:span>开</text:span>发票</text:p><text:h>two<text:s/>words</text:h>"
        "<table:table-row><table:table-cell><text:p>c1</text:p></table:table-cell>"
        "</table:table-row></office:body></office:document-content>"
    )
    data = build_zip(
        {
            "mimetype": f"application/vnd.oasis.opendocument.{ext}",
            "content.xml": content,
        },
        compress=zipfile.ZIP_STORED,
    )
    text, problems = office_text(data, f"a.{ext}", LIMITS)
    assert problems == []
    assert PHRASE in text
    assert "two words" in text
    assert "c1" in text


def test_detected_by_magic_not_extension() -> None:
    data = docx(f"<w:p><w:r><w:t>{PHRASE}</w:t></w:r></w:p>")
    assert office_text(data, "invoice.dat", LIMITS)[0] == PHRASE


def test_entities_are_not_expanded() -> None:
    data = docx(
        '<!DOCTYPE w [<!ENTITY lol "代开发票">]><w:p><w:r><w:t>&lol;&lol;</w:t></w:r></w:p>'
    )
    text, _ = office_text(data, "a.docx", LIMITS)
    assert "&lol;" in text
    assert PHRASE not in text


def test_zip_bomb_member_is_cut_and_reported() -> None:
    limits = ExtractionLimits(max_archive_member_bytes=100_000)
    body = "<w:p><w:r><w:t>代开发票</w:t></w:r></w:p>" + "<w:p/>" * 200_000
    text, problems = office_text(docx(body), "bomb.docx", limits)
    assert PHRASE in text
    assert any(p.startswith("member too large") for p in problems)


def test_encrypted_zip_member() -> None:
    data = bytearray(docx("<w:p><w:r><w:t>secret</w:t></w:r></w:p>"))
    # Set the "encrypted" bit in the central directory entry of every member.
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        data[pos + 8] |= 0x1
        pos = data.find(b"PK\x01\x02", pos + 4)
    text, problems = office_text(bytes(data), "a.docx", LIMITS)
    assert text == ""
    assert problems
    assert all(p.startswith("encrypted") for p in problems)


def test_encrypted_ooxml_container() -> None:
    data = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le")
    )
    text, problems = office_text(data, "secret.docx", LIMITS)
    assert text == ""
    assert problems[0].startswith("encrypted")


@pytest.mark.parametrize(
    ("data", "prefix"),
    [
        pytest.param(b"PK\x03\x04garbage", "corrupt", id="truncated-zip"),
        pytest.param(b"not a zip at all", "not a zip", id="no-signature"),
        pytest.param(b"", "not a zip", id="empty"),
    ],
)
def test_broken_input_is_a_problem(data: bytes, prefix: str) -> None:
    text, problems = office_text(data, "a.docx", LIMITS)
    assert text == ""
    assert problems[0].startswith(prefix)


def test_corrupt_member_data() -> None:
    data = bytearray(docx("<w:p><w:r><w:t>" + "x" * 5000 + "</w:t></w:r></w:p>"))
    start = data.find(b"word/document.xml") + len("word/document.xml")
    data[start + 10 : start + 60] = b"\xff" * 50
    _, problems = office_text(bytes(data), "a.docx", LIMITS)
    assert any(p.startswith("corrupt") for p in problems)


def test_too_many_members_declared() -> None:
    data = build_zip({f"f{i}.txt": "" for i in range(10_050)}, compress=zipfile.ZIP_STORED)
    text, problems = office_text(data, "a.docx", LIMITS)
    assert text == ""
    assert problems[0].startswith("too many members")


def test_plain_zip_without_office_members() -> None:
    assert office_text(build_zip({"readme.txt": "hello"}), "a.zip", LIMITS) == ("", [])
