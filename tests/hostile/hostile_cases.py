"""The hostile-input corpus: named messages built at run time, with the verdicts they allow.

In:  nothing; `CASES` is a table of HostileCase values. Each case's `build()` returns the raw
     message bytes (CRLF unless the case is about line endings). Large inputs (30 MB
     messages, zip bombs, 10 000-deep nesting) are generated here, never stored.
Out: for every case the verdicts menshen may answer (accept, quarantine, reject; never
     tempfail, which would mean an internal error) and what must be among the findings:
     MIME limits hit (quarantine per `actions.on_limits`) or finding codes (a keyword hit
     that must survive the hostile framing, an attachment rule).
Fails: building a case never fails; the engine's answer is checked by the tests and the
     report (tests/hostile/test_hostile_engine.py, tests/hostile/report.py).
Thread safety: pure builders; every call builds new bytes.

Rows follow section A of the reliability test matrix (A1 deep nesting, A2
part bombs, A3 oversized messages, A4/A5 boundaries, A7 header complexity, A9 encoded
words, A10 charsets, A11 base64, A12 transfer encodings and HTML, A13 file names, A18
NUL and 8-bit) and C8 zip bombs, inside attachments and Office documents.
"""

from __future__ import annotations

import base64
import binascii
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from menshen.model import Action

__all__ = ["CASES", "CASES_BY_NAME", "PHRASE", "HostileCase", "RawEntry", "raw_zip"]

PHRASE = "代开发票"  # invoice_fraud in the shipped wordlists: reject
CRLF = b"\r\n"
MB = 1 << 20

ACCEPT = frozenset({Action.ACCEPT})
QUARANTINE = frozenset({Action.QUARANTINE})
REJECT = frozenset({Action.REJECT})
# For inputs where either reading is defensible (accept with defects, or quarantine for a
# limit): what must never happen is a tempfail or a traceback.
ACCEPT_OR_QUARANTINE = frozenset({Action.ACCEPT, Action.QUARANTINE})


@dataclass(frozen=True, slots=True)
class HostileCase:
    name: str
    what: str  # one line for the table in docs/RELIABILITY.md
    build: Callable[[], bytes]
    verdicts: frozenset[Action]
    limits: frozenset[str] = frozenset()  # LimitHit names that must be reported
    codes: frozenset[str] = frozenset()  # finding codes that must be reported
    sender: str = "sender@example.net"


# --- message building ------------------------------------------------------------------


def message(headers: Sequence[str], body: bytes, *, eol: bytes = CRLF) -> bytes:
    head = ["From: Sender <sender@example.net>", "To: rcpt@example.com", *headers]
    return eol.join(line.encode("utf-8", "surrogateescape") for line in head) + eol + eol + body


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", CRLF)


def part(headers: Sequence[str], body: bytes) -> bytes:
    return CRLF.join(h.encode("utf-8", "surrogateescape") for h in headers) + CRLF + CRLF + body


def multipart(parts: Sequence[bytes], boundary: str = "BOUNDARY") -> bytes:
    marker = b"--" + boundary.encode()
    out = [b"This is a multi-part message in MIME format.\r\n"]
    for chunk in parts:
        out += [marker, CRLF, chunk, CRLF]
    out += [marker, b"--", CRLF]
    return b"".join(out)


def mixed_message(parts: Sequence[bytes], headers: Sequence[str] = ()) -> bytes:
    return message(
        [
            "Subject: hostile",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="BOUNDARY"',
            *headers,
        ],
        multipart(parts),
    )


def text_part(text: str, charset: str = "utf-8", cte: str = "base64") -> bytes:
    data = text.encode(charset)
    body = b64(data) if cte == "base64" else data
    return part(
        [f"Content-Type: text/plain; charset={charset}", f"Content-Transfer-Encoding: {cte}"],
        body,
    )


def attachment(name: str, data: bytes, ctype: str = "application/octet-stream") -> bytes:
    return part(
        [
            f'Content-Type: {ctype}; name="{name}"',
            f'Content-Disposition: attachment; filename="{name}"',
            "Content-Transfer-Encoding: base64",
        ],
        b64(data),
    )


def with_attachment(name: str, data: bytes, ctype: str = "application/octet-stream") -> bytes:
    return mixed_message(
        [text_part("Please find the file attached."), attachment(name, data, ctype)]
    )


