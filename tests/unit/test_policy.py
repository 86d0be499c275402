"""policy.decide as a table of named cases (Postfix ptest style)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from menshen.config import PolicyConfig, parse_config
from menshen.model import (
    AV_ERROR,
    AV_INFECTED,
    AV_SKIPPED,
    AV_UNSCANNABLE,
    INTERNAL_ERROR,
    KEYWORD_HIT,
    MIME_DEFECT,
    MIME_LIMIT,
    Action,
    Envelope,
    Finding,
)
from menshen.policy import decide, internal_error_verdict

POLICY_YAML = """
wordlists:
  default_action: quarantine
  default_weight: 1
  categories:
    fraud: {action: reject, weight: 10}
    leak: {action: quarantine, weight: 5}
    promo: {action: tag, weight: 3}
    watch: {action: log, weight: 4}
scoring:
  quarantine_at: 8
  reject_at: 12
lists:
  allow:
    senders: [ceo@corp.example]
    recipients: [abuse@corp.example]
    client_ips: [192.0.2.0/24]
  deny:
    domains: [.spam.example, bad.example]
    client_ips: ["2001:db8::/32"]
    recipients: [closed@corp.example]
"""


def _policy(extra: str = "") -> PolicyConfig:
    return parse_config(POLICY_YAML + extra, "test.yml", base_dir=None).policy


def hit(category: str, term: str = "t", count: int = 1) -> Finding:
    return Finding(
        scanner="keywords",
        code=KEYWORD_HIT,
        category=category,
        term=term,
        where="body",
        count=count,
    )


LIMIT = Finding(scanner="structure", code=MIME_LIMIT, detail="depth: 33 > 32")
DEFECT = Finding(scanner="structure", code=MIME_DEFECT, detail="StartBoundaryNotFoundDefect")
ERROR = Finding(scanner="antivirus", code=INTERNAL_ERROR, detail="TimeoutError")
INFECTED = Finding(scanner="antivirus", code=AV_INFECTED, detail="Menshen.Test.EICAR.UNOFFICIAL")
AV_DOWN = Finding(scanner="antivirus", code=AV_ERROR, detail="connection refused")
UNSCANNABLE = Finding(scanner="antivirus", code=AV_UNSCANNABLE, detail="too large to scan")
SKIPPED = Finding(scanner="antivirus", code=AV_SKIPPED, detail="authenticated sender")
BLOCKED = Finding(
    scanner="attachments",
    code="ATTACHMENT_BLOCKED_EXTENSION",
    where="attachment_name",
    part="2",
    detail="invoice.exe",
)
ENCRYPTED = Finding(scanner="attachments", code="ATTACHMENT_ENCRYPTED_ARCHIVE", part="2")
PLAIN = Envelope(
    client_ip="203.0.113.9", sender="user@corp.example", recipients=("a@corp.example",)
)


@dataclass(frozen=True)
class Case:
    name: str
    findings: tuple[Finding, ...]
    action: Action
    envelope: Envelope = PLAIN
    reply_code: str | None = None
    reason_has: str = ""
    headers_have: tuple[str, ...] = field(default=())


CASES = [
    Case("no findings accept", (), Action.ACCEPT, reason_has="no policy hit"),
    Case("defects alone accept", (DEFECT,), Action.ACCEPT),
    Case(
        "reject category",
        (hit("fraud"),),
        Action.REJECT,
        reply_code="550",
        reason_has="keyword category fraud",
    ),
    Case(
        "quarantine category",
        (hit("leak"),),
        Action.QUARANTINE,
        headers_have=("X-Menshen-Verdict",),
    ),
    Case(
        "tag category accepts with tag header",
        (hit("promo"),),
        Action.ACCEPT,
        headers_have=("X-Menshen-Tag",),
    ),
    Case("log category accepts", (hit("watch"),), Action.ACCEPT),
    Case("unconfigured category takes default", (hit("other"),), Action.QUARANTINE),
    Case(
        "weak hits add up to quarantine",
        (hit("promo", "a"), hit("watch", "b"), hit("promo", "c")),
        Action.QUARANTINE,
        reason_has="score 10 >= 8",
    ),
    Case(
        "weak hits add up to reject",
        (hit("watch", "a"), hit("watch", "b"), hit("watch", "c")),
        Action.REJECT,
        reason_has="score 12 >= 12",
    ),
    Case("repeating one term scores once", (hit("watch", "a", count=50),), Action.ACCEPT),
    Case("mime limit quarantines", (LIMIT,), Action.QUARANTINE, reason_has="MIME limit"),
    Case("internal error tempfails", (ERROR,), Action.TEMPFAIL, reply_code="451"),
    Case("reject beats tempfail", (ERROR, hit("fraud")), Action.REJECT),
    Case("tempfail beats quarantine", (ERROR, hit("leak")), Action.TEMPFAIL),
    Case(
        "allowed sender skips content",
        (hit("fraud"), LIMIT),
        Action.ACCEPT,
        envelope=Envelope(sender="CEO@corp.example"),
        reason_has="allowed sender",
    ),
    Case(
        "allowed client network",
        (hit("fraud"),),
        Action.ACCEPT,
        envelope=Envelope(client_ip="192.0.2.77", sender="x@y.example"),
    ),
    Case(
        "allow never hides an internal error",
        (ERROR,),
        Action.TEMPFAIL,
        envelope=Envelope(sender="ceo@corp.example"),
    ),
    Case(
        "recipient allow needs every recipient",
        (hit("fraud"),),
        Action.REJECT,
        envelope=Envelope(
            sender="x@y.example", recipients=("abuse@corp.example", "b@corp.example")
        ),
    ),
    Case(
        "recipient allow with the only recipient",
        (hit("fraud"),),
        Action.ACCEPT,
        envelope=Envelope(sender="x@y.example", recipients=("abuse@corp.example",)),
    ),
    Case(
        "denied subdomain",
        (),
        Action.REJECT,
        reply_code="554",
        envelope=Envelope(sender="a@mx.spam.example"),
        reason_has="denied sender domain",
    ),
    Case(
        "denied bare domain does not cover subdomains",
        (),
        Action.ACCEPT,
        envelope=Envelope(sender="a@mx.bad.example"),
    ),
    Case("denied exact domain", (), Action.REJECT, envelope=Envelope(sender="a@bad.example")),
    Case("denied ipv6 network", (), Action.REJECT, envelope=Envelope(client_ip="2001:db8::5")),
    Case(
        "any denied recipient refuses",
        (),
        Action.REJECT,
        envelope=Envelope(recipients=("a@corp.example", "closed@corp.example")),
    ),
    Case(
        "deny beats allow",
        (),
        Action.REJECT,
        envelope=Envelope(sender="ceo@corp.example", client_ip="2001:db8::1"),
    ),
    Case(
        "garbage client ip is ignored", (), Action.ACCEPT, envelope=Envelope(client_ip="not-an-ip")
    ),
    Case(
        "virus rejects with 554 and the signature",
        (INFECTED,),
        Action.REJECT,
        reply_code="554",
        reason_has="virus Menshen.Test.EICAR.UNOFFICIAL",
    ),
    Case(
        "virus beats a quarantine category",
        (INFECTED, hit("leak")),
        Action.REJECT,
        reply_code="554",
    ),
    Case(
        "allow lists never let a virus through",
        (INFECTED,),
        Action.REJECT,
        envelope=Envelope(sender="ceo@corp.example"),
        reply_code="554",
    ),
    Case(
        "clamd down tempfails with 451 4.7.1",
        (AV_DOWN,),
        Action.TEMPFAIL,
        reply_code="451",
        reason_has="antivirus unavailable",
    ),
    Case(
        "clamd down is never clean for allowed senders",
        (AV_DOWN,),
        Action.TEMPFAIL,
        envelope=Envelope(sender="ceo@corp.example"),
    ),
    Case("unscannable quarantines", (UNSCANNABLE,), Action.QUARANTINE, reason_has="not scannable"),
    Case(
        "skipped scan accepts and says so",
        (SKIPPED,),
        Action.ACCEPT,
        headers_have=("X-Menshen-Verdict",),
    ),
    Case(
        "blocked extension rejects with the attachment reply",
        (BLOCKED,),
        Action.REJECT,
        reply_code="550",
        reason_has="attachment blocked extension",
    ),
    Case("encrypted archive quarantines", (ENCRYPTED,), Action.QUARANTINE),
    Case(
        "allowed sender skips attachment rules",
        (BLOCKED,),
        Action.ACCEPT,
        envelope=Envelope(sender="ceo@corp.example"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide(case: Case) -> None:
    verdict = decide(case.findings, case.envelope, _policy())
    assert verdict.action is case.action
    if case.reply_code:
        assert verdict.reply is not None and verdict.reply.code == case.reply_code
    elif case.action in (Action.ACCEPT, Action.QUARANTINE):
        assert verdict.reply is None
    assert case.reason_has in verdict.reason
    names = [name for name, _ in verdict.headers]
    for header in case.headers_have:
        assert header in names
    assert verdict.findings == case.findings


def test_monitor_mode_accepts_and_says_what_it_would_do() -> None:
    verdict = decide((hit("fraud"),), PLAIN, _policy("mode: monitor\n"))
    assert verdict.action is Action.ACCEPT
    assert verdict.monitored_action is Action.REJECT
    assert verdict.reply is None
    assert ("X-Menshen-Verdict", "accept (monitor: would reject); score=10; categories=fraud") in (
        verdict.headers
    )


def test_reject_reply_names_the_category_but_never_the_term() -> None:
    verdict = decide((hit("fraud", term="代开发票"),), PLAIN, _policy())
    assert verdict.reply is not None
    assert str(verdict.reply) == (
        "550 5.7.1 Message rejected by content policy: keyword category fraud"
    )
    assert "代开发票" not in str(verdict.reply)


@pytest.mark.parametrize("nasty", ["a\r\nBcc: x@y", "中文\n", "x" * 500, "\x00\x1b[31m"])
def test_header_and_reply_values_are_single_printable_lines(nasty: str) -> None:
    verdict = decide((hit(nasty), hit("fraud")), PLAIN, _policy())
    quarantine = decide((hit(nasty),), PLAIN, _policy())
    for value in [str(verdict.reply), verdict.reason, *(v for _, v in quarantine.headers)]:
        assert value.isascii() and value.isprintable(), value
    assert len(quarantine.reason) <= 100


def test_internal_error_verdict_is_a_tempfail_even_in_monitor_mode() -> None:
    verdict = internal_error_verdict(_policy("mode: monitor\n"), "engine")
    assert verdict.action is Action.TEMPFAIL
    assert verdict.reply is not None and verdict.reply.code.startswith("4")


def test_virus_reply_names_the_signature() -> None:
    verdict = decide((INFECTED,), PLAIN, _policy())
    assert str(verdict.reply) == "554 5.7.1 Virus found: Menshen.Test.EICAR.UNOFFICIAL"


def test_skipped_scan_is_marked_in_the_verdict_header() -> None:
    verdict = decide((SKIPPED,), PLAIN, _policy())
    assert dict(verdict.headers)["X-Menshen-Verdict"] == (
        "accept; score=0; antivirus=not scanned (authenticated sender)"
    )


def test_clamd_down_can_be_configured_to_fail_open() -> None:
    verdict = decide((AV_DOWN,), PLAIN, _policy("antivirus:\n  on_error: accept\n"))
    assert verdict.action is Action.ACCEPT
