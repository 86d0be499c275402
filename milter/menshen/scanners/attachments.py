"""Attachment scanner: file-name rules, declared-versus-detected type, and zip listings.

In:  a ParsedMessage (its Attachments: part path, decoded file name, declared content type,
     decoded payload) and the Envelope (unused). Rules come from an AttachmentRules value.
Out: Findings of scanner "attachments", all with where="attachment_name", part= the
     attachment's part path and a short printable detail (non-printables escaped, the file
     name quoted and shortened so the detail stays within about 100 characters):
       ATTACHMENT_BLOCKED_EXTENSION    the last extension is in the blocked set (after
                                       dropping format characters and the trailing dots and
                                       spaces Windows ignores);
       ATTACHMENT_DOUBLE_EXTENSION     a document/image/media/archive extension followed by
                                       an executable one ("invoice.pdf.exe");
       ATTACHMENT_NAME_CHARACTERS      bidi controls, zero-width or other format characters,
                                       control characters or NUL in the name;
       ATTACHMENT_TYPE_MISMATCH        the payload's magic bytes say executable (or archive)
                                       while the name or declared type says document, image,
                                       text or media; detail carries detected=<kind>;
       ATTACHMENT_ARCHIVE_BLOCKED_NAME a zip member (one nested zip level deep) whose name
                                       breaks one of the three name rules;
       ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES  the zip lists more than max_archive_entries;
       ATTACHMENT_ARCHIVE_UNREADABLE   the payload starts like a zip but its central
                                       directory cannot be read;
       ATTACHMENT_ENCRYPTED_ARCHIVE    a zip member is encrypted (nobody can look inside);
       INTERNAL_ERROR                  a bug while scanning one attachment (never "clean").
     The scanner reports facts; the policy decides what each code costs.
Fails: never raises. A failure on one attachment becomes an INTERNAL_ERROR finding for that
     attachment and the others are still scanned.
Bounds: zip central directories are walked by hand, at most max_archive_entries entries per
     attachment (nested listings included); member contents are never extracted, except
     that up to _MAX_NESTED_ZIPS_PER_MESSAGE nested ".zip" members of at most
     _MAX_NESTED_ZIP_BYTES are read to list their own central directory (one level only).
     Findings about archive members are capped per attachment.
Thread safety: holds only immutable configuration; scan() keeps its state in locals.
"""

from __future__ import annotations

import struct
import unicodedata
import zlib
from dataclasses import dataclass

from menshen.model import INTERNAL_ERROR, Attachment, Envelope, Finding, ParsedMessage, Where

__all__ = [
    "ATTACHMENT_ARCHIVE_BLOCKED_NAME",
    "ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES",
    "ATTACHMENT_ARCHIVE_UNREADABLE",
    "ATTACHMENT_BLOCKED_EXTENSION",
    "ATTACHMENT_DOUBLE_EXTENSION",
    "ATTACHMENT_ENCRYPTED_ARCHIVE",
    "ATTACHMENT_NAME_CHARACTERS",
    "ATTACHMENT_TYPE_MISMATCH",
    "DEFAULT_BLOCKED_EXTENSIONS",
    "AttachmentRules",
    "AttachmentScanner",
    "detect_kind",
]

ATTACHMENT_BLOCKED_EXTENSION = "ATTACHMENT_BLOCKED_EXTENSION"
ATTACHMENT_DOUBLE_EXTENSION = "ATTACHMENT_DOUBLE_EXTENSION"
ATTACHMENT_NAME_CHARACTERS = "ATTACHMENT_NAME_CHARACTERS"
ATTACHMENT_TYPE_MISMATCH = "ATTACHMENT_TYPE_MISMATCH"
ATTACHMENT_ARCHIVE_BLOCKED_NAME = "ATTACHMENT_ARCHIVE_BLOCKED_NAME"
ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES = "ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES"
ATTACHMENT_ARCHIVE_UNREADABLE = "ATTACHMENT_ARCHIVE_UNREADABLE"
ATTACHMENT_ENCRYPTED_ARCHIVE = "ATTACHMENT_ENCRYPTED_ARCHIVE"

