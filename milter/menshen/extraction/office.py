"""Text from Office Open XML (docx/xlsx/pptx) and OpenDocument (odt/ods/odp) files.

In:  `office_text(data, filename, limits)`: the decoded bytes of an attachment, its name
     (used only to describe problems and to recognise encrypted OOXML), and the limits.
Out: (text, problems). `text` holds the document text with paragraphs, rows and line
     breaks as newlines and cells and tabs as spaces; runs are joined with no separator,
     because Word splits a word across runs whenever formatting or spell-check state
     changes. `problems` are short strings, each starting with a fixed keyword:
     "encrypted", "corrupt", "member too large", "too many members", "not a zip".
     A file that is a zip but no Office document gives ("", []).
Fails: never; a broken archive is a problem string, not an exception.
Bounds: members are read through zipfile with read(limit + 1), so a decompression bomb
     costs at most `max_archive_member_bytes` per member; at most `_MAX_TEXT_MEMBERS`
     members are read and an archive that declares more than `_MAX_MEMBERS` entries is
     not opened. XML is never parsed as XML: tags are stripped with regexes and only the
     predefined and numeric entities are decoded, so there is no DTD or entity expansion.
Thread safety: pure function; no shared mutable state.
"""

from __future__ import annotations

import html
import io
import re
import struct
import zipfile

from menshen.model import ExtractionLimits

__all__ = ["is_zip", "office_text"]

ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# An encrypted OOXML file is an OLE compound file holding an "EncryptedPackage" stream.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")

_MAX_MEMBERS = 10_000  # central-directory entries; more is a bomb, not a document
_MAX_TEXT_MEMBERS = 500  # text-bearing members actually read

_DOCX_MEMBER = re.compile(r"word/(?:document|header\d*|footer\d*|footnotes|endnotes|comments)\.xml")
_XLSX_STRINGS = "xl/sharedStrings.xml"
_XLSX_SHEET = re.compile(r"xl/worksheets/sheet\d+\.xml")
_PPTX_MEMBER = re.compile(r"ppt/(?:slides/slide|notesSlides/notesSlide)\d+\.xml")
_ODF_MEMBERS = ("content.xml", "styles.xml")

# Paragraph, row and line-break markup of the three vocabularies -> newline.
_BREAK = re.compile(
    r"</(?:w:p|a:p|text:p|text:h|text:list-item|si|row|table:table-row)>"
    r"|<(?:w:br|w:cr|a:br|text:line-break)\b[^>]*>"
)
# Cell ends and tabs -> space.
_SPACE = re.compile(r"</(?:w:tc|a:tc|c|table:table-cell)>|<(?:w:tab|text:tab|text:s)\b[^>]*>")
_TAG = re.compile(r"<[^>]*>")
# Worksheet cell values (<v>) are numbers or shared-string indexes; formulas (<f>) are
# code. Only inline strings (<is><t>) are text.
_SHEET_NOISE = re.compile(r"<(v|f)\b[^>]*>[^<]*</\1>")
_NATURAL = re.compile(r"(\d+)")
_BLANK_LINES = re.compile(r"[ \t]*\n\s*")


def is_zip(data: bytes) -> bool:
    return data.startswith(ZIP_MAGIC)


def _natural_key(name: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in _NATURAL.split(name)]


def _declared_entries(data: bytes) -> int | None:
    """Entry count from the end-of-central-directory record, before zipfile builds a list."""
    eocd = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if eocd < 0 or eocd + 22 > len(data):
        return None
    (total,) = struct.unpack_from("<H", data, eocd + 10)
    return None if total == 0xFFFF else int(total)  # 0xFFFF: ZIP64, let zipfile decide


def _text_members(names: list[str]) -> list[str]:
    chosen = [n for n in names if _DOCX_MEMBER.fullmatch(n)]
    if _XLSX_STRINGS in names:
        chosen.append(_XLSX_STRINGS)
    chosen += [n for n in names if _XLSX_SHEET.fullmatch(n)]
    chosen += [n for n in names if _PPTX_MEMBER.fullmatch(n)]
    if "content.xml" in names:
        chosen += [n for n in _ODF_MEMBERS if n in names]
    return sorted(set(chosen), key=_natural_key)


def xml_text(xml: str, *, worksheet: bool = False) -> str:
    """Strip the markup of one document member; see the module docstring."""
    if worksheet:
        xml = _SHEET_NOISE.sub("", xml)
    xml = _BREAK.sub("\n", xml)
    xml = _SPACE.sub(" ", xml)
    text = html.unescape(_TAG.sub("", xml))
    return _BLANK_LINES.sub("\n", text).strip()


def office_text(data: bytes, filename: str, limits: ExtractionLimits) -> tuple[str, list[str]]:
    """Extract the text of an Office Open XML or OpenDocument file; never raises."""
    problems: list[str] = []
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            return "", [f"encrypted: {filename or 'document'} is a password-protected OOXML file"]
        return "", []
    if not is_zip(data):
        return "", ["not a zip: no PK signature"]
    declared = _declared_entries(data)
    if declared is not None and declared > _MAX_MEMBERS:
        return "", [f"too many members: {declared} entries declared"]
    limit = limits.max_archive_member_bytes
    texts: list[str] = []
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_MEMBERS:
                return "", [f"too many members: {len(infos)} entries"]
            by_name = {info.filename: info for info in infos}
            members = _text_members(list(by_name))
            if len(members) > _MAX_TEXT_MEMBERS:
                problems.append(f"too many members: {len(members)} text members")
                members = members[:_MAX_TEXT_MEMBERS]
            for name in members:
                info = by_name[name]
                if info.flag_bits & 0x1:
                    problems.append(f"encrypted: {name}")
                    continue
                try:
                    with archive.open(info) as member:
                        raw = member.read(limit + 1)
                except Exception as exc:  # zlib.error, BadZipFile, an unsupported compression
                    problems.append(f"corrupt: {name}: {type(exc).__name__}")
                    continue
                if len(raw) > limit:
                    problems.append(f"member too large: {name} over {limit} bytes")
                    raw = raw[:limit]
                text = xml_text(
                    raw.decode("utf-8", "replace"), worksheet=bool(_XLSX_SHEET.fullmatch(name))
                )
                if text:
                    texts.append(text)
    except Exception as exc:  # BadZipFile, struct.error, OSError, ValueError, ...
        problems.append(f"corrupt: {type(exc).__name__}: {str(exc)[:80]}")
    return "\n".join(texts), problems
