"""Turn one raw RFC 5322 message into a ParsedMessage: decoded text, attachments, defects.

In:  `Extractor(limits, clock).extract(raw)`: the message bytes exactly as the MTA passed
     them (CRLF or LF line endings, any garbage).
Out: a ParsedMessage with
     - `subject`: the first Subject header, RFC 2047 and raw 8-bit decoded;
     - `segments`: TextSegments, in message order:
         SUBJECT          every Subject header of the message and of attached messages;
         HEADER           display names of From/Sender/Reply-To/To/Cc, Content-Description;
         BODY             text/plain (and other inline text/*) parts;
         HTML             text/html parts rendered to visible text, plus a second segment
                          with the hidden text (alt/title, invisible elements) when present;
         ATTACHMENT_NAME  decoded attachment file names (RFC 2231 and RFC 2047);
         ATTACHMENT_TEXT  text inside attachments: text/*, .txt/.csv/.log/.md, .htm(l)
                          rendered, Office Open XML and OpenDocument files;
     - `attachments`: one Attachment per leaf part that carries a file (a file name, a
       Content-Disposition of attachment, or a non-text type), payload decoded;
     - `defects`: stdlib MIME defect class names plus our own (CharsetFallback,
       UnknownTransferEncoding, InvalidBase64, DuplicateContentType,
       DuplicateContentTransferEncoding, EncryptedOfficeDocument, CorruptOfficeDocument),
       de-duplicated, in order of first sight, at most 64;
     - `limits_hit`: one LimitHit per limit that cut the work short (message_bytes, parse,
       depth, parts, decoded_bytes, text_chars, time). Content found before a limit hit is
       still returned.
     Part paths are IMAP-style: "" is the top-level header block, "1", "1.2", ... are body
     parts (1-based). An attached message (message/rfc822, or an .eml attachment) at path
     "2" has its headers at "2" and its body at "2.1" (or "2.1", "2.2", ... if multipart).
Fails: never. The stdlib parser's exceptions become LimitHit("parse"); the headers and
     the undecoded body are still returned as text. A RecursionError (nesting the stdlib
     parser cannot follow, near a thousand levels) is also LimitHit("depth"); the
     message is then parsed again cut to half its length, repeatedly, until it parses,
     so the parts before the deep nesting are decoded and scanned, and the whole
     undecoded body is scanned as text as well.
Bounds: input is cut at max_message_bytes before parsing; the part tree is walked with an
     explicit stack (no recursion), limited in depth and part count; decoded bytes and text
     characters are budgeted (bytes decompressed from Office documents count as decoded
     bytes); the clock is checked between parts, inside HTML rendering and between the
     members of an Office document.
     Well-formed mail takes a fast path (`_parse_fast`: header blocks parsed by the stdlib,
     bodies cut at their delimiters with bytes.find) that builds the tree the stdlib
     parser would; anything unusual goes to the stdlib parser, whose parse cannot be
     interrupted and whose cost is bounded by the input cap.
Thread safety: an Extractor holds only immutable configuration; `extract` keeps its state
     in a per-call object, so one Extractor may serve all milter threads.
"""

from __future__ import annotations

import binascii
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from email.message import Message
from email.parser import BytesParser
from email.policy import Compat32
from email.utils import getaddresses
from typing import cast

from menshen.extraction.charsets import (
    decode_bytes,
    decode_replacing,
    decode_rfc2047,
    lenient_b64decode,
    resolve_charset,
)
from menshen.extraction.html_text import html_to_text
from menshen.extraction.office import is_zip, read_office
from menshen.model import (
    Attachment,
    ExtractionLimits,
    LimitHit,
    ParsedMessage,
    TextSegment,
    Where,
)

__all__ = ["Extractor"]

_TEXT_EXTENSIONS = frozenset({".txt", ".text", ".csv", ".tsv", ".log", ".md", ".asc"})
_HTML_EXTENSIONS = frozenset({".htm", ".html", ".xhtml"})
_OFFICE_EXTENSIONS = frozenset(
    {
        ".docx",
        ".docm",
        ".dotx",
        ".dotm",
        ".xlsx",
        ".xlsm",
        ".xltx",
        ".pptx",
        ".pptm",
        ".ppsx",
        ".potx",
        ".odt",
        ".ott",
        ".ods",
        ".ots",
        ".odp",
        ".otp",
    }
)
_MESSAGE_EXTENSIONS = frozenset({".eml", ".msg822"})
_OFFICE_TYPES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.")
_ADDRESS_HEADERS = frozenset({"from", "sender", "reply-to", "to", "cc"})
_DUPLICATE_DEFECTS = {
    "content-type": "DuplicateContentType",
    "content-transfer-encoding": "DuplicateContentTransferEncoding",
}
_UU_ENCODINGS = frozenset({"x-uuencode", "uuencode", "uue", "x-uue"})
_IDENTITY_ENCODINGS = frozenset({"", "7bit", "8bit", "binary", "7-bit", "8-bit"})

