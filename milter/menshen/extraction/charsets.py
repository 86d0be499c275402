"""Charset resolution for mail text: bytes plus a declared label -> str, never an exception.

In:  `decode_bytes(data, declared)`: raw bytes and the charset label the message declared
     (or None). `decode_rfc2047(value)`: one header value as the stdlib compat32 parser
     hands it over (ASCII, with raw 8-bit bytes carried as surrogateescape code points).
Out: `decode_bytes` returns (text, fallback) where `fallback` is True when the declared
     charset was unknown, did not decode the bytes strictly, or U+FFFD replacement was
     needed. `decode_rfc2047` returns the header value with RFC 2047 encoded-words decoded.
Fails: never. LookupError and UnicodeError are handled here, because the stdlib raises
     LookupError for `charset=bogus` before any `errors="replace"` applies.
Thread safety: pure functions over immutable module constants; safe from any thread.

How labels are resolved (the order mail clients follow, cf. the WHATWG Encoding Standard):
- the GB family (gb2312, gbk, cp936, euc-cn, ...) is decoded as GB18030, its superset:
  senders routinely label GBK or GB18030 bytes as gb2312;
- big5 and its variants are decoded as Big5-HKSCS, then CP950. Big5-HKSCS matches the
  WHATWG "Big5" index (HKSCS plus ETEN extensions, e.g. 0xC6A1 is U+2460); CP950 is kept
  as a second strict try because it has the euro sign (0xA3E1) that HKSCS lacks;
- any other label is looked up in Python's codec registry after normalisation (case,
  quotes, spaces, an `x-` prefix); codecs that are not text encodings (base64, zlib, ...)
  and text codecs that are no mail charsets (punycode, whose decoder is quadratic: 1 MB
  labelled punycode took minutes; idna, which refuses errors="replace"; undefined,
  which always fails; the Python escape codecs) count as unknown;
- unknown labels, or bytes that do not decode strictly: UTF-8 strict, then GB18030
  strict, then the declared charset (or UTF-8) with errors="replace".
"""

from __future__ import annotations

import binascii
import codecs
import re

__all__ = ["decode_bytes", "decode_replacing", "decode_rfc2047", "resolve_charset"]

# Keys are labels with everything but [a-z0-9] removed, after an `x-` prefix is dropped.
_GB_LABELS = frozenset(
    {
        "gb2312",
        "gbk",
        "cp936",
        "ms936",
        "windows936",
        "936",
        "euccn",
        "gb231280",
        "gb23121980",
        "csgb2312",
        "csgb231280",
        "csgbk",
        "csiso58gb231280",
        "isoir58",
        "chinese",
        "gb18030",
        "gb180302000",
        "gb180302005",
        "cn",
    }
)
_BIG5_LABELS = frozenset(
    {
        "big5",
        "big5hkscs",
        "big5tw",
        "csbig5",
        "cnbig5",
        "cp950",
        "ms950",
        "windows950",
        "950",
        "xxbig5",
        "big5et",
        "big5eten",
    }
)
_GB_CODECS: tuple[str, ...] = ("gb18030",)
_BIG5_CODECS: tuple[str, ...] = ("big5hkscs", "cp950")

_LABEL_JUNK = re.compile(r"[^a-z0-9]")
_LABEL_CLEAN = re.compile(r"[\s\"']")

_MAX_LABEL = 64  # a longer charset label is not a charset
# Python text codecs that no mail client offers as a charset, by codecs.lookup() name.
_NOT_CHARSETS = frozenset(
    {"punycode", "idna", "undefined", "unicode-escape", "raw-unicode-escape", "unicode-internal"}
)


def _normalise_label(declared: str) -> tuple[str, str]:
    """(label usable with codecs.lookup, alias key) for one declared charset label."""
    label = _LABEL_CLEAN.sub("", declared).lower()
    # RFC 2231 allows charset*language; RFC 2047 allows charset*language too.
    label = label.split("*", 1)[0]
    if label.startswith("x-"):
        label = label[2:]
    return label, _LABEL_JUNK.sub("", label)


def resolve_charset(declared: str | None) -> tuple[str, ...]:
    """Codec names to try strictly, in order, for a declared label; () when unknown."""
    if not declared or len(declared) > _MAX_LABEL:
        return ()
    label, key = _normalise_label(declared)
    if not key:
        return ()
    if key in _GB_LABELS:
        return _GB_CODECS
    if key in _BIG5_LABELS:
        return _BIG5_CODECS
    for candidate in (label, key):
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError, TypeError):
            continue
        # bytes-to-bytes codecs (base64, zlib, rot13, ...) are not charsets.
        if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
            return ()
        return (info.name,)
    return ()