DEFAULT_BLOCKED_EXTENSIONS: frozenset[str] = frozenset(
    {
        # Windows programs, scripts and the hosts that run them.
        "exe", "scr", "com", "pif", "bat", "cmd", "js", "jse", "vbs", "vbe", "wsf", "wsh",
        "hta", "ps1", "psm1", "jar", "msi", "msp", "lnk", "cpl", "reg", "scf", "chm", "hlp",
        "application", "appref-ms", "gadget", "inf", "msc", "dll", "sys",
        # Disk images: Windows mounts them with a double click and files inside do not
        # carry the Mark of the Web, which made them the loader of choice from 2022 on.
        "iso", "img", "vhd", "vhdx",
        # Other platforms' installers, and the ACE archive (WinRAR path traversal,
        # CVE-2018-20250; no current tool produces it legitimately).
        "apk", "app", "dmg", "ace",
        # Additions. Each one is blocked by Outlook's own Level 1 list and has been used in
        # real campaigns, and none is a format ordinary correspondence carries:
        "msu",  # Windows update package, installs like an msi
        "mst",  # msi transform, runs installer actions
        "appx", "appxbundle", "msix", "msixbundle",  # app installers (2023-24 malvertising)
        "xll",  # Excel add-in: native code loaded by Excel (2021-22 campaigns)
        "url",  # Internet shortcut (CVE-2024-21412 SmartScreen bypass)
        "sct", "wsc",  # Windows Script Components, run by regsvr32/scrobj
        "vb",  # VBScript under its short extension
        "settingcontent-ms",  # Control Panel shortcut that runs a command (2018)
        "library-ms", "searchconnector-ms",  # point Explorer at attacker shares (WebDAV)
        "diagcab",  # troubleshooter package (Follina-era abuse)
    }
)  # fmt: skip
# Deliberately not blocked: zip/rar/7z (archives are ordinary; their contents are listed
# below and clamd scans inside), doc/xls/one (documents; macro risk is clamd's business),
# cer/crt (certificates are mailed legitimately), py/pl/sh (developers mail scripts).

# Extensions that execute when opened. A decoy extension followed by one of these is a
# double extension even if the operator has unblocked the executable extension itself.
_EXECUTABLE_EXTENSIONS: frozenset[str] = DEFAULT_BLOCKED_EXTENSIONS - {"ace"}

# Extensions a user trusts on sight: documents, images, media, archives, web pages.
_DECOY_EXTENSIONS: frozenset[str] = frozenset(
    {
        "pdf", "doc", "docx", "docm", "dot", "dotx", "xls", "xlsx", "xlsm", "xlsb", "ppt",
        "pptx", "pptm", "pps", "ppsx", "rtf", "odt", "ods", "odp", "txt", "text", "csv",
        "log", "md", "xml", "eml", "msg",
        "jpg", "jpeg", "jpe", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "svg",
        "ico",
        "mp3", "mp4", "m4a", "wav", "avi", "mov", "wmv", "mkv",
        "zip", "rar", "7z", "gz", "tgz",
        "htm", "html",
    }
)  # fmt: skip

# Names whose extension honestly says "program or script": an executable payload under one
# of them is not a type mismatch (the name rules deal with them).
_HONEST_PROGRAM_EXTENSIONS: frozenset[str] = _EXECUTABLE_EXTENSIONS | frozenset(
    {
        "bin", "elf", "so", "dylib", "o", "out", "run", "command", "sh", "bash", "zsh",
        "csh", "ksh", "py", "pyw", "pl", "rb", "php", "tcl", "lua", "awk", "class", "efi",
        "drv", "ocx", "ax", "mui", "tlb", "x86", "x64", "arm", "arm64",
    }
)  # fmt: skip

