"""Structure scanner: turns what extraction could not finish into findings.

In:  a ParsedMessage (its limits_hit and defects) and the Envelope.
Out: one MIME_LIMIT finding per limit hit (the policy quarantines by default, since a retry
     of the same bytes fails the same way) and one MIME_DEFECT finding per defect name
     (informational unless the policy says otherwise).
Fails: never raises. Thread safety: stateless.
"""

from __future__ import annotations

from collections import Counter

from menshen.model import MIME_DEFECT, MIME_LIMIT, Envelope, Finding, ParsedMessage


class StructureScanner:
    name = "structure"

    def scan(self, message: ParsedMessage, envelope: Envelope) -> tuple[Finding, ...]:
        findings = [
            Finding(scanner=self.name, code=MIME_LIMIT, detail=f"{hit.limit}: {hit.detail}")
            for hit in message.limits_hit
        ]
        for defect, count in sorted(Counter(message.defects).items()):
            findings.append(
                Finding(scanner=self.name, code=MIME_DEFECT, detail=defect, count=count)
            )
        return tuple(findings)
