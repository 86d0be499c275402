"""Immutable values passed between menshen's stages.

In:  nothing; this module only defines types.
Out: Envelope (who sent it), ParsedMessage (what extraction found), Finding (one fact a
     scanner observed), Verdict (what the policy decided) and the enums they use.
Fails: never; constructing a value performs no I/O and no validation beyond typing.
Thread safety: every value is a frozen dataclass or an enum, safe to share between threads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Action(enum.Enum):
    """What happens to a message. Ordered by precedence: the strongest action wins."""

    ACCEPT = "accept"
    QUARANTINE = "quarantine"
    TEMPFAIL = "tempfail"
    REJECT = "reject"

    @property
    def precedence(self) -> int:
        return _ACTION_PRECEDENCE[self]


_ACTION_PRECEDENCE = {
    Action.ACCEPT: 0,
    Action.QUARANTINE: 1,
    Action.TEMPFAIL: 2,
    Action.REJECT: 3,
}


class Where(enum.Enum):
    """The place in a message a piece of text came from."""

    SUBJECT = "subject"
    HEADER = "header"  # display names and other decoded header text
    BODY = "body"  # text/plain parts
    HTML = "html"  # text/html parts, rendered to what a reader sees
    ATTACHMENT_NAME = "attachment_name"
    ATTACHMENT_TEXT = "attachment_text"


@dataclass(frozen=True, slots=True)
class Envelope:
    """The SMTP envelope of one message, as the MTA saw it (or as `menshen check` was told)."""

    client_ip: str = ""
    client_name: str = ""
    helo: str = ""
    sender: str = ""  # MAIL FROM without angle brackets; "" is the null sender
    recipients: tuple[str, ...] = ()
    auth_user: str = ""  # SASL login, "" when unauthenticated
    queue_id: str = ""


@dataclass(frozen=True, slots=True)
class TextSegment:
    """Decoded (not yet normalised) text found in one place of the message."""

    where: Where
    part: str  # MIME part path such as "1.2"; "" for the top-level headers
    text: str


@dataclass(frozen=True, slots=True)
class Attachment:
    """A leaf part that carries a file, with its decoded payload (bounded by the limits)."""

    part: str
    filename: str  # decoded RFC 2231 / RFC 2047 name, "" when the part has none
    content_type: str
    size: int  # decoded bytes
    payload: bytes = b""  # may be shorter than size when the decoded-bytes limit was hit


@dataclass(frozen=True, slots=True)
class LimitHit:
    """Extraction stopped short: which limit, and a short human detail."""

    limit: str  # "depth", "parts", "decoded_bytes", "time", "message_bytes", "parse"
    detail: str


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything the scanners may look at. Produced once per message by the extractor."""

    size: int
    subject: str
    segments: tuple[TextSegment, ...]
    attachments: tuple[Attachment, ...] = ()
    defects: tuple[str, ...] = ()  # MIME defect names (malformed input is a signal)
    limits_hit: tuple[LimitHit, ...] = ()
    # The message exactly as received, for scanners that read it whole (clamd decodes MIME,
    # archives and uuencode itself). Not part of the value's identity.
    raw: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Finding:
    """One fact a scanner observed. Scanners report facts; the policy attaches consequences."""

    scanner: str  # "keywords", "structure", "lists", ...
    code: str  # e.g. KEYWORD_HIT, MIME_LIMIT, SENDER_DENIED
    category: str = ""  # wordlist category for KEYWORD_HIT
    term: str = ""  # the wordlist term as written in its file
    where: str = ""  # a Where value, or "" when not about a place in the message
    part: str = ""
    count: int = 1
    detail: str = ""
    filename: str = ""  # the attachment's file name, when the finding is about one


@dataclass(frozen=True, slots=True)
class SmtpReply:
    code: str  # "550"
    xcode: str  # "5.7.1"
    text: str  # one line, printable, no CR/LF

    def __str__(self) -> str:
        return f"{self.code} {self.xcode} {self.text}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision for one message and everything needed to carry it out and explain it."""

    action: Action
    reply: SmtpReply | None  # set for REJECT and TEMPFAIL
    reason: str  # short (Postfix keeps about 100 bytes of a quarantine reason)
    findings: tuple[Finding, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()  # headers to add to the message
    score: float = 0.0
    monitored_action: Action | None = None  # monitor mode: what enforce mode would have done
    timings: tuple[tuple[str, float], ...] = field(default=())  # stage name, seconds


@dataclass(frozen=True, slots=True)
class ExtractionLimits:
    """Bounds on the work extraction may do for one message. Exceeding one is a LimitHit."""

    max_message_bytes: int = 50 * 1024 * 1024  # bytes parsed; the rest is not looked at
    max_depth: int = 32  # nesting of multiparts and attached messages
    max_parts: int = 1000  # MIME parts walked
    max_decoded_bytes: int = 100 * 1024 * 1024  # total decoded payload bytes kept per message
    max_text_chars: int = 10 * 1024 * 1024  # total characters of text handed to the scanners
    max_archive_member_bytes: int = 20 * 1024 * 1024  # uncompressed bytes read from one zip member
    deadline_seconds: float = 20.0  # wall time for extraction


# Finding codes shared by scanners, the policy and the audit trail.
KEYWORD_HIT = "KEYWORD_HIT"
KEYWORD_HITS_CAPPED = "KEYWORD_HITS_CAPPED"
MIME_LIMIT = "MIME_LIMIT"  # extraction stopped short: depth, parts, size, deadline, parse
MIME_DEFECT = "MIME_DEFECT"  # malformed MIME the parser worked around (informational)
INTERNAL_ERROR = "INTERNAL_ERROR"  # a scanner or the extractor failed: never a clean verdict
AV_INFECTED = "AV_INFECTED"  # clamd found malware; detail is the signature
AV_UNSCANNABLE = "AV_UNSCANNABLE"  # clamd cannot look (limits, encrypted, too large)
AV_ERROR = "AV_ERROR"  # clamd unreachable, timed out or answered nonsense: never clean
AV_SKIPPED = "AV_SKIPPED"  # not scanned by configuration (marked, never silently clean)
QUOTA_EXCEEDED = "QUOTA_EXCEEDED"  # a sending quota would be passed; category: the rule
QUOTA_WARNING = "QUOTA_WARNING"  # a quota reached its warning level; category: the rule
QUOTA_DEGRADED = "QUOTA_DEGRADED"  # the shared quota store is down; counted locally or not
QUOTA_STORE_ERROR = "QUOTA_STORE_ERROR"  # no quota store could answer: never a silent accept