def lorem_lines(size: int) -> bytes:
    line = b"The quarterly report is attached; please review the figures before Monday.\r\n"
    return line * (size // len(line) + 1)


# --- zip building ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawEntry:
    """One central-directory entry of a hand-built zip."""

    name: str
    data: bytes  # the stored (compressed) bytes
    crc: int
    size: int  # uncompressed size as declared
    method: int = zipfile.ZIP_DEFLATED
    shared: bool = False  # point at the previous entry's local header (overlapping bomb)


def raw_zip(entries: Sequence[RawEntry]) -> bytes:
    """A zip from already-compressed member data; sizes may lie and entries may overlap."""
    out = io.BytesIO()
    central: list[bytes] = []
    offset = 0
    for entry in entries:
        name = entry.name.encode()
        if not entry.shared:
            offset = out.tell()
            out.write(
                struct.pack(
                    "<4s5H3L2H",
                    b"PK\x03\x04",
                    20,
                    0,
                    entry.method,
                    0,
                    0,
                    entry.crc,
                    len(entry.data),
                    min(entry.size, 0xFFFFFFFE),
                    len(name),
                    0,
                )
                + name
                + entry.data
            )
        central.append(
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                0,
                entry.method,
                0,
                0,
                entry.crc,
                len(entry.data),
                min(entry.size, 0xFFFFFFFE),
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    start = out.tell()
    directory = b"".join(central)
    out.write(directory)
    count = min(len(entries), 0xFFFF)
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), start, 0))
    return out.getvalue()


