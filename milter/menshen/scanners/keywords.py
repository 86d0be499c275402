"""Keyword scanner: wordlist terms found in the text of a message.

In:  a ParsedMessage (its TextSegments: subject, headers, body, HTML, attachment names and
     text) and the Envelope (unused).
Out: one ``KEYWORD_HIT`` Finding per (term, where, part) with the number of hits, in the order
     first seen; when the hits of the whole message reach ``max_hits`` the scan stops and one
     ``KEYWORD_HITS_CAPPED`` Finding says so (the policy decides what that means).
Fails: does not raise for any text; a bug surfaces as an exception the engine turns into an
     INTERNAL_ERROR finding.
Thread safety: holds only an immutable KeywordMatcher; scan() keeps its state in locals.
"""

from __future__ import annotations

from menshen.keywords.matcher import KeywordMatcher
from menshen.keywords.wordlist import Term
from menshen.model import Envelope, Finding, ParsedMessage
from menshen.text.normalise import normalise

__all__ = ["KeywordScanner"]


class KeywordScanner:
    name = "keywords"

    def __init__(self, matcher: KeywordMatcher, max_hits: int = 1000) -> None:
        self._matcher = matcher
        self._max_hits = max_hits

    def scan(self, message: ParsedMessage, envelope: Envelope) -> tuple[Finding, ...]:
        del envelope  # keywords depend on content only
        counts: dict[tuple[Term, str, str], int] = {}
        remaining = self._max_hits
        capped = False
        for segment in message.segments:
            if not segment.text:
                continue
            result = self._matcher.search(normalise(segment.text), remaining)
            for match in result.matches:
                key = (match.term, segment.where.value, segment.part)
                counts[key] = counts.get(key, 0) + match.count
            # Terms sharing a key each get a Match; the cap counts hits in the text, once.
            remaining -= sum({m.term.normalised: m.count for m in result.matches}.values())
            if result.truncated:
                capped = True
                break
        findings = [
            Finding(
                scanner=self.name,
                code="KEYWORD_HIT",
                category=term.category,
                term=term.text,
                where=where,
                part=part,
                count=count,
            )
            for (term, where, part), count in counts.items()
        ]
        if capped:
            findings.append(
                Finding(
                    scanner=self.name,
                    code="KEYWORD_HITS_CAPPED",
                    count=self._max_hits,
                    detail=f"stopped after {self._max_hits} keyword hits",
                )
            )
        return tuple(findings)