# Claims by name. Text names are listed apart: a "#!" script is text, so calling it .txt
# is true and not reported; a PE or ELF file called .txt is.
_TEXT_EXTENSIONS: frozenset[str] = frozenset({"txt", "text", "csv", "tsv", "log", "md", "asc"})
_DOCUMENT_MEDIA_EXTENSIONS: frozenset[str] = (_DECOY_EXTENSIONS - _TEXT_EXTENSIONS) - {
    "zip",
    "rar",
    "7z",
    "gz",
    "tgz",
    "eml",
    "msg",
    "xml",
    "htm",
    "html",
}
# An archive called .pdf or .jpg is a filter-evasion trick; Office and OpenDocument names
# are excluded because those files are zips (or OLE2) by design.
_PDF_IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {"pdf", "jpg", "jpeg", "jpe", "png", "gif", "bmp", "tif", "tiff", "webp", "heic", "ico"}
)
_ARCHIVE_KINDS: frozenset[str] = frozenset({"zip", "rar", "7z", "gzip"})
_EXECUTABLE_KINDS: frozenset[str] = frozenset({"pe", "mz", "elf", "macho", "java-class"})

# Declared content types that claim a document, an image or media.
_DOCUMENT_TYPES: frozenset[str] = frozenset(
    {"application/pdf", "application/msword", "application/rtf", "application/vnd.ms-excel",
     "application/vnd.ms-powerpoint"}
)  # fmt: skip
_DOCUMENT_TYPE_PREFIXES: tuple[str, ...] = (
    "image/",
    "audio/",
    "video/",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.oasis.opendocument.",
)

# Bidi embeddings/overrides and isolates: the classic extension-reversal trick.
_BIDI_CONTROLS: frozenset[str] = frozenset(
    chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)
)
_ZWNJ, _ZWJ = "\u200c", "\u200d"
_WINDOWS_TRAILING = ". "

_MAX_DETAIL = 100
# Names are at most 255 characters on every file system; longer ones are looked at in part
# (their start and their end, where the extension is) so that hostile 64 KiB zip member
# names cannot make the per-character checks expensive.
_NAME_HEAD = 512
_NAME_TAIL = 1024
_MAX_MEMBER_FINDINGS = 10  # per attachment; the rest are summed up in one more finding
_MAX_NESTED_ZIPS_PER_MESSAGE = 16
_MAX_NESTED_ZIP_BYTES = 1024 * 1024  # compressed and uncompressed

_LOCAL_MAGIC = b"PK\x03\x04"
_CENTRAL_MAGIC = b"PK\x01\x02"
_EOCD_MAGIC = b"PK\x05\x06"
_EOCD64_LOCATOR_MAGIC = b"PK\x06\x07"
_EOCD64_MAGIC = b"PK\x06\x06"
_EOCD_SEARCH = 22 + 0xFFFF  # the record plus the longest archive comment
_FLAG_ENCRYPTED = 0x0001
_FLAG_UTF8 = 0x0800
_FLAG_MASKED_DIRECTORY = 0x2000  # PKWARE strong encryption of the central directory
_EXTRA_UNICODE_PATH = 0x7075  # Info-ZIP: the UTF-8 name 7-Zip and WinRAR display

_MACHO_MAGICS: tuple[bytes, ...] = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
)


@dataclass(frozen=True)
class AttachmentRules:
    """What the attachment scanner checks. Extensions are written without the dot."""

    blocked_extensions: frozenset[str] = DEFAULT_BLOCKED_EXTENSIONS
    check_double_extension: bool = True
    check_name_characters: bool = True
    check_magic: bool = True
    inspect_archives: bool = True
    max_archive_entries: int = 1000


# -- names -----------------------------------------------------------------------------


def _printable(text: str) -> str:
    """Text safe for logs and replies: every non-printable character escaped."""
    out: list[str] = []
    for ch in text:
        if ch.isprintable() and ch != "\\":
            out.append(ch)
        elif ch == "\\":
            out.append("\\\\")
        else:
            code = ord(ch)
            out.append(
                f"\\x{code:02x}"
                if code < 0x100
                else f"\\u{code:04x}"
                if code < 0x10000
                else f"\\U{code:08x}"
            )
    return "".join(out)