_MAX_DEFECTS = 64
# getaddresses() is not linear on crafted input (cpython #136063 class); longer address
# headers are matched as raw decoded text instead of being parsed.
_MAX_ADDRESS_HEADER = 16 * 1024
_MAX_DETAIL = 120
# One address, "Display Name <local@domain>" or a bare "local@domain", with nothing that
# getaddresses() would read specially (quotes, comments, groups, routes, lists, 8-bit).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]"
_ADDR_SPEC = rf"{_ATOM}*(?:@[A-Za-z0-9.\-]*)?"
_WSP = r"[ \t\r\n]"
# Linear: no two adjacent parts can take the same character.
_SIMPLE_ADDRESS = re.compile(
    rf"((?:{_ATOM}|{_WSP})*)<{_ADDR_SPEC}>{_WSP}*|{_WSP}*{_ATOM}{_ADDR_SPEC}{_WSP}*"
)
# Halvings of a message the stdlib parser cannot nest through (50 MB down to 12 KB).
_MAX_PARSE_RETRIES = 12


class _RawHeaders(Compat32):
    """compat32, except that header values are returned as stored.

    compat32 turns a header with raw 8-bit bytes into a Header object whose str() is
    U+FFFD soup, so get_param() would lose an 8-bit file name before we could decode it.
    Returning the stored value keeps the bytes (as surrogateescape code points) for the
    charset resolver.
    """

    def header_fetch_parse(self, name: str, value: str) -> str:
        return value


_POLICY = _RawHeaders()
# The blank line ending a header block; only its end is used. A leading "\r?" would match
# the same ends, but the regex engine then tries every position instead of each LF.
_HEADER_END = re.compile(rb"\n\r?\n")
# A CR that does not start a CRLF: the stdlib ends a line there.
_LONE_CR = re.compile(rb"\r(?!\n)")
# Deeper multipart nesting is left to the stdlib parser (and the walk's depth limit).
_MAX_FAST_DEPTH = 16
# A header name as the stdlib's headerRE accepts it: printable ASCII without ':' or space.
_HEADER_NAME = re.compile(r"[\041-\071\073-\176]*")


def _join(path: str, index: int) -> str:
    return f"{path}.{index}" if path else str(index)


def _extension(filename: str) -> str:
    dot = filename.rfind(".")
    return filename[dot:].lower().rstrip(". \t") if dot >= 0 else ""


def _parse_fast(data: bytes) -> Message | None:
    """Parse a well-formed message without the stdlib feed parser reading its bodies.

    The feed parser walks every body line, matching each against a boundary regex it
    compiles anew for every boundary; for ordinary mail that was most of the extraction
    work. Here header blocks are read by the stdlib's own header rules (`_parse_head`) and
    bodies are cut at their delimiters with bytes.find and stored as compat32 keeps them,
    so the tree is the one the full parser builds for the same input. Anything the full parser
    would treat specially gives None (use the full parser): a lone CR (a line break to the
    stdlib), a header block with a defect or without its blank line, duplicate
    Content-Type headers, message/* and multipart/digest parts, a multipart without a
    boundary, a transfer encoding, a start or close delimiter or an empty part the
    stdlib would report, and nesting deeper than _MAX_FAST_DEPTH.
    """
    if _LONE_CR.search(data) is not None:
        return None
    try:
        return _fast_entity(data, 0)
    except Exception:
        return None