def _strict(data: bytes, codec: str) -> str | None:
    try:
        return data.decode(codec, "strict")
    except Exception:  # codec-specific: UnicodeError, LookupError, ValueError, ...
        return None


def decode_bytes(data: bytes, declared: str | None) -> tuple[str, bool]:
    """Decode `data` as mail clients would; see the module docstring for the order."""
    if not data:
        return "", False
    codecs_to_try = resolve_charset(declared)
    for codec in codecs_to_try:
        text = _strict(data, codec)
        if text is not None:
            return text, False
    if not codecs_to_try and not declared:
        # No label at all: UTF-8 is the modern default and not a fallback.
        text = _strict(data, "utf-8")
        if text is not None:
            return text, False
    for codec in ("utf-8", "gb18030"):
        if codec in codecs_to_try:
            continue
        text = _strict(data, codec)
        if text is not None:
            return text, True
    return decode_replacing(data, codecs_to_try[0] if codecs_to_try else "utf-8"), True


def decode_replacing(data: bytes, codec: str) -> str:
    """`data.decode(codec, "replace")`, or UTF-8 with replacement if that codec fails."""
    try:
        return data.decode(codec, "replace")
    except Exception:  # codec-specific: UnicodeError, LookupError, IndexError, ...
        return data.decode("utf-8", "replace")


# RFC 2047 encoded-word, leniently: any charset token (with optional *language), B or Q,
# encoded text without '?'. Bounded quantifiers keep the scan linear.
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_CRLF = re.compile(r"[\r\n]+")
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/=]+")
_B64_PAD = re.compile(rb"=+")


def lenient_b64decode(data: bytes) -> tuple[bytes, bool]:
    """Decode base64 the way mail clients do: ignore noise, repair padding, never raise.

    Returns (decoded, clean); clean is False when noise, bad padding or data after a
    padding run was seen. Data after a padding run is decoded as a new run rather than
    dropped (binascii stops there), so content appended after a premature '=' is not
    hidden from the scanners.
    """
    stripped = data.translate(None, b" \t\r\n")
    try:
        return binascii.a2b_base64(stripped, strict_mode=True), True
    except (binascii.Error, ValueError):
        pass
    out: list[bytes] = []
    for run in _B64_PAD.split(_B64_JUNK.sub(b"", stripped)):
        rest = len(run) % 4
        # A single leftover character carries no whole byte; short runs get their padding.
        quantum = run[:-1] if rest == 1 else run + b"=" * ((4 - rest) % 4)
        if not quantum:
            continue
        try:
            out.append(binascii.a2b_base64(quantum))
        except (binascii.Error, ValueError):
            continue
    return b"".join(out), False


def _decode_word(encoding: str, text: str) -> bytes:
    raw = text.encode("utf-8", "replace")
    if encoding in "bB":
        return lenient_b64decode(raw)[0]
    try:
        return binascii.a2b_qp(raw, header=True)
    except (binascii.Error, ValueError):
        return raw


def _raw_header_text(value: str) -> str:
    """Header text whose 8-bit bytes (surrogateescape'd) are decoded via the resolver."""
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        raw = value.encode("utf-8", "replace")
    return decode_bytes(raw, None)[0]


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeError:
        return True
    return False


def decode_rfc2047(value: str) -> str:
    """Decode a header value: unfold, decode raw 8-bit text and RFC 2047 encoded-words.

    Adjacent encoded-words separated only by whitespace are joined without it (RFC 2047
    section 6.2); runs in the same charset are decoded together so that a multibyte
    character split across two words survives.
    """
    if not value:
        return ""
    value = _CRLF.sub("", _FOLD.sub("", value))
    if _has_surrogates(value):
        value = _raw_header_text(value)
    if "=?" not in value:
        return value
    out: list[str] = []
    pending: bytearray = bytearray()
    pending_charset: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset)[0])
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        charset, encoding, text = match.groups()
        if gap and (pending_charset is None or gap.strip(" \t")):
            flush()
            out.append(gap)
        if pending_charset is not None and charset.lower() != pending_charset:
            flush()
        pending_charset = charset.lower()
        pending += _decode_word(encoding, text)
        pos = match.end()
    flush()
    out.append(value[pos:])
    return "".join(out)
