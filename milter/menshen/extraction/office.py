"""Text from Office Open XML (docx/xlsx/pptx) and OpenDocument (odt/ods/odp) files.

In:  `office_text(data, filename, limits)`: the decoded bytes of an attachment, its name
     (used only to describe problems and to recognise encrypted OOXML), and the limits.
     `read_office(...)` takes the same plus what is left of the message's budgets: bytes
     that may still be decompressed, characters of text still wanted, and a deadline.
Out: (text, problems); `read_office` returns an OfficeText that also says how many bytes
     were decompressed. `text` holds the document text with paragraphs, rows and line
     breaks as newlines and cells and tabs as spaces; runs are joined with no separator,
     because Word splits a word across runs whenever formatting or spell-check state
     changes. `problems` are short strings, each starting with a fixed keyword:
     "encrypted", "corrupt", "member too large", "too many members", "not a zip",
     "over budget" (decompressed bytes or text characters), "deadline".
     A file that is a zip but no Office document gives ("", []).
Fails: never; a broken archive is a problem string, not an exception. A member whose
     declared sizes or CRC are wrong (zipfile refuses it) is inflated from its local
     header directly, as tolerant readers do, under the same bounds, so lying sizes do not
     hide its text.
Bounds: members are read through zipfile with read(limit + 1), so a decompression bomb
     costs at most `max_archive_member_bytes` per member, and all members together at
     most the byte budget (by default `max_decoded_bytes`): 500 members of 20 MB of zeros
     each stop after the budget, not after 10 GB. Reading stops once the text budget is
     filled or the deadline passed. At most `_MAX_TEXT_MEMBERS` members are read and an
     archive that declares more than `_MAX_MEMBERS` entries is not opened. XML is never
     parsed as XML: tags are stripped with regexes and only the predefined and numeric
     entities are decoded, so there is no DTD or entity expansion.
Thread safety: pure functions; no shared mutable state.
"""

from __future__ import annotations

import html
import io
import re
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from menshen.model import ExtractionLimits

__all__ = ["OfficeText", "is_zip", "office_text", "read_office"]

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


@dataclass(frozen=True, slots=True)
class OfficeText:
    text: str
    problems: tuple[str, ...]
    bytes_read: int  # decompressed bytes, counted against the message's budget


def office_text(data: bytes, filename: str, limits: ExtractionLimits) -> tuple[str, list[str]]:
    """Extract the text of an Office Open XML or OpenDocument file; never raises."""
    result = read_office(data, filename, limits)
    return result.text, list(result.problems)


def _inflate_raw(data: bytes, info: zipfile.ZipInfo, limit: int) -> bytes | None:
    """A member's bytes straight from its local header, ignoring declared sizes and CRC.

    At most limit + 1 bytes; None when there is no local header there or the method is
    neither stored nor deflated.
    """
    start = info.header_offset
    if start < 0 or data[start : start + 4] != ZIP_MAGIC or start + 30 > len(data):
        return None
    name_length, extra_length = struct.unpack_from("<HH", data, start + 26)
    begin = start + 30 + name_length + extra_length
    if info.compress_type == zipfile.ZIP_STORED:
        return data[begin : begin + min(info.compress_size, limit + 1)]
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return None
    inflater = zlib.decompressobj(-15)
    out: list[bytes] = []
    produced = 0
    position = begin
    # Fed in slices so that a corrupt stream still yields what came before the damage.
    while position < len(data) and produced <= limit and not inflater.eof:
        piece = data[position : position + 65536]
        try:
            chunk = inflater.decompress(piece, limit + 1 - produced)  # max_length >= 1
        except zlib.error:
            break
        out.append(chunk)
        produced += len(chunk)
        # Input the inflater could not take yet (its output was capped) is fed again.
        position += len(piece) - len(inflater.unconsumed_tail)
    return b"".join(out)


def read_office(
    data: bytes,
    filename: str,
    limits: ExtractionLimits,
    *,
    byte_budget: int | None = None,
    char_budget: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> OfficeText:
    """Text of an Office file within the given budgets; see the module docstring."""
    problems: list[str] = []
    if data.startswith(_OLE_MAGIC):
        if _ENCRYPTED_PACKAGE in data:
            name = filename or "document"
            return OfficeText("", (f"encrypted: {name} is a password-protected OOXML file",), 0)
        return OfficeText("", (), 0)
    if not is_zip(data):
        return OfficeText("", ("not a zip: no PK signature",), 0)
    declared = _declared_entries(data)
    if declared is not None and declared > _MAX_MEMBERS:
        return OfficeText("", (f"too many members: {declared} entries declared",), 0)
    limit = limits.max_archive_member_bytes
    bytes_left = limits.max_decoded_bytes if byte_budget is None else max(byte_budget, 0)
    chars_left = limits.max_text_chars if char_budget is None else max(char_budget, 0)
    texts: list[str] = []
    read = chars = 0
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > _MAX_MEMBERS:
                return OfficeText("", (f"too many members: {len(infos)} entries",), 0)
            by_name = {info.filename: info for info in infos}
            members = _text_members(list(by_name))
            if len(members) > _MAX_TEXT_MEMBERS:
                problems.append(f"too many members: {len(members)} text members")
                members = members[:_MAX_TEXT_MEMBERS]
            for name in members:
                if should_stop is not None and should_stop():
                    problems.append(f"deadline: passed before {name}")
                    break
                if bytes_left <= 0:
                    problems.append(f"over budget: more than {read} bytes decompressed")
                    break
                if chars_left <= 0:
                    problems.append(f"over budget: more than {chars} characters of text")
                    break
                info = by_name[name]
                if info.flag_bits & 0x1:
                    problems.append(f"encrypted: {name}")
                    continue
                wanted = min(limit, bytes_left)
                raw: bytes | None
                try:
                    with archive.open(info) as member:
                        raw = member.read(wanted + 1)
                except Exception as exc:  # zlib.error, BadZipFile, an unsupported compression
                    raw = _inflate_raw(data, info, wanted)
                    if not raw:
                        problems.append(f"corrupt: {name}: {type(exc).__name__}")
                        continue
                    problems.append(f"corrupt: {name}: {type(exc).__name__}; inflated anyway")
                read += min(len(raw), wanted)
                bytes_left -= min(len(raw), wanted)
                if len(raw) > wanted:
                    if wanted == limit:
                        problems.append(f"member too large: {name} over {limit} bytes")
                    else:
                        problems.append(f"over budget: {name} cut at {wanted} bytes")
                    raw = raw[:wanted]
                text = xml_text(
                    raw.decode("utf-8", "replace"), worksheet=bool(_XLSX_SHEET.fullmatch(name))
                )
                if text:
                    texts.append(text[:chars_left])
                    chars_left -= len(text)
                    chars += len(text)
    except Exception as exc:  # BadZipFile, struct.error, OSError, ValueError, ...
        problems.append(f"corrupt: {type(exc).__name__}: {str(exc)[:80]}")
    return OfficeText("\n".join(texts), tuple(problems), read)