def _fast_entity(data: bytes, depth: int, *, in_multipart: bool = False) -> Message | None:
    """One entity (a message or a body part): its header block, then its body."""
    if data.startswith((b"\n", b"\r\n")):
        # No headers: the blank line is the separator (a body part may omit them).
        head, body = b"", data[1 if data[0] == 0x0A else 2 :]
    else:
        end = _HEADER_END.search(data)
        if end is None:
            return None
        head, body = data[: end.end()], data[end.end() :]
    message = _parse_head(head)
    if message is None or len(message.get_all("content-type", ())) > 1:
        return None
    maintype = message.get_content_maintype()
    if maintype == "message":
        return None
    if maintype == "multipart":
        children = _fast_children(message, body, depth)
        if children is None:
            return None
        # typeshed types a multipart payload as list[Message | str]; these are all Messages.
        message.set_payload(cast("list[Message | str]", children))
        return message
    if in_multipart:
        # The line end before a delimiter belongs to the delimiter (RFC 2046 5.1.1).
        if body.endswith(b"\r\n"):
            body = body[:-2]
        elif body.endswith(b"\n"):
            body = body[:-1]
    message.set_payload(body.decode("ascii", "surrogateescape"))
    return message


def _parse_head(head: bytes) -> Message | None:
    """A header block, up to and including its blank line (or b""), read as the stdlib would.

    This is the feed parser's header loop (headerRE, _parse_headers) and compat32's
    header_source_parse, for the lines a well-formed block has. None for anything on
    which the stdlib records a defect or does something special: a line that is not a
    header (it would start the body), a leading continuation line, an empty header name,
    a "From " envelope line.
    """
    lines = head.decode("ascii", "surrogateescape").split("\n")
    # A block ends "\n<blank line>\n": the last two pieces are the blank line and "".
    message = Message(policy=_POLICY)
    name = ""
    # compat32's header_source_parse, inline: the text after the colon without leading
    # blanks, the continuation lines joined by "\n" (each keeps its CR), no trailing CR/LF.
    value: list[str] = []
    for line in lines[:-2]:
        if line[:1] in (" ", "\t"):
            if not name:
                return None
            value.append(line)
            continue
        if name:
            message.set_raw(name, "\n".join(value).rstrip("\r\n"))
        colon = line.find(":")
        if colon <= 0 or line.startswith("From ") or not _HEADER_NAME.fullmatch(line, 0, colon):
            return None
        name = line[:colon]
        value = [line[colon + 1 :].lstrip(" \t")]
    if name:
        message.set_raw(name, "\n".join(value).rstrip("\r\n"))
    return message


def _fast_children(container: Message, body: bytes, depth: int) -> list[Message] | None:
    """The parts of a multipart body, split at its delimiter lines."""
    if depth >= _MAX_FAST_DEPTH or container.get_content_subtype() == "digest":
        return None
    cte = str(container.get("content-transfer-encoding", "8bit")).lower()
    if cte not in ("7bit", "8bit", "binary"):
        return None
    boundary = container.get_boundary()
    if not boundary:
        return None
    separator = b"--" + boundary.encode("ascii", "surrogateescape")
    children: list[Message] = []
    start = -1  # where the current part begins, once the first delimiter is seen
    for line_start, line_end, closing in _delimiters(body, separator):
        if start >= 0:
            if line_start == start:
                return None  # consecutive delimiters: the stdlib merges them
            child = _fast_entity(body[start:line_start], depth + 1, in_multipart=True)
            if child is None:
                return None
            children.append(child)
        elif closing:
            return None  # a close delimiter before any part
        if closing:
            return children
        start = line_end
    return None  # no start or no close delimiter


