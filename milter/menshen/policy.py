"""The one decision point: findings + envelope + policy configuration -> Verdict.

In:  every Finding the scanners reported for one message, its Envelope, a PolicyConfig.
Out: a Verdict: the action (accept, quarantine, tempfail, reject), the SMTP reply for
     reject and tempfail, a short reason, the headers to add and the score.
Rules, in order:
  1. A deny-list match (sender, sender domain, client IP, any recipient) rejects with
     replies.denied. Deny beats allow.
  2. An INTERNAL_ERROR finding tempfails: a message that was not fully checked is never
     accepted as clean, and never refused for good either.
  3. Antivirus findings act by their configured action (infected: reject 554; clamd
     unreachable: tempfail; cannot scan: quarantine), allow-listed or not; so do quota
     findings (exhausted: tempfail 451 4.7.1 or reject; store down: tempfail; warning
     level: a header).
  4. Unless the message is allow-listed, keyword hits act by their category's action,
     the score (sum of the weights of the distinct terms hit) by the thresholds, MIME_LIMIT
     findings by actions.on_limits and attachment rules by attachments.actions.
  5. The strongest action wins: reject > tempfail > quarantine > accept.
  6. Monitor mode computes all of this, then accepts, saying what it would have done.
Fails: never raises for any findings. Thread safety: a pure function.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from menshen.config import AddressList, KeywordAction, Mode, PolicyConfig
from menshen.model import (
    AV_ERROR,
    AV_INFECTED,
    AV_SKIPPED,
    AV_UNSCANNABLE,
    INTERNAL_ERROR,
    KEYWORD_HIT,
    MIME_LIMIT,
    QUOTA_EXCEEDED,
    QUOTA_WARNING,
    Action,
    Envelope,
    Finding,
    SmtpReply,
    Verdict,
)

_UNLISTED = ("AV_", "QUOTA_")  # finding codes the allow lists do not suspend
REASON_MAX = 100  # Postfix keeps about 100 bytes of a quarantine reason
_UNSAFE = re.compile(r"[^\x21-\x7e]+")  # anything but printable ASCII, spaces included

_KEYWORD_ACTIONS = {
    KeywordAction.REJECT: Action.REJECT,
    KeywordAction.QUARANTINE: Action.QUARANTINE,
    KeywordAction.TAG: Action.ACCEPT,
    KeywordAction.LOG: Action.ACCEPT,
}


@dataclass(frozen=True, slots=True)
class _Cause:
    action: Action
    reason: str
    reply: SmtpReply | None = None  # a code's own reply, already filled in


def decide(findings: Sequence[Finding], envelope: Envelope, config: PolicyConfig) -> Verdict:
    """Decide what happens to one message. See the module docstring for the rules."""
    causes: list[_Cause] = []
    tagged: list[str] = []
    score = _score(findings, config)

    denied = _list_match(envelope, config.deny, every_recipient=False)
    allowed = _list_match(envelope, config.allow, every_recipient=True)
    if denied:
        causes.append(_Cause(Action.REJECT, f"denied {denied}"))

    for finding in findings:
        if finding.code == INTERNAL_ERROR:
            causes.append(_Cause(Action.TEMPFAIL, f"internal error in {finding.scanner}"))
    # Malware, a scanner that could not answer and sending quotas act whatever the allow
    # lists say (quotas have exemptions of their own).
    causes.extend(_rule_causes(findings, config, lambda code: code.startswith(_UNLISTED)))
    if not allowed:
        causes.extend(_rule_causes(findings, config, lambda code: not code.startswith(_UNLISTED)))
        causes.extend(_content_causes(findings, config, tagged))
        causes.extend(_score_causes(score, config))
        tag_at = config.scoring.tag_at
        if tag_at is not None and score > 0 and score >= tag_at:
            tagged.append(f"score={score:g}")

    strongest = max(causes, key=lambda cause: cause.action.precedence, default=None)
    action = strongest.action if strongest else Action.ACCEPT
    reason = _safe(strongest.reason if strongest else "no policy hit", REASON_MAX)
    if allowed and not denied:
        reason = _safe(f"allowed {allowed}; {reason}", REASON_MAX)

    reply = _reply(action, reason, denied, config)
    if strongest is not None and strongest.reply is not None and not denied:
        reply = strongest.reply
    headers = _headers(action, score, findings, tagged, config, monitored=None)
    if config.mode is Mode.MONITOR and action is not Action.ACCEPT:
        headers = _headers(Action.ACCEPT, score, findings, tagged, config, monitored=action)
        return Verdict(
            action=Action.ACCEPT,
            reply=None,
            reason=reason,
            findings=tuple(findings),
            headers=headers,
            score=score,
            monitored_action=action,
        )
    if action is Action.QUARANTINE:
        # Postfix records only "milter triggers HOLD action"; `menshen quarantine` reads this.
        headers = (*headers, (config.headers.reason, reason))
    return Verdict(
        action=action,
        reply=reply,
        reason=reason,
        findings=tuple(findings),
        headers=headers,
        score=score,
    )


def internal_error_verdict(config: PolicyConfig, where: str) -> Verdict:
    """The verdict when deciding itself failed: a tempfail, whatever the mode."""
    return Verdict(
        action=Action.TEMPFAIL,
        reply=config.replies.tempfail,
        reason=_safe(f"internal error in {where}", REASON_MAX),
        findings=(Finding(scanner=where, code=INTERNAL_ERROR),),
    )


def _content_causes(
    findings: Sequence[Finding], config: PolicyConfig, tagged: list[str]
) -> list[_Cause]:
    causes: list[_Cause] = []
    for finding in findings:
        if finding.code == KEYWORD_HIT:
            rule = config.wordlists.rule_for(finding.category)
            if rule.action is KeywordAction.TAG and finding.category not in tagged:
                tagged.append(finding.category)
            causes.append(
                _Cause(_KEYWORD_ACTIONS[rule.action], f"keyword category {finding.category}")
            )
        elif finding.code == MIME_LIMIT:
            causes.append(_Cause(config.on_limits, f"MIME limit {finding.detail}"))
    return causes


def _rule_causes(
    findings: Sequence[Finding], config: PolicyConfig, selected: Callable[[str], bool]
) -> list[_Cause]:
    """Causes from the antivirus and attachment codes, each with its configured action."""
    causes: list[_Cause] = []
    for finding in findings:
        rule = config.rules.get(finding.code)
        if rule is None or not selected(finding.code):
            continue
        reason = _describe(finding)
        reply = None
        if rule.reply is not None:
            text = rule.reply.text.replace("{signature}", finding.detail)
            reply = SmtpReply(rule.reply.code, rule.reply.xcode, _fill(text, reason))
        causes.append(_Cause(rule.action, reason, reply))
    return causes


def _describe(finding: Finding) -> str:
    if finding.code == AV_INFECTED:
        carrier = f" in attachment {finding.filename!r}" if finding.filename else ""
        return f"virus {finding.detail}{carrier}"
    if finding.code == AV_UNSCANNABLE:
        return f"not scannable: {finding.detail}"
    if finding.code == AV_ERROR:
        return f"antivirus unavailable: {finding.detail}"
    if finding.code == AV_SKIPPED:
        return f"not virus-scanned: {finding.detail}"
    if finding.code == QUOTA_EXCEEDED:
        return f"quota {finding.category}: {finding.detail}"
    if finding.code.startswith("QUOTA_"):
        what = finding.code.removeprefix("QUOTA_").lower().replace("_", " ")
        return f"quota {what}" + (f" {finding.category}" if finding.category else "")
    what = finding.code.removeprefix("ATTACHMENT_").lower().replace("_", " ")
    return f"attachment {what}" + (f": {finding.detail}" if finding.detail else "")


def _score(findings: Sequence[Finding], config: PolicyConfig) -> float:
    """Sum of category weights over distinct (category, term): repetition adds nothing."""
    distinct = {(f.category, f.term) for f in findings if f.code == KEYWORD_HIT}
    return sum(config.wordlists.rule_for(category).weight for category, _ in distinct)


def _score_causes(score: float, config: PolicyConfig) -> list[_Cause]:
    thresholds = (
        (config.scoring.reject_at, Action.REJECT),
        (config.scoring.quarantine_at, Action.QUARANTINE),
    )
    for threshold, action in thresholds:
        if threshold is not None and score > 0 and score >= threshold:
            return [_Cause(action, f"score {score:g} >= {threshold:g}")]
    return []


def _list_match(envelope: Envelope, entries: AddressList, every_recipient: bool) -> str:
    """The first entry of the list the envelope matches, described; "" when none."""
    if entries.is_empty():
        return ""
    sender = envelope.sender.strip("<>").lower()
    if sender and sender in entries.senders:
        return "sender"
    domain = sender.rpartition("@")[2] if "@" in sender else ""
    if domain and _domain_listed(domain, entries.domains):
        return "sender domain"
    if envelope.client_ip and entries.networks:
        try:
            client = ipaddress.ip_address(envelope.client_ip.strip("[]"))
        except ValueError:
            client = None
        if client is not None and any(client in network for network in entries.networks):
            return "client address"
    recipients = [r.strip("<>").lower() for r in envelope.recipients]
    listed = [r in entries.recipients for r in recipients]
    if recipients and (all(listed) if every_recipient else any(listed)):
        return "recipient"
    return ""


def _domain_listed(domain: str, domains: frozenset[str]) -> bool:
    if domain in domains:
        return True
    labels = domain.split(".")
    return any("." + ".".join(labels[i:]) in domains for i in range(1, len(labels)))


def _reply(action: Action, reason: str, denied: str, config: PolicyConfig) -> SmtpReply | None:
    if action is Action.REJECT:
        template = config.replies.denied if denied else config.replies.reject
        return SmtpReply(template.code, template.xcode, _fill(template.text, reason))
    if action is Action.TEMPFAIL:
        template = config.replies.tempfail
        return SmtpReply(template.code, template.xcode, _fill(template.text, reason))
    return None


def _fill(template: str, reason: str) -> str:
    # replace() rather than format(): an operator's text may contain other braces.
    return _safe(template.replace("{reason}", reason), 400)


def _headers(
    action: Action,
    score: float,
    findings: Sequence[Finding],
    tagged: list[str],
    config: PolicyConfig,
    monitored: Action | None,
) -> tuple[tuple[str, str], ...]:
    if action not in (Action.ACCEPT, Action.QUARANTINE):
        return ()
    categories = sorted({_token(f.category) for f in findings if f.code == KEYWORD_HIT})
    value = action.value
    if monitored is not None:
        value += f" (monitor: would {monitored.value})"
    value += f"; score={score:g}"
    if categories:
        value += "; categories=" + ",".join(categories)
    skipped = [f for f in findings if f.code == AV_SKIPPED]
    if skipped:
        value += "; antivirus=not scanned (" + _safe(skipped[0].detail, 60) + ")"
    headers = [(config.headers.verdict, value)]
    if tagged:
        headers.append((config.headers.tag, ",".join(_token(c) for c in tagged)))
    warnings = [f for f in findings if f.code == QUOTA_WARNING]
    if warnings:
        used = ", ".join(f"{_token(f.category)}={_token(f.detail)}" for f in warnings)
        headers.append((config.headers.quota, f"warning; {used}"))
    return tuple(headers)


def _token(text: str) -> str:
    return _UNSAFE.sub("_", text)[:64] or "_"


def _safe(text: str, limit: int) -> str:
    """One printable ASCII line: header and reply values can never carry CR/LF."""
    return " ".join(_UNSAFE.sub("?", word) for word in text.split())[:limit]
