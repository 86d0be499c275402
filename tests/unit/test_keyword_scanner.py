"""KeywordScanner: findings per (term, where, part), the message-wide cap, purity."""

from __future__ import annotations

from menshen.keywords.matcher import KeywordMatcher
from menshen.keywords.wordlist import Term, Wordlist
from menshen.model import Envelope, Finding, ParsedMessage, TextSegment, Where
from menshen.scanners.base import Scanner
from menshen.scanners.keywords import KeywordScanner
from menshen.text.normalise import normalise


def wordlist(category: str, *texts: str) -> Wordlist:
    return Wordlist(
        category,
        f"{category}.txt",
        tuple(
            Term(t, normalise(t), category, f"{category}.txt", i + 1) for i, t in enumerate(texts)
        ),
    )


MATCHER = KeywordMatcher.build(
    [
        wordlist("invoice_fraud", "代开发票"),
        wordlist("pharma_spam", "cialis"),
        wordlist("audit", "代开发票"),
    ]
)


def message(*segments: tuple[Where, str, str]) -> ParsedMessage:
    return ParsedMessage(
        size=100, subject="", segments=tuple(TextSegment(w, p, t) for w, p, t in segments)
    )


def hit(category: str, term: str, where: str, part: str, count: int) -> Finding:
    return Finding(
        scanner="keywords",
        code="KEYWORD_HIT",
        category=category,
        term=term,
        where=where,
        part=part,
        count=count,
    )


def test_is_a_scanner() -> None:
    scanner: Scanner = KeywordScanner(MATCHER)
    assert scanner.name == "keywords"


def test_findings_per_term_where_part() -> None:
    msg = message(
        (Where.SUBJECT, "", "代開發票 cialis"),
        (Where.BODY, "1", "cialis cialis specialist"),
        (Where.HTML, "2", "代，开发票"),
        (Where.HEADER, "", "cialis"),
        (Where.HEADER, "", "CIALIS"),
        (Where.ATTACHMENT_NAME, "3", ""),
    )
    findings = KeywordScanner(MATCHER).scan(msg, Envelope())
    assert findings == (
        hit("invoice_fraud", "代开发票", "subject", "", 1),
        hit("audit", "代开发票", "subject", "", 1),
        hit("pharma_spam", "cialis", "subject", "", 1),
        hit("pharma_spam", "cialis", "body", "1", 2),
        hit("invoice_fraud", "代开发票", "html", "2", 1),
        hit("audit", "代开发票", "html", "2", 1),
        hit("pharma_spam", "cialis", "header", "", 2),
    )


def test_no_hits() -> None:
    msg = message((Where.BODY, "1", "发票已收到，谢谢。"))
    assert KeywordScanner(MATCHER).scan(msg, Envelope()) == ()


def test_cap_across_message() -> None:
    msg = message(
        (Where.SUBJECT, "", "cialis " * 3),
        (Where.BODY, "1", "cialis " * 3),
        (Where.BODY, "2", "cialis"),
    )
    findings = KeywordScanner(MATCHER, max_hits=5).scan(msg, Envelope())
    assert [f.code for f in findings] == ["KEYWORD_HIT", "KEYWORD_HIT", "KEYWORD_HITS_CAPPED"]
    assert sum(f.count for f in findings if f.code == "KEYWORD_HIT") == 5
    assert findings[-1].count == 5


def test_shared_key_counts_once_against_cap() -> None:
    msg = message((Where.BODY, "1", "代开发票" * 2), (Where.BODY, "2", "代开发票"))
    findings = KeywordScanner(MATCHER, max_hits=3).scan(msg, Envelope())
    assert "KEYWORD_HITS_CAPPED" not in {f.code for f in findings}


def test_exactly_at_cap_is_not_capped() -> None:
    msg = message((Where.BODY, "1", "cialis " * 4))
    findings = KeywordScanner(MATCHER, max_hits=4).scan(msg, Envelope())
    assert [f.code for f in findings] == ["KEYWORD_HIT"]


def test_scan_is_pure() -> None:
    scanner = KeywordScanner(MATCHER)
    msg = message((Where.BODY, "1", "cialis 代开发票"))
    assert scanner.scan(msg, Envelope()) == scanner.scan(msg, Envelope())


def test_empty_matcher() -> None:
    msg = message((Where.BODY, "1", "cialis"))
    assert KeywordScanner(KeywordMatcher.build([])).scan(msg, Envelope()) == ()
