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