def _delimiters(body: bytes, separator: bytes) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is the close delimiter) of each delimiter line of a multipart body.

    A delimiter line is the separator at the start of a line, an optional "--", optional
    spaces or tabs, then the line end, or the end of the body for the close delimiter:
    what the stdlib's boundary regex accepts.
    """
    marker = b"\n" + separator
    if body.startswith(separator):
        pos = 0
    else:
        pos = body.find(marker) + 1  # the line after the "\n"
        if pos == 0:
            return
    while True:
        cursor = pos + len(separator)
        closing = body.startswith(b"--", cursor)
        if closing:
            cursor += 2
        while cursor < len(body) and body[cursor] in b" \t":
            cursor += 1
        if body.startswith(b"\r\n", cursor):
            yield pos, cursor + 2, closing
        elif body.startswith(b"\n", cursor):
            yield pos, cursor + 1, closing
        elif cursor == len(body) and closing:
            yield pos, cursor, closing
        found = body.find(marker, pos + len(separator))
        if found < 0:
            return
        pos = found + 1


def _payload_bytes(node: Message) -> bytes:
    """The undecoded body of a leaf part, as the bytes that arrived."""
    # get_payload() re-decodes 8-bit text with the declared charset and errors="replace"
    # (losing the bytes the resolver needs), and get_payload(decode=True) applies its own
    # transfer decoding; the stored payload is the only lossless view compat32 offers.
    payload = getattr(node, "_payload", None)
    if payload is None:
        payload = node.get_payload()
    if isinstance(payload, bytes):
        return payload
    if not isinstance(payload, str):
        return b""
    # BytesParser carries 8-bit bytes as surrogateescape'd code points.
    try:
        return payload.encode("ascii", "surrogateescape")
    except UnicodeError:
        return payload.encode("utf-8", "surrogateescape" if payload.isascii() else "replace")


def _uudecode(data: bytes) -> bytes:
    out: list[bytes] = []
    lines = data.splitlines()
    begin = next((i for i, line in enumerate(lines) if line.startswith(b"begin")), -1)
    for line in lines[begin + 1 :]:
        if line.rstrip() == b"end":
            break
        if not line.strip():
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except (binascii.Error, ValueError):
            # Some encoders pad lines with garbage; decode the length the line declares.
            nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
            try:
                out.append(binascii.a2b_uu(line[:nbytes]))
            except (binascii.Error, ValueError):
                continue
    return b"".join(out)


def _printable(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _header_str(value: object) -> str:
    return value if isinstance(value, str) else str(value)


class Extractor:
    """Raw message bytes -> ParsedMessage under ExtractionLimits. See the module docstring."""

    def __init__(
        self,
        limits: ExtractionLimits,
        clock: Callable[[], float] = time.monotonic,
        *,
        fast_path: bool = True,
    ) -> None:
        self._limits = limits
        self._clock = clock
        # False: every message through the stdlib parser (to check the fast path against).
        self._fast_path = fast_path

    @property
    def limits(self) -> ExtractionLimits:
        return self._limits

    def extract(self, raw: bytes) -> ParsedMessage:
        run = _Run(self._limits, self._clock, self._fast_path)
        try:
            run.extract(raw)
        except Exception as exc:
            # A bug here must not lose the message: report it as a parse limit so the policy
            # quarantines instead of accepting something unscanned.
            run.hit("parse", f"internal error: {type(exc).__name__}")
        size = len(raw) if isinstance(raw, (bytes, bytearray)) else 0
        return replace(run.result(size), raw=bytes(raw) if size else b"")


class _Run:
    """The mutable state of one extract() call."""

    def __init__(
        self, limits: ExtractionLimits, clock: Callable[[], float], fast_path: bool
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.fast_path = fast_path
        self.deadline = clock() + limits.deadline_seconds
        self.subject = ""
        self.segments: list[TextSegment] = []
        self.attachments: list[Attachment] = []
        self.defects: dict[str, None] = {}
        self.hits: dict[str, LimitHit] = {}
        self.text_left = limits.max_text_chars
        self.decoded_left = limits.max_decoded_bytes
        self.parts = 0
        # Raw text of messages the parser could not structure, scanned after the walk so
        # that it does not take the text budget from the decoded parts.
        self.deferred: list[tuple[Where, str, str]] = []

    # -- bookkeeping -------------------------------------------------------------------

    def hit(self, limit: str, detail: str) -> None:
        if limit not in self.hits:
            # Details may quote the message (zip member names, parser messages): escape
            # what a terminal or a log line would interpret.
            self.hits[limit] = LimitHit(limit, _printable(detail)[:_MAX_DETAIL])

    def defect(self, name: str) -> None:
        if len(self.defects) < _MAX_DEFECTS:
            self.defects.setdefault(name, None)

    def out_of_time(self) -> bool:
        return self.clock() > self.deadline

    def add(self, where: Where, path: str, text: str) -> None:
        if not text or text.isspace():
            return
        if self.text_left <= 0:
            self.hit("text_chars", f"more than {self.limits.max_text_chars} characters of text")
            return
        if len(text) > self.text_left:
            text = text[: self.text_left]
            self.hit("text_chars", f"more than {self.limits.max_text_chars} characters of text")
        self.text_left -= len(text)
        self.segments.append(TextSegment(where, path, text))

    def decode_text(self, data: bytes, charset: str | None) -> str:
        text, fallback = decode_bytes(data, charset)
        if fallback:
            self.defect("CharsetFallback")
            # A fallback reading is a guess. A few invalid bytes in a UTF-8 body can make
            # the whole body valid GB18030 (mojibake), while the reader's client shows the
            # declared reading with a few U+FFFD; scan both so neither reading hides text.
            codecs_tried = resolve_charset(charset) or ("utf-8",)
            literal = decode_replacing(data, codecs_tried[0])
            # Mostly U+FFFD means the label was simply wrong; that reading shows nothing.
            if literal != text and literal.count("\ufffd") * 4 <= len(literal):
                text = f"{text}\n{literal}"
        # Scanners see one line-ending convention whatever the transfer encoding kept.
        return text.replace("\r\n", "\n") if "\r" in text else text

    def result(self, size: int) -> ParsedMessage:
        return ParsedMessage(
            size=size,
            subject=self.subject,
            segments=tuple(self.segments),
            attachments=tuple(self.attachments),
            defects=tuple(self.defects),
            limits_hit=tuple(self.hits.values()),
        )

    # -- parsing -----------------------------------------------------------------------

    def parse(self, data: bytes, path: str) -> Message | None:
        fast = _parse_fast(data) if self.fast_path else None
        if fast is not None:
            return fast
        where = f"part {path}: " if path else ""
        try:
            return BytesParser(policy=_POLICY).parsebytes(data)
        except RecursionError:
            self.hit("depth", f"{where}nesting too deep for the MIME parser")
            self.hit("parse", f"{where}RecursionError: parsed a shorter prefix")
            prefix = self.parse_prefix(data)
            if prefix is not None:
                # The parts before the deep nesting are walked as usual; whatever the
                # structure hid, the undecoded body is scanned too, after the walk.
                self.raw_body(data, path, headers=False)
                return prefix
        except Exception as exc:
            self.hit("parse", f"{where}{type(exc).__name__}: {str(exc)[:60]}")
        # Fall back to the header block and the raw body, so the subject, the names and
        # any plain text in the body are still scanned.
        self.raw_body(data, path, headers=True)
        return None

    @staticmethod
    def parse_prefix(data: bytes) -> Message | None:
        """Parse ever shorter halves of a message the stdlib parser cannot nest through.

        The parser recurses once per nesting level and gives up near a thousand levels,
        far beyond our depth cap, so a shorter prefix keeps every part the walk would
        reach anyway.
        """
        prefix = data
        for _ in range(_MAX_PARSE_RETRIES):
            cut = prefix.rfind(b"\n", 0, len(prefix) // 2)
            if cut <= 0:
                return None
            prefix = prefix[: cut + 1]
            try:
                return BytesParser(policy=_POLICY).parsebytes(prefix)
            except RecursionError:
                continue
            except Exception:
                return None
        return None

    def raw_body(self, data: bytes, path: str, *, headers: bool) -> None:
        """The undecoded body as text (and the header block's text when `headers`)."""
        try:
            head = BytesParser(policy=_POLICY).parsebytes(data, headersonly=True)
        except Exception:
            self.deferred.append((Where.BODY, _join(path, 1), decode_bytes(data, None)[0]))
            return
        if headers:
            self.headers(head, path, message=True)
        text = self.decode_text(_payload_bytes(head), None)
        self.deferred.append((Where.BODY, _join(path, 1), text))

    def extract(self, raw: bytes) -> None:
        data = bytes(raw)
        cap = self.limits.max_message_bytes
        if len(data) > cap:
            self.hit("message_bytes", f"message of {len(data)} bytes cut at {cap}")
            data = data[:cap]
        data = self.cap_delimiters(data)
        message = self.parse(data, "")
        if message is not None:
            self.walk(message, "", 0)
        for where, path, text in self.deferred:
            self.add(where, path, text)

    def cap_delimiters(self, data: bytes) -> bytes:
        """Cut the input before the stdlib builds a Message object for every tiny part.

        Each MIME part starts after a line beginning with "--". Past twice the part limit
        (text has such lines too) the walk would stop anyway, so the parser is not handed
        the rest: 200,000 four-byte parts then cost what 2,000 do.
        """
        allowed = self.limits.max_parts * 2 + 16
        if data.count(b"\n--") <= allowed:
            return data
        pos = -1
        for _ in range(allowed):
            pos = data.find(b"\n--", pos + 1)
        self.hit("parts", f"more than {allowed} boundary lines; the rest was not parsed")
        return data[:pos]

    def walk(self, root: Message, root_path: str, root_depth: int) -> None:
        # (node, path, depth, is_message): is_message marks a header block of a whole
        # message (the top level or an attached one) rather than a body part.
        stack: list[tuple[Message, str, int, bool]] = [(root, root_path, root_depth, True)]
        limits = self.limits
        while stack:
            node, path, depth, is_message = stack.pop()
            if self.out_of_time():
                self.hit("time", f"deadline of {limits.deadline_seconds}s passed")
                return
            self.parts += 1
            if self.parts > limits.max_parts:
                self.hit("parts", f"more than {limits.max_parts} MIME parts")
                return
            for defect in node.defects:
                self.defect(type(defect).__name__)
            self.headers(node, path, message=is_message)
            if is_message and not node.is_multipart():
                path = _join(path, 1)
            if not node.is_multipart():
                self.leaf(node, path, depth, stack)
                continue
            children = node.get_payload()
            if not isinstance(children, list):
                continue
            if depth + 1 > limits.max_depth:
                self.hit("depth", f"MIME nesting deeper than {limits.max_depth} at part {path}")
                continue
            if node.get_content_maintype() == "message" and len(children) == 1:
                # message/rfc822: the encapsulated message keeps this part's number.
                self.file_name(node, path)
                if isinstance(children[0], Message):
                    stack.append((children[0], path, depth + 1, True))
                continue
            for index in range(len(children), 0, -1):
                child = children[index - 1]
                if isinstance(child, Message):
                    stack.append((child, _join(path, index), depth + 1, False))

    # -- headers -----------------------------------------------------------------------

    def headers(self, node: Message, path: str, *, message: bool) -> None:
        """Text of one header block, in header order; `message` adds Subject and names."""
        seen: dict[str, str] = {}
        for name, raw_value in node.raw_items():
            key = name.lower()
            value = _header_str(raw_value)
            if key in _DUPLICATE_DEFECTS:
                normal = value.strip().lower()
                if seen.setdefault(key, normal) != normal:
                    self.defect(_DUPLICATE_DEFECTS[key])
            if key == "content-description":
                self.add(Where.HEADER, path, decode_rfc2047(value))
            elif not message:
                continue
            elif key == "subject":
                subject = decode_rfc2047(value)
                if path == "" and not self.subject:
                    self.subject = subject
                self.add(Where.SUBJECT, path, subject)
            elif key in _ADDRESS_HEADERS:
                self.add(Where.HEADER, path, self.display_names(value))

    @staticmethod
    def display_names(value: str) -> str:
        if len(value) > _MAX_ADDRESS_HEADER:
            return decode_rfc2047(value)
        simple = _SIMPLE_ADDRESS.fullmatch(value)
        if simple is not None:
            # What getaddresses() returns for this shape: the words joined by single spaces.
            return decode_rfc2047(" ".join((simple.group(1) or "").split()))
        try:
            pairs = getaddresses([value])
        except Exception:
            return decode_rfc2047(value)
        return "\n".join(decode_rfc2047(name) for name, _ in pairs if name)

    def file_name(self, node: Message, path: str) -> str:
        """Decoded file name of a part (RFC 2231, RFC 2047, raw 8-bit), also as a segment."""
        name = ""
        for param, header in (("filename", "content-disposition"), ("name", "content-type")):
            try:
                value = node.get_param(param, None, header)
            except Exception:
                continue
            if isinstance(value, tuple):
                charset, _language, text = value
                try:
                    raw = str(text).encode("latin-1", "surrogateescape")
                except UnicodeError:
                    raw = str(text).encode("utf-8", "surrogateescape")
                name, fallback = decode_bytes(raw, str(charset) if charset else None)
                if fallback:
                    self.defect("CharsetFallback")
                # Some clients put RFC 2047 words inside an RFC 2231 value.
                name = decode_rfc2047(name)
            elif isinstance(value, str):
                name = decode_rfc2047(value.strip('"'))
            name = name.strip()
            if name:
                break
        self.add(Where.ATTACHMENT_NAME, path, name)
        return name

    # -- leaves ------------------------------------------------------------------------

    def transfer_decode(self, node: Message) -> bytes:
        raw = _payload_bytes(node)
        cte = _header_str(node.get("content-transfer-encoding", "")).strip().strip("\"'").lower()
        if cte == "base64":
            decoded, clean = lenient_b64decode(raw)
            if not clean:
                self.defect("InvalidBase64")
            return decoded
        if cte == "quoted-printable":
            try:
                return binascii.a2b_qp(raw)
            except (binascii.Error, ValueError):
                return raw
        if cte in _UU_ENCODINGS:
            return _uudecode(raw)
        if cte not in _IDENTITY_ENCODINGS:
            # Unknown encodings are scanned as they are, and the oddity is reported.
            self.defect("UnknownTransferEncoding")
        return raw

    def charset(self, node: Message) -> str | None:
        try:
            return node.get_content_charset()
        except Exception:
            return None

    def leaf(
        self,
        node: Message,
        path: str,
        depth: int,
        stack: list[tuple[Message, str, int, bool]],
    ) -> None:
        ctype = node.get_content_type()
        maintype = ctype.partition("/")[0]
        decoded = self.transfer_decode(node)
        size = len(decoded)
        if size > self.decoded_left:
            self.hit("decoded_bytes", f"more than {self.limits.max_decoded_bytes} decoded bytes")
            decoded = decoded[: max(self.decoded_left, 0)]
        self.decoded_left -= len(decoded)

        filename = self.file_name(node, path)
        disposition = _header_str(node.get("content-disposition", "")).split(";", 1)[0]
        is_attachment = (
            bool(filename)
            or disposition.strip().lower() == "attachment"
            or maintype not in ("text", "multipart")
        )
        if not is_attachment:
            if ctype == "text/html":
                self.html(Where.HTML, path, self.decode_text(decoded, self.charset(node)))
            else:
                # text/plain, other inline text/*, and a multipart whose boundary never
                # appeared (the stdlib keeps its body as one string).
                self.add(Where.BODY, path, self.decode_text(decoded, self.charset(node)))
            return

        self.attachments.append(Attachment(path, filename, ctype, size, decoded))
        ext = _extension(filename)
        if ext in _MESSAGE_EXTENSIONS or maintype == "message":
            if depth + 1 > self.limits.max_depth:
                self.hit("depth", f"MIME nesting deeper than {self.limits.max_depth} at {path}")
                return
            nested = self.parse(decoded, path)
            if nested is not None:
                stack.append((nested, path, depth + 1, True))
        elif ext in _HTML_EXTENSIONS or ctype == "text/html":
            text = self.decode_text(decoded, self.charset(node))
            self.html(Where.ATTACHMENT_TEXT, path, text)
        elif ext in _OFFICE_EXTENSIONS or ctype.startswith(_OFFICE_TYPES) or is_zip(decoded):
            self.office(decoded, filename, path)
        elif ext in _TEXT_EXTENSIONS or maintype == "text":
            self.add(Where.ATTACHMENT_TEXT, path, self.decode_text(decoded, self.charset(node)))

    def html(self, where: Where, path: str, markup: str) -> None:
        if len(markup) > self.text_left * 4 + 4096:
            # Rendering is the slowest step; markup far beyond the text budget cannot add
            # text the budget would keep.
            self.hit("text_chars", f"HTML part {path} larger than the text budget")
            markup = markup[: self.text_left * 4 + 4096]
        visible, hidden = html_to_text(markup, should_stop=self.out_of_time)
        if self.out_of_time():
            self.hit("time", f"deadline of {self.limits.deadline_seconds}s passed in HTML")
        self.add(where, path, visible)
        self.add(where, path, hidden)

    def office(self, data: bytes, filename: str, path: str) -> None:
        # Decompressed bytes count against the message's decoded-bytes budget and the
        # text against its text budget, so a document of many bomb members stops there.
        result = read_office(
            data,
            filename,
            self.limits,
            byte_budget=self.decoded_left,
            char_budget=self.text_left,
            should_stop=self.out_of_time,
        )
        self.decoded_left -= result.bytes_read
        for problem in result.problems:
            if problem.startswith("encrypted"):
                self.defect("EncryptedOfficeDocument")
            elif problem.startswith("member too large"):
                self.hit("decoded_bytes", f"part {path}: {problem}")
            elif problem.startswith("over budget"):
                limit = "text_chars" if problem.endswith("of text") else "decoded_bytes"
                self.hit(limit, f"part {path}: {problem}")
            elif problem.startswith("deadline"):
                self.hit("time", f"deadline of {self.limits.deadline_seconds}s passed in {path}")
            elif problem.startswith("too many members"):
                self.hit("parts", f"part {path}: {problem}")
            elif problem.startswith(("corrupt", "not a zip")):
                self.defect("CorruptOfficeDocument")
        self.add(Where.ATTACHMENT_TEXT, path, result.text)
