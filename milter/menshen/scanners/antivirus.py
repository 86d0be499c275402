"""Antivirus scanner: the whole message goes to clamd once.

In:  a ParsedMessage (its `raw` bytes) and the Envelope; a clamd client injected at
     construction (anything with `scan(bytes) -> ScanResult`).
Out: at most one finding:
       AV_INFECTED     clamd found malware (detail: the signature name)
       AV_UNSCANNABLE  clamd could not look inside (limits, encrypted, too large)
       AV_ERROR        clamd unreachable, timed out or answered nonsense
       AV_SKIPPED      not scanned by configuration (authenticated sender, or larger than
                       skip_above_bytes); the verdict header says so
     and none when clamd says the message is clean. The raw message is sent once because
     clamd decodes MIME, archives, nested messages and uuencode itself, so a virus in a zip in
     a zip, a tar.gz, an attached message or a uuencoded body is found without menshen
     decoding anything. clamd names the signature but not the part it was found in, so
     after an INFECTED answer (rare, and the message is refused anyway) the decoded
     attachments are scanned one by one, at most `locate_attachments` of them, to name the
     file in the finding (`part`, `filename`); a virus outside every attachment (a
     uuencoded body) or past that bound keeps the finding without a file name.
Fails: never raises; a client that raises is reported as AV_ERROR (never as clean).
Thread safety: stateless; the client opens a socket per scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from menshen.clamd import ScanOutcome, ScanResult
from menshen.model import (
    AV_ERROR,
    AV_INFECTED,
    AV_SKIPPED,
    AV_UNSCANNABLE,
    Attachment,
    Envelope,
    Finding,
    ParsedMessage,
    Where,
)


class Scans(Protocol):
    def scan(self, data: bytes) -> ScanResult: ...


@dataclass(frozen=True, slots=True)
class AntivirusOptions:
    skip_authenticated: bool = False  # mail from SASL-authenticated senders is not scanned
    skip_above_bytes: int | None = None  # larger mail is not scanned, only marked
    locate_attachments: int = 8  # attachments rescanned to name the infected one; 0: none


_CODES = {
    ScanOutcome.INFECTED: AV_INFECTED,
    ScanOutcome.UNSCANNABLE: AV_UNSCANNABLE,
    ScanOutcome.ERROR: AV_ERROR,
}


class AntivirusScanner:
    name = "antivirus"

    def __init__(self, client: Scans, options: AntivirusOptions) -> None:
        self._client = client
        self._options = options

    def scan(self, message: ParsedMessage, envelope: Envelope) -> tuple[Finding, ...]:
        options = self._options
        if options.skip_authenticated and envelope.auth_user:
            return (self._finding(AV_SKIPPED, "authenticated sender"),)
        if options.skip_above_bytes is not None and message.size > options.skip_above_bytes:
            return (self._finding(AV_SKIPPED, f"larger than {options.skip_above_bytes} bytes"),)
        try:
            result = self._client.scan(message.raw)
        except Exception as exc:  # the client promises not to raise; never read it as clean
            return (self._finding(AV_ERROR, f"client failure: {type(exc).__name__}"),)
        code = _CODES.get(result.outcome)
        if code is None:
            return ()
        if code == AV_INFECTED:
            infected = self._finding(code, result.signature or result.outcome.value)
            carrier = self._locate(message.attachments)
            if carrier is None:
                return (infected,)
            return (
                Finding(
                    scanner=infected.scanner,
                    code=infected.code,
                    where=Where.ATTACHMENT_NAME.value,
                    part=carrier.part,
                    detail=infected.detail,
                    filename=carrier.filename[:200],
                ),
            )
        return (self._finding(code, result.detail or result.outcome.value),)

    def _locate(self, attachments: tuple[Attachment, ...]) -> Attachment | None:
        """The first attachment clamd finds infected on its own, within the bound."""
        # Truncated payloads (the decoded-bytes limit) would prove nothing either way.
        complete = [a for a in attachments if a.payload and len(a.payload) == a.size]
        for attachment in complete[: self._options.locate_attachments]:
            try:
                result = self._client.scan(attachment.payload)
            except Exception:  # naming the file is a courtesy; the verdict stands without it
                return None
            if result.outcome is ScanOutcome.INFECTED:
                return attachment
        return None

    def _finding(self, code: str, detail: str) -> Finding:
        return Finding(scanner=self.name, code=code, detail=detail[:200])
