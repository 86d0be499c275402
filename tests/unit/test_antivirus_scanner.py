"""The antivirus scanner turns clamd's answer into at most one finding, never into "clean"
by accident. clamd itself is exercised for real in tests/clamd; here a stand-in client
returns each outcome."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from menshen.clamd import ScanOutcome, ScanResult
from menshen.model import (
    AV_ERROR,
    AV_INFECTED,
    AV_SKIPPED,
    AV_UNSCANNABLE,
    Attachment,
    Envelope,
    ParsedMessage,
)
from menshen.scanners.antivirus import AntivirusOptions, AntivirusScanner

MESSAGE = ParsedMessage(size=100, subject="", segments=(), raw=b"x" * 100)


@dataclass
class StandInClient:
    result: ScanResult | Exception
    seen: list[bytes] = field(default_factory=list)

    def scan(self, data: bytes) -> ScanResult:
        self.seen.append(bytes(data))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize(
    ("name", "result", "code", "detail"),
    [
        ("clean gives no finding", ScanResult(ScanOutcome.CLEAN), None, None),
        (
            "infected names the signature",
            ScanResult(ScanOutcome.INFECTED, signature="Menshen.Test.EICAR.UNOFFICIAL"),
            AV_INFECTED,
            "Menshen.Test.EICAR.UNOFFICIAL",
        ),
        (
            "unscannable says why",
            ScanResult(ScanOutcome.UNSCANNABLE, detail="too large to scan"),
            AV_UNSCANNABLE,
            "too large to scan",
        ),
        (
            "error says why",
            ScanResult(ScanOutcome.ERROR, detail="connection refused"),
            AV_ERROR,
            "connection refused",
        ),
        ("a raising client is an error", RuntimeError("bug"), AV_ERROR, "client failure"),
    ],
)
def test_outcome_to_finding(
    name: str, result: ScanResult | Exception, code: str | None, detail: str | None
) -> None:
    client = StandInClient(result)
    findings = AntivirusScanner(client, AntivirusOptions()).scan(MESSAGE, Envelope())
    assert client.seen == [MESSAGE.raw]  # the whole message, once
    if code is None:
        assert findings == ()
    else:
        assert [f.code for f in findings] == [code]
        assert detail is not None and detail in findings[0].detail
        assert findings[0].scanner == "antivirus"


def test_authenticated_sender_is_skipped_and_marked_when_configured() -> None:
    client = StandInClient(ScanResult(ScanOutcome.CLEAN))
    scanner = AntivirusScanner(client, AntivirusOptions(skip_authenticated=True))
    findings = scanner.scan(MESSAGE, Envelope(auth_user="alice"))
    assert [f.code for f in findings] == [AV_SKIPPED]
    assert client.seen == []
    assert scanner.scan(MESSAGE, Envelope()) == ()  # unauthenticated mail is still scanned


def test_large_message_is_skipped_and_marked_when_configured() -> None:
    client = StandInClient(ScanResult(ScanOutcome.CLEAN))
    scanner = AntivirusScanner(client, AntivirusOptions(skip_above_bytes=99))
    findings = scanner.scan(MESSAGE, Envelope())
    assert [(f.code, f.detail) for f in findings] == [(AV_SKIPPED, "larger than 99 bytes")]
    assert client.seen == []


@dataclass
class PayloadClient:
    """Infected when the scanned bytes contain `virus`; records what it was given."""

    virus: bytes
    seen: list[bytes] = field(default_factory=list)

    def scan(self, data: bytes) -> ScanResult:
        self.seen.append(bytes(data))
        if self.virus in data:
            return ScanResult(ScanOutcome.INFECTED, signature="Test.Sig")
        return ScanResult(ScanOutcome.CLEAN)


def _attachment(part: str, name: str, payload: bytes, size: int | None = None) -> Attachment:
    return Attachment(
        part=part,
        filename=name,
        content_type="application/octet-stream",
        size=len(payload) if size is None else size,
        payload=payload,
    )


def _message_with(*attachments: Attachment) -> ParsedMessage:
    raw = b"".join(a.payload for a in attachments) + b" body text"
    return ParsedMessage(size=len(raw), subject="", segments=(), attachments=attachments, raw=raw)


@pytest.mark.parametrize(
    ("name", "attachments", "options", "part", "filename"),
    [
        (
            "the infected one of three is named",
            (
                _attachment("2", "a.pdf", b"clean one"),
                _attachment("3", "b.zip", b"has VIRUS inside"),
                _attachment("4", "c.txt", b"clean two"),
            ),
            AntivirusOptions(),
            "3",
            "b.zip",
        ),
        (
            "a truncated payload proves nothing and is not rescanned",
            (_attachment("2", "big.zip", b"VIRUS cut", size=10_000),),
            AntivirusOptions(),
            "",
            "",
        ),
        (
            "past the bound the file stays unnamed",
            (
                _attachment("2", "a.pdf", b"clean"),
                _attachment("3", "b.zip", b"VIRUS"),
            ),
            AntivirusOptions(locate_attachments=1),
            "",
            "",
        ),
        (
            "a message without attachments keeps the signature only",
            (),
            AntivirusOptions(),
            "",
            "",
        ),
    ],
)
def test_infected_attachment_is_named_where_it_can_be_told(
    name: str,
    attachments: tuple[Attachment, ...],
    options: AntivirusOptions,
    part: str,
    filename: str,
) -> None:
    message = _message_with(*attachments)
    client = PayloadClient(b"VIRUS")
    if not attachments:
        message = ParsedMessage(size=5, subject="", segments=(), raw=b"VIRUS")
    (finding,) = AntivirusScanner(client, options).scan(message, Envelope())
    assert (finding.code, finding.detail) == (AV_INFECTED, "Test.Sig")
    assert (finding.part, finding.filename) == (part, filename)
    assert client.seen[0] == message.raw  # the whole message first, always
    assert len(client.seen) <= 1 + options.locate_attachments


def test_clean_mail_is_scanned_exactly_once() -> None:
    client = PayloadClient(b"VIRUS")
    message = _message_with(_attachment("2", "a.pdf", b"clean"))
    assert AntivirusScanner(client, AntivirusOptions()).scan(message, Envelope()) == ()
    assert len(client.seen) == 1