def _detail(reason: str, name: str) -> str:
    """`reason: "name"` within _MAX_DETAIL characters; the name's end (its extension) kept."""
    if len(name) > _NAME_HEAD + _NAME_TAIL:
        name = name[:_NAME_HEAD] + name[-_NAME_TAIL:]
    shown = _printable(name)
    room = max(_MAX_DETAIL - len(reason) - 4, 16)
    if len(shown) > room:
        keep = room - 3
        shown = shown[: keep // 2] + "..." + shown[len(shown) - (keep - keep // 2) :]
    return f'{reason}: "{shown}"'[:_MAX_DETAIL]


def _joiner_in_context(name: str, index: int) -> bool:
    """ZWNJ/ZWJ between letters, marks or emoji: how Persian, Indic scripts and emoji
    sequences use them. Elsewhere they only serve to hide something."""
    if index == 0 or index + 1 >= len(name):
        return False
    allowed = ("L", "M", "So", "Sk")
    before = unicodedata.category(name[index - 1])
    after = unicodedata.category(name[index + 1])
    return before.startswith(allowed) and after.startswith(allowed)


def _bad_characters(name: str) -> list[str]:
    """The code points of `name` a file name should not contain, in order, deduplicated."""
    if name.isprintable():
        return []  # every character below is non-printable: the common case costs one pass
    if len(name) > _NAME_HEAD + _NAME_TAIL:
        name = name[:_NAME_HEAD] + " " + name[-_NAME_TAIL:]
    bad: dict[str, None] = {}
    for index, ch in enumerate(name):
        category = unicodedata.category(ch)
        if ch in _BIDI_CONTROLS or category in ("Cc", "Zl", "Zp"):
            bad.setdefault(ch, None)
        elif category == "Cf":
            if ch in (_ZWNJ, _ZWJ) and _joiner_in_context(name, index):
                continue
            bad.setdefault(ch, None)
    return list(bad)


def _visible_forms(name: str) -> tuple[str, ...]:
    """The names a file system or a reader may end up with, for the extension rules.

    Format characters (bidi controls, zero-width characters) are dropped: they change how a
    name looks, not what it is. Directories are dropped (archive members carry paths). A
    NUL may end the name (C string APIs) or be skipped, so both readings are returned.
    """
    base = _last_component(name)
    if base.isprintable():
        return (base,)  # format and control characters are all non-printable
    return _forms_without_hidden(base)


def _last_component(name: str) -> str:
    return name[-_NAME_TAIL:].replace("\\", "/").rsplit("/", 1)[-1]


def _forms_without_hidden(base: str) -> tuple[str, ...]:
    """_visible_forms, character by character."""
    cleaned = "".join(ch for ch in base if unicodedata.category(ch) != "Cf")
    forms = ["".join(ch for ch in cleaned if unicodedata.category(ch) != "Cc")]
    if "\x00" in cleaned:
        truncated = cleaned.split("\x00", 1)[0]
        forms.append("".join(ch for ch in truncated if unicodedata.category(ch) != "Cc"))
    return tuple(dict.fromkeys(forms))


def _strip_windows(name: str) -> str:
    # Windows drops trailing dots and spaces; other trailing white space is dropped too
    # because a reader cannot see it either.
    return name.rstrip(_WINDOWS_TRAILING).rstrip().rstrip(_WINDOWS_TRAILING)


def _extensions(form: str) -> tuple[str, str]:
    """(last extension, the extension before it), lower-cased, "" when absent.

    Empty or blank components between dots are skipped, so "report.docx   .scr" and
    "report.pdf. .exe" both give ("scr"/"exe", "docx"/"pdf").
    """
    pieces = _strip_windows(form).split(".")
    if len(pieces) < 2:
        return "", ""
    last = pieces[-1].strip().lower()
    before = ""
    for piece in reversed(pieces[1:-1]):
        if piece.strip():
            before = piece.strip().lower()
            break
    return last, before


# -- magic -----------------------------------------------------------------------------


def detect_kind(payload: bytes) -> str:
    """The file kind the first bytes of `payload` announce, or "" when none is recognised.

    Kinds: pe, mz (DOS program without a PE header), elf, macho, java-class, script ("#!/"),
    zip, pdf, png, jpeg, gif, ole2, rar, 7z, gzip.
    """
    head = payload[:64]
    if head.startswith(b"MZ"):
        # "MZ" alone is two letters of text; require a PE header or a binary DOS header.
        if len(payload) >= 0x40:
            (pe_offset,) = struct.unpack_from("<I", payload, 0x3C)
            if payload[pe_offset : pe_offset + 4] == b"PE\x00\x00":
                return "pe"
        if b"\x00" in head:
            return "mz"
        return ""
    if head.startswith(b"\x7fELF"):
        return "elf"
    if head.startswith(_MACHO_MAGICS):
        return "macho"
    if head.startswith(b"\xca\xfe\xba\xbe") and len(head) >= 8:
        # Shared by universal Mach-O binaries (a small architecture count follows) and Java
        # class files (a major version of 45 or more follows).
        (count,) = struct.unpack_from(">I", head, 4)
        return "macho" if count < 45 else "java-class"
    if head.startswith((b"#!/", b"#! /")):
        return "script"
    if head.startswith(_LOCAL_MAGIC):
        return "zip"
    if head.startswith(b"%PDF"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole2"
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    return ""


def _type_claims_document(content_type: str) -> bool:
    ctype = content_type.strip().lower()
    return ctype in _DOCUMENT_TYPES or ctype.startswith(_DOCUMENT_TYPE_PREFIXES)


# -- zip central directories -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Member:
    names: tuple[str, ...]  # the stored name, plus the Unicode Path extra field if it differs
    flags: int
    method: int
    compressed_size: int
    size: int
    local_offset: int  # absolute offset of the local header in the archive bytes


class _UnreadableError(Exception):
    """The central directory is not where or what the end records say."""


@dataclass(frozen=True, slots=True)
class _Directory:
    start: int  # absolute offset of the first central directory entry
    end: int
    shift: int  # bytes in front of the archive (self-extractors, prepended junk)


def _find_directory(data: bytes) -> _Directory:
    eocd = data.rfind(_EOCD_MAGIC, max(0, len(data) - _EOCD_SEARCH))
    if eocd < 0 or eocd + 22 > len(data):
        raise _UnreadableError("no end of central directory record")
    total, cd_size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    anchor = eocd
    if total == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        locator = eocd - 20
        if locator >= 0 and data[locator : locator + 4] == _EOCD64_LOCATOR_MAGIC:
            # The zip64 record sits right before its locator (as zipfile assumes too).
            anchor = locator - 56
            if anchor < 0 or data[anchor : anchor + 4] != _EOCD64_MAGIC:
                raise _UnreadableError("bad zip64 end record")
            total, cd_size, cd_offset = struct.unpack_from("<QQQ", data, anchor + 32)
    start = anchor - cd_size
    if start < 0 or cd_size > len(data):
        raise _UnreadableError("central directory outside the data")
    del total  # may lie; the walk counts entries itself
    return _Directory(start, anchor, start - int(cd_offset))


def _unicode_path(extra: bytes) -> str:
    pos = 0
    while pos + 4 <= len(extra):
        header, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if header == _EXTRA_UNICODE_PATH and len(body) > 5 and body[0] == 1:
            return body[5:].decode("utf-8", "replace")
        pos += 4 + length
    return ""


def _zip64_sizes(extra: bytes, compressed: int, size: int, offset: int) -> tuple[int, int, int]:
    pos = 0
    while pos + 4 <= len(extra):
        header, length = struct.unpack_from("<HH", extra, pos)
        if header == 0x0001:
            values = list(struct.unpack_from(f"<{min(length // 8, 3)}Q", extra, pos + 4))
            if size == 0xFFFFFFFF and values:
                size = values.pop(0)
            if compressed == 0xFFFFFFFF and values:
                compressed = values.pop(0)
            if offset == 0xFFFFFFFF and values:
                offset = values.pop(0)
            break
        pos += 4 + length
    return compressed, size, offset


def _walk(data: bytes, directory: _Directory, limit: int) -> tuple[list[_Member], bool]:
    """Up to `limit` central directory entries, and whether more follow.

    The entry count in the end record may lie, so "more" means another entry signature
    after the last one read, not a larger declared count. Raises _UnreadableError on an entry
    that is not where the previous one said it would be.
    """
    members: list[_Member] = []
    pos = directory.start
    while pos < directory.end:
        if len(members) >= limit:
            return members, data[pos : pos + 4] == _CENTRAL_MAGIC
        if data[pos : pos + 4] != _CENTRAL_MAGIC or pos + 46 > len(data):
            raise _UnreadableError(f"bad central directory entry at offset {pos}")
        flags, method = struct.unpack_from("<HH", data, pos + 8)
        compressed, size, name_len, extra_len, comment_len = struct.unpack_from(
            "<IIHHH", data, pos + 20
        )
        (offset,) = struct.unpack_from("<I", data, pos + 42)
        raw_name = data[pos + 46 : pos + 46 + name_len]
        extra = data[pos + 46 + name_len : pos + 46 + name_len + extra_len]
        if len(raw_name) != name_len:
            raise _UnreadableError("central directory entry runs past the data")
        # The same decoding zipfile and most unzip tools apply.
        name = (
            raw_name.decode("utf-8", "replace") if flags & _FLAG_UTF8 else raw_name.decode("cp437")
        )
        names = [name]
        unicode_name = _unicode_path(extra)
        if unicode_name and unicode_name != name:
            names.append(unicode_name)
        compressed, size, offset = _zip64_sizes(extra, compressed, size, offset)
        members.append(
            _Member(tuple(names), flags, method, compressed, size, offset + directory.shift)
        )
        pos += 46 + name_len + extra_len + comment_len
    return members, False


def _nested_payload(data: bytes, member: _Member) -> bytes | None:
    """The bytes of a small stored or deflated member, or None when it cannot be had cheaply."""
    if member.flags & _FLAG_ENCRYPTED or member.method not in (0, 8):
        return None
    if member.compressed_size > _MAX_NESTED_ZIP_BYTES or member.size > _MAX_NESTED_ZIP_BYTES:
        return None
    pos = member.local_offset
    if pos < 0 or data[pos : pos + 4] != _LOCAL_MAGIC or pos + 30 > len(data):
        return None
    name_len, extra_len = struct.unpack_from("<HH", data, pos + 26)
    start = pos + 30 + name_len + extra_len
    body = data[start : start + member.compressed_size]
    if member.method == 0:
        return body
    try:
        inflater = zlib.decompressobj(-15)
        return inflater.decompress(body, _MAX_NESTED_ZIP_BYTES + 1)[:_MAX_NESTED_ZIP_BYTES]
    except zlib.error:
        return None


# -- the scanner -------------------------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    """Per-scan() counters (never shared between calls)."""

    nested_zips_left: int = _MAX_NESTED_ZIPS_PER_MESSAGE


@dataclass(slots=True)
class _ArchiveResult:
    entries: int = 0
    too_many: bool = False
    unreadable: str = ""
    encrypted: tuple[str, ...] = ()  # paths of encrypted members
    bad_names: tuple[tuple[str, str], ...] = ()  # (reason, member path)


class AttachmentScanner:
    """Applies AttachmentRules to every attachment of a message. See the module docstring."""

    name = "attachments"

    def __init__(self, rules: AttachmentRules) -> None:
        self._rules = rules
        self._blocked = frozenset(e.strip().lstrip(".").lower() for e in rules.blocked_extensions)
        self._executable = _EXECUTABLE_EXTENSIONS | self._blocked
        self._max_entries = max(rules.max_archive_entries, 0)

    @property
    def rules(self) -> AttachmentRules:
        return self._rules

    def scan(self, message: ParsedMessage, envelope: Envelope) -> tuple[Finding, ...]:
        del envelope  # attachment rules depend on content only
        findings: list[Finding] = []
        budget = _Budget()
        for attachment in message.attachments:
            try:
                findings.extend(self._scan_attachment(attachment, budget))
            except Exception as exc:
                # A bug must not pass the attachment as clean: the policy tempfails on this.
                findings.append(
                    Finding(
                        scanner=self.name,
                        code=INTERNAL_ERROR,
                        where=Where.ATTACHMENT_NAME.value,
                        part=str(getattr(attachment, "part", "")),
                        detail=f"attachment scan failed: {type(exc).__name__}"[:_MAX_DETAIL],
                    )
                )
        return tuple(findings)

    # -- one attachment ------------------------------------------------------------------

    def _finding(self, code: str, part: str, detail: str, count: int = 1) -> Finding:
        return Finding(
            scanner=self.name,
            code=code,
            where=Where.ATTACHMENT_NAME.value,
            part=part,
            count=count,
            detail=detail,
        )

    def _name_problems(self, name: str) -> list[tuple[str, str]]:
        """(code, reason) for every name rule `name` breaks."""
        problems: list[tuple[str, str]] = []
        if not name:
            return problems
        forms = _visible_forms(name)
        extensions = [_extensions(form) for form in forms]
        blocked = next((last for last, _ in extensions if last in self._blocked), "")
        if blocked:
            problems.append((ATTACHMENT_BLOCKED_EXTENSION, f"blocked extension .{blocked}"))
        if self._rules.check_double_extension:
            double = next(
                (
                    (before, last)
                    for last, before in extensions
                    if last in self._executable and before in _DECOY_EXTENSIONS
                ),
                None,
            )
            if double is not None:
                problems.append(
                    (ATTACHMENT_DOUBLE_EXTENSION, f"double extension .{double[0]}.{double[1]}")
                )
        if self._rules.check_name_characters:
            bad = _bad_characters(name)
            if bad:
                listed = " ".join(f"U+{ord(ch):04X}" for ch in bad[:3])
                more = "..." if len(bad) > 3 else ""
                problems.append(
                    (ATTACHMENT_NAME_CHARACTERS, f"hidden or control characters {listed}{more}")
                )
        return problems

    def _scan_attachment(self, attachment: Attachment, budget: _Budget) -> list[Finding]:
        part = attachment.part
        name = attachment.filename or ""
        payload = attachment.payload or b""
        findings = [
            self._finding(code, part, _detail(reason, name))
            for code, reason in self._name_problems(name)
        ]
        kind = (
            detect_kind(payload)
            if (self._rules.check_magic or self._rules.inspect_archives)
            else ""
        )
        if self._rules.check_magic:
            mismatch = self._mismatch(kind, name, attachment.content_type)
            if mismatch:
                findings.append(
                    self._finding(
                        ATTACHMENT_TYPE_MISMATCH, part, _detail(f"detected={kind} {mismatch}", name)
                    )
                )
        if self._rules.inspect_archives and kind == "zip":
            findings.extend(self._archive_findings(attachment, name, payload, budget))
        return findings

    def _mismatch(self, kind: str, name: str, content_type: str) -> str:
        """What the declared name or type claims, when `kind` contradicts it; else ""."""
        if not kind or not (
            kind in _EXECUTABLE_KINDS or kind in _ARCHIVE_KINDS or kind == "script"
        ):
            return ""
        forms = _visible_forms(name) if name else ()
        extensions = [_extensions(form)[0] for form in forms]
        if any(ext in _HONEST_PROGRAM_EXTENSIONS or ext in self._blocked for ext in extensions):
            return ""  # the name says what it is; the name rules judge it
        claimed = next((ext for ext in extensions if ext), "")
        if kind in _ARCHIVE_KINDS:
            return f"declared=.{claimed}" if claimed in _PDF_IMAGE_EXTENSIONS else ""
        if kind == "script":
            # A script is text; only a document, image or media name is a lie about it.
            return f"declared=.{claimed}" if claimed in _DOCUMENT_MEDIA_EXTENSIONS else ""
        if claimed in _DOCUMENT_MEDIA_EXTENSIONS or claimed in _TEXT_EXTENSIONS:
            return f"declared=.{claimed}"
        if not claimed or claimed not in _DECOY_EXTENSIONS:
            # No usable name: the declared content type is the only claim.
            ctype = content_type.strip().lower()
            if _type_claims_document(ctype) or ctype.startswith("text/"):
                return f"declared={ctype[:40]}"
        return ""

    # -- archives ------------------------------------------------------------------------

    def _list_zip(
        self, data: bytes, prefix: str, result: _ArchiveResult, budget: _Budget, nested: bool
    ) -> None:
        """Adds the members of the zip in `data` to `result`; one nested level when allowed."""
        try:
            directory = _find_directory(data)
        except _UnreadableError as exc:
            if not result.unreadable:
                result.unreadable = f"{prefix}{exc}" if prefix else str(exc)
            return
        room = max(self._max_entries - result.entries, 0)
        try:
            members, more = _walk(data, directory, room)
        except (_UnreadableError, struct.error) as exc:
            detail = str(exc) if isinstance(exc, _UnreadableError) else "malformed entry"
            if not result.unreadable:
                result.unreadable = prefix + detail
            return
        if more:
            result.too_many = True
        result.entries += len(members)
        encrypted = list(result.encrypted)
        bad = list(result.bad_names)
        nested_members: list[tuple[_Member, str]] = []
        for member in members:
            path = prefix + member.names[0]
            if member.flags & (_FLAG_ENCRYPTED | _FLAG_MASKED_DIRECTORY):
                encrypted.append(path)
            for member_name in member.names:
                for _code, reason in self._name_problems(member_name.rstrip("/")):
                    bad.append((reason, prefix + member_name))
            if not nested and any(
                _extensions(form)[0] == "zip" for form in _visible_forms(member.names[0])
            ):
                nested_members.append((member, path))
        result.encrypted = tuple(encrypted)
        result.bad_names = tuple(bad)
        for member, path in nested_members:
            if budget.nested_zips_left <= 0:
                break
            inner = _nested_payload(data, member)
            if inner is None or not inner.startswith(_LOCAL_MAGIC):
                continue
            budget.nested_zips_left -= 1
            self._list_zip(inner, path + "/", result, budget, nested=True)

    def _archive_findings(
        self, attachment: Attachment, name: str, payload: bytes, budget: _Budget
    ) -> list[Finding]:
        part = attachment.part
        result = _ArchiveResult()
        self._list_zip(payload, "", result, budget, nested=False)
        findings: list[Finding] = []
        if result.unreadable:
            if len(payload) < attachment.size:
                reason = "zip cut short by the decoded-bytes limit"
            else:
                reason = f"unreadable zip ({_printable(result.unreadable)[:40]})"
            findings.append(
                self._finding(ATTACHMENT_ARCHIVE_UNREADABLE, part, _detail(reason, name))
            )
        if result.too_many:
            findings.append(
                self._finding(
                    ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES,
                    part,
                    _detail(f"more than {self._max_entries} archive entries", name),
                )
            )
        if result.encrypted:
            findings.append(
                self._finding(
                    ATTACHMENT_ENCRYPTED_ARCHIVE,
                    part,
                    _detail(f"encrypted member in {_short(name)}", result.encrypted[0]),
                    count=len(result.encrypted),
                )
            )
        shown = result.bad_names[: _MAX_MEMBER_FINDINGS - 1]
        if len(result.bad_names) == _MAX_MEMBER_FINDINGS:
            shown = result.bad_names
        for reason, member_path in shown:
            findings.append(
                self._finding(ATTACHMENT_ARCHIVE_BLOCKED_NAME, part, _detail(reason, member_path))
            )
        rest = len(result.bad_names) - len(shown)
        if rest > 0:
            findings.append(
                self._finding(
                    ATTACHMENT_ARCHIVE_BLOCKED_NAME,
                    part,
                    _detail(f"{rest} more problems with member names in", name),
                    count=rest,
                )
            )
        return findings


def _short(name: str) -> str:
    shown = _printable(name)
    return shown if len(shown) <= 30 else shown[:12] + "..." + shown[-15:]
