"""The interface every scanner implements.

In:  a ParsedMessage and the Envelope of the same message.
Out: a tuple of Findings (facts, not decisions; the policy decides).
Fails: a scanner should not raise; if it does, the engine turns the exception into an
       INTERNAL_ERROR finding for that scanner, which the policy maps to a tempfail.
Thread safety: scanners are shared by all connections, so scan() must not mutate state.
"""

from __future__ import annotations

from typing import Protocol

from menshen.model import Envelope, Finding, ParsedMessage


class Scanner(Protocol):
    @property
    def name(self) -> str: ...

    def scan(self, message: ParsedMessage, envelope: Envelope) -> tuple[Finding, ...]: ...