def deflated_repeat(size: int, pattern: bytes = b"\0") -> tuple[bytes, int]:
    """(raw deflate stream, crc32) of `pattern` repeated to about `size` bytes, quickly.

    After a full flush a deflate compressor starts afresh, so each further megabyte of the
    same content compresses to the same bytes: compress one, repeat it.
    """
    chunk = pattern * (MB // len(pattern))
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = first.compress(chunk) + first.flush(zlib.Z_FULL_FLUSH)
    middle = first.compress(chunk) + first.flush(zlib.Z_FULL_FLUSH)
    tail = first.flush(zlib.Z_FINISH)
    count = max(size // len(chunk), 2)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(chunk, crc)
    return head + middle * (count - 1) + tail, crc


def deflated_zeros(size: int) -> tuple[bytes, int]:
    return deflated_repeat(size)


def zip_of(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


W_NS = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
DOCX_TYPES = ("[Content_Types].xml", b"<Types/>")


def docx_document(paragraphs: str) -> bytes:
    return f"<w:document {W_NS}><w:body>{paragraphs}</w:body></w:document>".encode()


def plain_docx(paragraphs: str) -> bytes:
    return zip_of({DOCX_TYPES[0]: DOCX_TYPES[1], "word/document.xml": docx_document(paragraphs)})


def docx_mail(data: bytes, name: str = "report.docx") -> bytes:
    ctype = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    return with_attachment(name, data, ctype)


# --- A1: deep nesting ----------------------------------------------------------------------


def deep_multipart(depth: int, shallow_text: str = "") -> bytes:
    opening: list[bytes] = []
    closing: list[bytes] = []
    for level in range(depth):
        boundary = f"b{level}".encode()
        opening.append(
            b"--"
            + boundary
            + CRLF
            + f'Content-Type: multipart/mixed; boundary="b{level + 1}"'.encode()
            + CRLF
            + CRLF
        )
        closing.append(CRLF + b"--" + boundary + b"--" + CRLF)
    inner = f"--b{depth}\r\nContent-Type: text/plain\r\n\r\ninnermost\r\n--b{depth}--\r\n".encode()
    first = b""
    if shallow_text:
        first = b"--b0\r\n" + text_part(shallow_text) + CRLF
    body = first + b"".join(opening) + inner + b"".join(reversed(closing))
    return message(["Subject: nested", 'Content-Type: multipart/mixed; boundary="b0"'], body)


def deep_rfc822(depth: int) -> bytes:
    level = b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n"
    inner = b"Subject: innermost\r\nContent-Type: text/plain\r\n\r\ninnermost\r\n"
    return message(["Subject: nested", "Content-Type: message/rfc822"], level * depth + inner)


def deep_eml_attachments(depth: int) -> bytes:
    """Each level an .eml attachment (8bit, so the size grows linearly) of the next."""
    inner = message(["Subject: innermost"], b"innermost\r\n")
    for level in range(depth):
        inner = mixed_message(
            [
                text_part(f"level {level}", cte="8bit"),
                part(
                    [
                        'Content-Type: application/octet-stream; name="forward.eml"',
                        'Content-Disposition: attachment; filename="forward.eml"',
                        "Content-Transfer-Encoding: 8bit",
                    ],
                    inner,
                ),
            ]
        ).replace(b"BOUNDARY", f"BOUNDARY{level}".encode())
    return inner


# --- A2: part bombs -------------------------------------------------------------------------


def tiny_parts(count: int) -> bytes:
    # Email-MIME#66 shape: every part four bytes, no headers.
    body = b"--B\r\n\r\nxxxx\r\n" * count + b"--B--\r\n"
    return message(["Subject: parts", 'Content-Type: multipart/mixed; boundary="B"'], body)


def many_parts(count: int, keyword_last: bool = False) -> bytes:
    parts = [text_part(f"part {i}", cte="7bit") for i in range(count)]
    if keyword_last:
        parts[-1] = text_part(PHRASE)
    return mixed_message(parts)


# --- A3: big messages -----------------------------------------------------------------------


def big_text(size: int) -> bytes:
    return message(
        ["Subject: big", "Content-Type: text/plain; charset=us-ascii"], lorem_lines(size)[:size]
    )


def big_attachment(size: int) -> bytes:
    data = random.Random(1).randbytes(size * 3 // 4)
    return with_attachment("backup.bin", data)


def big_html(size: int) -> bytes:
    cell = b"<tr><td><b>Item</b></td><td><span style='color:red'>42</span></td></tr>\r\n"
    body = b"<html><body><table>" + cell * (size // len(cell)) + b"</table></body></html>"
    return message(["Subject: big html", "Content-Type: text/html; charset=utf-8"], body)


# --- A11: base64 with garbage ---------------------------------------------------------------


def noisy_base64() -> bytes:
    encoded = base64.b64encode(f"Hello, {PHRASE} today.".encode())
    noisy = b" !".join(encoded[i : i + 3] for i in range(0, len(encoded), 3))
    return message(
        [
            "Subject: noisy",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
        ],
        noisy + b"\r\n*** line noise ***\r\n",
    )


def binary_as_base64(size: int) -> bytes:
    junk = random.Random(2).randbytes(size)
    return message(
        [
            "Subject: junk",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: base64",
        ],
        junk,
    )


def padding_runs(count: int) -> bytes:
    return message(
        ["Subject: padding", "Content-Type: text/plain", "Content-Transfer-Encoding: base64"],
        b"QQ==Qg=\r\n=\r\n" * count + b"=\r\n",
    )


def base64_attachment_garbage() -> bytes:
    data = b64(b"MZ" + b"\0" * 5000)
    broken = data[:100] + b"\x00\xff%%%\r\n" + data[100:-10] + b"=====garbage after padding"
    return mixed_message(
        [
            text_part("see attachment"),
            part(
                [
                    "Content-Type: application/pdf; name=invoice.pdf",
                    "Content-Transfer-Encoding: BASE64 ",
                ],
                broken,
            ),
        ]
    )


# --- A12: transfer encodings and HTML tricks --------------------------------------------------


def qp_soft_breaks() -> bytes:
    encoded = "".join(f"={byte:02X}" for byte in PHRASE.encode())
    soft = "=\r\n".join(encoded[i : i + 3] for i in range(0, len(encoded), 3))
    return message(
        [
            "Subject: qp",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
        ],
        (soft + " =ZZ =G1 =\r\n=4").encode(),
    )


def qp_equals(size: int) -> bytes:
    return message(
        ["Subject: qp", "Content-Type: text/plain", "Content-Transfer-Encoding: quoted-printable"],
        b"=" * size,
    )


def uuencode_garbage() -> bytes:
    body = (
        b"begin 644 notes.txt\r\n"
        + binascii.b2a_uu(PHRASE.encode())
        + b"garbage line !!!\r\n\x7f\x7f\x7f\r\nM\r\n`\r\nend\r\n"
    )
    return mixed_message(
        [
            part(
                [
                    "Content-Type: text/plain; name=notes.txt",
                    "Content-Transfer-Encoding: x-uuencode",
                ],
                body,
            )
        ]
    )


def html_storms() -> bytes:
    storms = [
        b"<" * MB,  # stray openers
        b"<a " * (MB // 3),  # never-closed tags
        b"<!--" * (MB // 4),  # comment openers
        b"</" * (MB // 2),
        b"<div style='display:none'>" * 40_000,  # hidden scopes, never closed
        b"&#x4ee3;&amp&#99999999;&" * 40_000,  # character references, broken ones
    ]
    parts = [part(["Content-Type: text/html; charset=utf-8"], storm) for storm in storms]
    return mixed_message(parts)


# --- A10: charsets ----------------------------------------------------------------------------


def charset_parts(labels: Sequence[str], data: bytes) -> bytes:
    parts = [
        part(
            [f"Content-Type: text/plain; charset={label}", "Content-Transfer-Encoding: 8bit"], data
        )
        for label in labels
    ]
    return mixed_message(parts)


UNKNOWN_CHARSETS = (
    "bogus",
    '""',
    "uft-8",
    "x-unknown",
    "utf-8*en",
    "=?utf-8?",
    "\x00utf-8",
    "utf-8\x00",
    "a" * 10_000,
)
# Labels Python knows but that are no charsets, or codecs that are strange to decode.
CODEC_CHARSETS = (
    "base64",
    "rot13",
    "zlib",
    "hex",
    "bz2",
    "uu",
    "quopri",
    "idna",
    "punycode",
    "unicode_escape",
    "raw_unicode_escape",
    "undefined",
    "utf-7",
    "utf-16",
    "utf-32",
    "hz",
    "iso2022_jp_2",
    "mbcs",
    "oem",
    "charmap",
    "palmos",
)


def punycode_body(size: int) -> bytes:
    # CPython's punycode decoder is quadratic: this took minutes before it was refused.
    return message(
        ["Subject: p", "Content-Type: text/plain; charset=punycode"],
        b"a-" + b"b" * size + f" {PHRASE}".encode(),
    )


def lying_charsets() -> bytes:
    parts = [
        part(
            ["Content-Type: text/plain; charset=gb2312", "Content-Transfer-Encoding: base64"],
            b64("Big5 bytes: 代開發票".encode("big5")),
        ),
        part(
            ["Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 8bit"],
            f"UTF-8 bytes in an ASCII part: {PHRASE}".encode(),
        ),
        part(
            ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64"],
            b64(f"GBK in UTF-8: {PHRASE}".encode("gbk") + b"\xff\xfe"),
        ),
    ]
    return mixed_message(parts)


# --- A9: encoded-word abuse -------------------------------------------------------------------


def encoded_words(count: int) -> bytes:
    word = "=?utf-8?b?" + base64.b64encode("文字".encode()).decode() + "?="
    subject = " ".join([word] * count)
    return message([f"Subject: {subject}", "Content-Type: text/plain"], b"body\r\n")


def huge_encoded_word(size: int) -> bytes:
    payload = base64.b64encode(("x" * (size * 3 // 4)).encode()).decode()
    return message([f"Subject: =?utf-8?b?{payload}?=", "Content-Type: text/plain"], b"body\r\n")


def invalid_encoded_words() -> bytes:
    words = [
        "=?utf-8?b?@@@###?=",  # not base64
        "=?utf-8?q?=ZZ=G1=?=",  # not quoted-printable
        "=?bogus?b?5Luj5byA?=",  # unknown charset
        "=?utf-8?x?abc?=",  # unknown encoding
        "=?utf-8?b?5Luj5byA",  # never closed
        "=??b??=",  # empty charset and text
        "=?" + "u" * 5000 + "?b?QQ==?=",  # charset longer than any label
        "=?utf-8*zh-cn?b?5Y+R56Wo?=",  # RFC 2231 language suffix
        "=?utf-8?b?" + "=" * 3000 + "?=",  # padding only
    ]
    nested = "=?utf-8?b?" + base64.b64encode(b"=?utf-8?b?5Luj5byA5Y+R56Wo?=").decode() + "?="
    return message(
        [f"Subject: {' '.join(words)} {nested}", 'From: "=?utf-8?q?=00=0D=0A?=" <a@b.example>'],
        b"body\r\n",
    )


def split_encoded_word() -> bytes:
    raw = PHRASE.encode()
    first = base64.b64encode(raw[:5]).decode()
    second = base64.b64encode(raw[5:]).decode()
    return message(
        [f"Subject: =?utf-8?b?{first}?=\r\n =?utf-8?b?{second}?=", "Content-Type: text/plain"],
        b"body\r\n",
    )


def encoded_addresses(count: int) -> bytes:
    name = "=?utf-8?b?" + base64.b64encode("张三".encode()).decode() + "?="
    to = ", ".join(f"{name} <user{i}@example.com>" for i in range(count))
    return message([f"Cc: {to}", "Subject: many"], b"body\r\n")


# --- A7: header complexity --------------------------------------------------------------------


def long_header(size: int, filler: str = ";") -> bytes:
    return message([f"Subject: {filler * size}", "Content-Type: text/plain"], b"body\r\n")


def folded_header(lines: int) -> bytes:
    value = "\r\n\t".join(f"word{i} =?utf-8?q?x?=" for i in range(lines))
    return message([f"Subject: {value}"], b"body\r\n")


def many_headers(count: int) -> bytes:
    headers = [f"X-Header-{i}: value {i}" for i in range(count)]
    return message(["Subject: headers", *headers], b"body\r\n")


def many_content_types(count: int) -> bytes:
    headers = [f"Content-Type: text/plain; charset=c{i}" for i in range(count)]
    return message(["Subject: duplicate types", *headers], f"{PHRASE}\r\n".encode())


def headers_only(size: int) -> bytes:
    return b"Subject: " + b"x" * size + b"\r\nX-No-Body: true"


def header_garbage() -> bytes:
    lines = [
        b"From: a@example.net",
        b": no name",
        b"no colon at all",
        b"\tcontinuation first",
        b"Subject:" + "中文".encode("gbk"),
        b"X-Bin: \xff\xfe\xfd\x80\x81",
        b"Content-Type: text/plain; charset",
        b"Content-Type: ; ; ;",
    ]
    return CRLF.join(lines) + CRLF + CRLF + b"body\r\n"


# --- A18: NUL bytes and line endings ----------------------------------------------------------


def nul_bytes() -> bytes:
    return (
        b"From: Sen\x00der <a@example.net>\r\n"
        b"Subj\x00ect: null\x00 subject\r\n"
        b"Subject: " + PHRASE.encode()[:3] + b"\x00" + PHRASE.encode()[3:] + b"\r\n"
        b'Content-Type: multipart/mixed; boundary="B\x00B"\r\n\r\n'
        b"--B\x00B\r\nContent-Type: text/plain; charset=utf\x008\r\n\r\nnul \x00\x00 body\r\n"
        b'--B\x00B\r\nContent-Type: application/octet-stream; name="a\x00.exe"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\x00//8AALgAAAAA\r\n"
        b"--B\x00B--\r\n"
    )


def lf_only() -> bytes:
    return mixed_message(
        [text_part("hello"), attachment("price-list.txt", PHRASE.encode(), "text/plain")]
    ).replace(CRLF, b"\n")


def cr_only() -> bytes:
    return mixed_message([text_part(f"body {PHRASE}", cte="8bit")]).replace(CRLF, b"\r")


def mixed_line_endings() -> bytes:
    raw = mixed_message([text_part("one"), text_part(PHRASE, cte="8bit")])
    lines = raw.split(CRLF)
    ends = (CRLF, b"\n", b"\r", b"\n\r")
    return b"".join(line + ends[i % 4] for i, line in enumerate(lines))


# --- A4/A5: boundaries ------------------------------------------------------------------------


def boundary_never_appears() -> bytes:
    return message(
        ["Subject: b", 'Content-Type: multipart/mixed; boundary="NEVER"'],
        f"--OTHER\r\nContent-Type: text/plain\r\n\r\n{PHRASE}\r\n".encode(),
    )


def boundary_never_closed() -> bytes:
    return message(
        ["Subject: b", 'Content-Type: multipart/mixed; boundary="OPEN"'],
        b"--OPEN\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
        b"--OPEN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        + f"trailing {PHRASE} text".encode()
        + b"\r\n",
    )


def boundary_missing_parameter() -> bytes:
    return message(
        ["Subject: b", "Content-Type: multipart/mixed"],
        f"--X\r\nContent-Type: text/plain\r\n\r\n{PHRASE}\r\n--X--\r\n".encode(),
    )


def boundary_empty() -> bytes:
    return message(
        ["Subject: b", 'Content-Type: multipart/mixed; boundary=""'],
        f"--\r\nContent-Type: text/plain\r\n\r\n{PHRASE}\r\n----\r\n".encode(),
    )


def boundary_prefix() -> bytes:
    # RFC 2046: "--B1" starts a part; "--B10" must not (it is text of the current part).
    body = (
        b"--B1\r\nContent-Type: text/plain\r\n\r\nfirst\r\n"
        b"--B10\r\nContent-Type: text/plain\r\n\r\n" + PHRASE.encode() + b"\r\n"
        b"--B1 \r\nContent-Type: text/plain\r\n\r\nafter a boundary with a trailing space\r\n"
        b"--B1--\r\n"
    )
    return message(["Subject: prefix", 'Content-Type: multipart/mixed; boundary="B1"'], body)


def boundary_nested_prefix() -> bytes:
    inner = (
        b'Content-Type: multipart/alternative; boundary="AA"\r\n\r\n'
        b"--AA\r\nContent-Type: text/plain\r\n\r\nclean\r\n"
        b"--A\r\nContent-Type: text/plain\r\n\r\n" + PHRASE.encode() + b"\r\n--AA--\r\n"
    )
    body = b"--A\r\n" + inner + b"\r\n--A--\r\n"
    return message(["Subject: nested prefix", 'Content-Type: multipart/mixed; boundary="A"'], body)


def boundary_long(length: int) -> bytes:
    boundary = "b" * length
    body = f"--{boundary}\r\nContent-Type: text/plain\r\n\r\n{PHRASE}\r\n--{boundary}--\r\n"
    return message(
        ["Subject: long", f'Content-Type: multipart/mixed; boundary="{boundary}"'], body.encode()
    )


# --- A13: file names --------------------------------------------------------------------------


def rfc2231_name(name: str) -> str:
    quoted = "".join(
        ch
        if (ch.isascii() and ch.isalnum()) or ch in "._-"
        else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in name
    )
    return f"utf-8''{quoted}"


def bidi_attachment(name: str, data: bytes) -> bytes:
    return mixed_message(
        [
            text_part("invoice attached"),
            part(
                [
                    "Content-Type: application/octet-stream",
                    f"Content-Disposition: attachment; filename*={rfc2231_name(name)}",
                    "Content-Transfer-Encoding: base64",
                ],
                b64(data),
            ),
        ]
    )


def filename_continuations(count: int) -> bytes:
    pieces = "; ".join(f'filename*{i}="n{i}"' for i in range(count))
    return mixed_message(
        [
            text_part("see attachment"),
            part(
                [
                    "Content-Type: application/octet-stream",
                    f"Content-Disposition: attachment; {pieces}",
                    "Content-Transfer-Encoding: base64",
                ],
                b64(b"data"),
            ),
        ]
    )


# --- C8: zip bombs and archives ---------------------------------------------------------------


def docx_deflate_bomb(size: int) -> bytes:
    data, crc = deflated_zeros(size)
    size = MB * (size // MB)
    return raw_zip(
        [
            RawEntry(
                DOCX_TYPES[0], DOCX_TYPES[1], zlib.crc32(DOCX_TYPES[1]), 7, zipfile.ZIP_STORED
            ),
            RawEntry("word/document.xml", data, crc, size),
        ]
    )


def docx_many_bomb_members(members: int, size: int, pattern: bytes = b"\0") -> bytes:
    data, crc = deflated_repeat(size, pattern)
    size = len(pattern) * (MB // len(pattern)) * max(size // MB, 2)
    entries = [
        RawEntry(DOCX_TYPES[0], DOCX_TYPES[1], zlib.crc32(DOCX_TYPES[1]), 7, zipfile.ZIP_STORED)
    ]
    entries += [
        RawEntry("word/document.xml" if i == 0 else f"word/header{i}.xml", data, crc, size)
        for i in range(members)
    ]
    return raw_zip(entries)


def docx_overlapping(members: int, size: int) -> bytes:
    """Fifield's non-recursive bomb shape: many entries, one compressed kernel."""
    data, crc = deflated_zeros(size)
    entries = [RawEntry("word/document.xml", data, crc, size)]
    entries += [
        RawEntry(f"word/footer{i}.xml", data, crc, size, shared=True) for i in range(1, members)
    ]
    return raw_zip(entries)


def docx_bzip2_bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr(*DOCX_TYPES)
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            chunk = b"\0" * MB
            for _ in range(size // MB):
                member.write(chunk)
    return buffer.getvalue()


def docx_lying_sizes() -> bytes:
    body = docx_document(f"<w:p><w:r><w:t>{PHRASE}</w:t></w:r></w:p>")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = compressor.compress(body) + compressor.flush()
    return raw_zip(
        [
            RawEntry("word/document.xml", data, zlib.crc32(body), 3),  # claims 3 bytes
            RawEntry("word/header1.xml", data, 0xDEADBEEF, len(body)),  # wrong CRC
            RawEntry("word/footer1.xml", b"\xff" * 64, 0, 1 << 31),  # not deflate at all
        ]
    )


def docx_entities() -> bytes:
    lol = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">'
            if i > 1
            else '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
            for i in range(1, 10)
        )
        + '<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    )
    numeric = "&#x4ee3;&#24320;&#x53D1;&#31080;"  # 代开发票 as character references
    body = (
        f"<w:p><w:r><w:t>&lol9;&xxe;</w:t></w:r></w:p>"
        f"<w:p><w:r><w:t>{numeric}</w:t></w:r></w:p>"
        + "<w:p><w:r><w:t>&#0;&#xD800;&#x110000;&#99999999999;&amp;&#</w:t></w:r></w:p>"
        * 20_000
    )
    xml = lol.encode() + docx_document(body)
    return zip_of({DOCX_TYPES[0]: DOCX_TYPES[1], "word/document.xml": xml})


def zip_many_members(count: int) -> bytes:
    return raw_zip([RawEntry(f"f{i}.txt", b"", 0, 0, zipfile.ZIP_STORED) for i in range(count)])


def nested_zips(depth: int) -> bytes:
    data = zip_of({"invoice.exe": b"MZ" + b"\0" * 100})
    for level in range(depth):
        data = zip_of({f"level{level}.zip": data})
    return data


def zip_42(width: int, depth: int) -> bytes:
    """42.zip shape: each level holds `width` copies of the level below."""
    data, crc = deflated_zeros(16 * MB)
    leaf = raw_zip([RawEntry("zeros.bin", data, crc, 16 * MB)])
    for level in range(depth):
        leaf = zip_of({f"l{level}-{i}.zip": leaf for i in range(width)})
    return leaf


def plain_zip_bomb(size: int) -> bytes:
    data, crc = deflated_zeros(size)
    return raw_zip([RawEntry("zeros.txt", data, crc, size), RawEntry("a.zip", data, crc, size)])


# --- the table --------------------------------------------------------------------------------


def _case(
    name: str,
    what: str,
    build: Callable[[], bytes],
    verdicts: frozenset[Action],
    limits: Sequence[str] = (),
    codes: Sequence[str] = (),
) -> HostileCase:
    return HostileCase(name, what, build, verdicts, frozenset(limits), frozenset(codes))


CASES: tuple[HostileCase, ...] = (
    # A1
    _case(
        "multipart-10000-deep",
        "10 000 nested multipart/mixed",
        lambda: deep_multipart(10_000),
        QUARANTINE,
        ["depth"],
    ),
    _case(
        "multipart-deep-keyword-shallow",
        "10 000 nested multiparts after a text part with a keyword",
        lambda: deep_multipart(10_000, f"hello {PHRASE}"),
        REJECT,
        ["depth"],
        ["KEYWORD_HIT"],
    ),
    _case(
        "rfc822-10000-deep",
        "10 000 nested message/rfc822",
        lambda: deep_rfc822(10_000),
        QUARANTINE,
        ["depth"],
    ),
    _case(
        "eml-attachment-200-deep",
        "200 levels of .eml attachments (8bit)",
        lambda: deep_eml_attachments(200),
        QUARANTINE,
        ["depth"],
    ),
    # A2
    _case(
        "parts-200000-tiny",
        "200 000 parts of 4 bytes (Email-MIME#66 shape)",
        lambda: tiny_parts(200_000),
        QUARANTINE,
        ["parts"],
    ),
    _case(
        "parts-20000",
        "20 000 text parts with headers",
        lambda: many_parts(20_000),
        QUARANTINE,
        ["parts"],
    ),
    _case(
        "parts-900-keyword-last",
        "900 text parts (under the limit), keyword in the last",
        lambda: many_parts(900, keyword_last=True),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    # A3
    _case(
        "text-30mb",
        "30 MB text/plain body",
        lambda: big_text(30 * MB),
        QUARANTINE,
        ["text_chars"],
    ),
    _case(
        "attachment-30mb",
        "30 MB message: one base64 binary attachment",
        lambda: big_attachment(30 * MB),
        ACCEPT,
    ),
    _case(
        "html-30mb",
        "30 MB text/html of table markup",
        lambda: big_html(30 * MB),
        ACCEPT_OR_QUARANTINE,
    ),
    _case(
        "message-over-cap",
        "51 MB message, over limits.max_message_bytes",
        lambda: big_attachment(51 * MB),
        QUARANTINE,
        ["message_bytes"],
    ),
    # A11
    _case(
        "base64-noise-keyword",
        "base64 body with spaces, '!' and a noise line; keyword inside",
        noisy_base64,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "base64-binary-junk",
        "1 MB of random bytes declared base64 text",
        lambda: binary_as_base64(MB),
        ACCEPT,
    ),
    _case(
        "base64-padding-runs",
        "100 000 runs of '=' padding inside base64",
        lambda: padding_runs(100_000),
        ACCEPT,
    ),
    _case(
        "base64-attachment-garbage",
        "base64 attachment with NUL, '%', data after padding, 'BASE64 ' label",
        base64_attachment_garbage,
        ACCEPT_OR_QUARANTINE,
    ),
    # A12
    _case(
        "qp-soft-breaks-keyword",
        "keyword split by quoted-printable soft breaks, invalid =ZZ escapes",
        qp_soft_breaks,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "qp-equals-1mb",
        "1 MB of '=' declared quoted-printable",
        lambda: qp_equals(MB),
        ACCEPT,
    ),
    _case(
        "uuencode-garbage-keyword",
        "x-uuencode part with garbage lines; keyword in the encoded text",
        uuencode_garbage,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "html-markup-storms",
        "HTML parts of 1 MB stray '<', unclosed tags and comments, hidden scopes",
        html_storms,
        ACCEPT,
    ),
    # A10
    _case(
        "charset-unknown",
        "bogus, empty, NUL-carrying and 10 KB charset labels on 8-bit text",
        lambda: charset_parts(UNKNOWN_CHARSETS, f"8-bit {PHRASE}".encode("gb18030")),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "charset-codec-names",
        "charset=base64, rot13, zlib, idna, punycode, unicode_escape, utf-7, ...",
        lambda: charset_parts(CODEC_CHARSETS, b"\\N{bad} \\x \xff\xfe " + PHRASE.encode()),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "charset-punycode-1mb",
        "1 MB body labelled charset=punycode (a quadratic decoder)",
        lambda: punycode_body(MB),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "charset-lying",
        "Big5 labelled gb2312, UTF-8 labelled us-ascii, GBK labelled UTF-8",
        lying_charsets,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    # A9
    _case(
        "encoded-words-20000",
        "Subject of 20 000 encoded-words",
        lambda: encoded_words(20_000),
        ACCEPT,
    ),
    _case(
        "encoded-word-1mb",
        "one 1 MB encoded-word in the Subject",
        lambda: huge_encoded_word(MB),
        ACCEPT,
    ),
    _case(
        "encoded-words-invalid",
        "bad base64/QP, unknown charset and encoding, unclosed, nested encoded-words",
        invalid_encoded_words,
        ACCEPT,
    ),
    _case(
        "encoded-word-split-char",
        "keyword split mid-character across two encoded-words",
        split_encoded_word,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "encoded-addresses-5000",
        "Cc with 5000 encoded display names (over 16 KB)",
        lambda: encoded_addresses(5000),
        ACCEPT,
    ),
    # A7
    _case(
        "header-200kb-semicolons",
        "200 KB Subject of ';' (cpython #136063 shape)",
        lambda: long_header(200 * 1024),
        ACCEPT,
    ),
    _case(
        "header-200kb-encoded-starts",
        "200 KB Subject of '=?' openers",
        lambda: long_header(100 * 1024, "=?"),
        ACCEPT,
    ),
    _case(
        "header-folded-20000-lines",
        "one header folded over 20 000 lines",
        lambda: folded_header(20_000),
        ACCEPT,
    ),
    _case(
        "headers-50000",
        "50 000 header fields",
        lambda: many_headers(50_000),
        ACCEPT,
    ),
    _case(
        "content-type-5000-copies",
        "5000 disagreeing Content-Type headers",
        lambda: many_content_types(5000),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "headers-only-no-body",
        "a 1 MB header block with no blank line and no body",
        lambda: headers_only(MB),
        ACCEPT,
    ),
    _case(
        "header-garbage-lines",
        "header lines without names or colons, raw GBK and binary bytes",
        header_garbage,
        ACCEPT,
    ),
    # A18
    _case(
        "nul-bytes",
        "NUL in header names, values, boundary, charset, file name and body",
        nul_bytes,
        frozenset({Action.QUARANTINE, Action.REJECT}),
    ),
    _case(
        "lf-only",
        "LF-only line endings, keyword in a .txt attachment",
        lf_only,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "cr-only",
        "CR-only line endings",
        cr_only,
        ACCEPT_OR_QUARANTINE | REJECT,
    ),
    _case(
        "mixed-line-endings",
        "CRLF, LF, CR and LFCR mixed, keyword in the second part",
        mixed_line_endings,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    # A4, A5
    _case(
        "boundary-never-appears",
        "declared boundary never used; keyword in the body",
        boundary_never_appears,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "boundary-never-closed",
        "last part never closed; keyword in the trailing text",
        boundary_never_closed,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "boundary-parameter-missing",
        "multipart/mixed without a boundary parameter",
        boundary_missing_parameter,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "boundary-empty",
        'boundary=""',
        boundary_empty,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "boundary-prefix",
        "boundary B1 with a '--B10' line and '--B1 ' (trailing space)",
        boundary_prefix,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "boundary-nested-prefix",
        "inner boundary AA, outer A: '--A' inside the inner part",
        boundary_nested_prefix,
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "boundary-3000-chars",
        "a 3000-character boundary (over Postfix's 2048)",
        lambda: boundary_long(3000),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    # A13
    _case(
        "bidi-name-exe",
        "invoice\\u202Efdp.exe (RLO) as an RFC 2231 name",
        lambda: bidi_attachment("invoice\u202efdp.exe", b"MZ\x90\x00" + b"\0" * 60),
        REJECT,
        codes=["ATTACHMENT_BLOCKED_EXTENSION", "ATTACHMENT_NAME_CHARACTERS"],
    ),
    _case(
        "bidi-name-document",
        "report\\u202Etxt.pdf (RLO, harmless extension)",
        lambda: bidi_attachment("report\u202etxt.pdf", b"%PDF-1.4\n"),
        QUARANTINE,
        codes=["ATTACHMENT_NAME_CHARACTERS"],
    ),
    _case(
        "filename-5000-continuations",
        "RFC 2231 file name in 5000 continuations",
        lambda: filename_continuations(5000),
        ACCEPT,
    ),
    # C8
    _case(
        "docx-deflate-bomb-1gb",
        "docx whose document.xml inflates to 1 GB of zeros (~1 MB deflated)",
        lambda: docx_mail(docx_deflate_bomb(1024 * MB)),
        QUARANTINE,
        ["decoded_bytes"],
    ),
    _case(
        "docx-500-bomb-members",
        "docx of 500 members of 21 MB zeros each (10 GB)",
        lambda: docx_mail(docx_many_bomb_members(500, 21 * MB)),
        QUARANTINE,
        ["decoded_bytes"],
    ),
    _case(
        "docx-500-blank-members",
        "docx of 500 members of 21 MB of '<w:p/>' (text-free, 10 GB)",
        lambda: docx_mail(docx_many_bomb_members(500, 21 * MB, b"<w:p/>")),
        QUARANTINE,
        ["decoded_bytes"],
    ),
    _case(
        "docx-overlapping-bomb",
        "10 000 entries sharing one 21 MB kernel (overlapping zip)",
        lambda: docx_mail(docx_overlapping(10_000, 21 * MB)),
        QUARANTINE,
        ["decoded_bytes"],
    ),
    _case(
        "docx-bzip2-bomb",
        "docx member bzip2-compressed: 64 MB of zeros in under 1 KB",
        lambda: docx_mail(docx_bzip2_bomb(64 * MB)),
        QUARANTINE,
        ["decoded_bytes"],
    ),
    _case(
        "docx-lying-sizes",
        "docx members with wrong sizes, a wrong CRC and non-deflate data",
        lambda: docx_mail(docx_lying_sizes()),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "docx-xml-entities",
        "docx with billion-laughs and external entities, 20 000 bad char refs",
        lambda: docx_mail(docx_entities()),
        REJECT,
        codes=["KEYWORD_HIT"],
    ),
    _case(
        "zip-65535-members",
        "zip attachment declaring 65 535 members",
        lambda: with_attachment("files.zip", zip_many_members(65_535), "application/zip"),
        QUARANTINE,
        codes=["ATTACHMENT_ARCHIVE_TOO_MANY_ENTRIES"],
    ),
    _case(
        "zip-nested-20-deep",
        "zip in zip 20 levels deep, an .exe at the bottom",
        lambda: with_attachment("archive.zip", nested_zips(20), "application/zip"),
        ACCEPT_OR_QUARANTINE | REJECT,
    ),
    _case(
        "zip-42-shape",
        "42.zip shape: 16 x 16 x 16 MB of zeros in nested zips",
        lambda: with_attachment("42.zip", zip_42(16, 2), "application/zip"),
        ACCEPT_OR_QUARANTINE,
    ),
    _case(
        "zip-bomb-plain",
        "plain zip attachment with a 1 GB member and a 1 GB 'a.zip'",
        lambda: with_attachment("data.zip", plain_zip_bomb(1024 * MB), "application/zip"),
        ACCEPT_OR_QUARANTINE,
    ),
)

CASES_BY_NAME = {case.name: case for case in CASES}
