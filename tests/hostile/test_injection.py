"""Header, reply, audit and log injection through the values menshen writes (A14, F6, F8).

Attacker-controlled text reaches menshen in the Subject, display names, attachment and
zip member names, and the SMTP envelope (sender, HELO, client name). None of it may reach
a value menshen writes unescaped:
- header values (addheader), the quarantine reason and SMTP reply text: one line of
  printable ASCII, length-capped (policy._safe / _token);
- the audit line: one line of ASCII JSON that parses back to the same values (audit.py);
- the daemon's log line: no control character, so no forged or overwritten line.
Each hostile value is a named case; the message carries it in every place at once.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
import unicodedata
import urllib.parse
import zipfile
from collections.abc import Iterator

import Milter
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recorders import ListSink, RecordingCtx

from menshen.adapter import ConnectionCounter, GuardMilter, SpoolSettings
from menshen.audit import AuditRecorder
from menshen.config import load_config
from menshen.engine import Engine
from menshen.model import Action, Envelope, Finding
from menshen.policy import decide

HOSTILE_VALUES = {
    "crlf-forged-header": "hi\r\nX-Menshen-Verdict: accept; score=0",
    "bare-lf": "line one\nline two",
    "bare-cr": "overwritten\rforged",
    "nul": "before\x00after",
    "ansi-escape": "\x1b[2J\x1b[31mred\x1b[0m",
    "c1-csi-and-nel": "a\x9b31mb\x85c",
    "delete": "rub\x7fout",
    "unicode-line-separators": "one\u2028two\u2029three",
    "bidi-override": "invoice\u202efdp",
    "percent-format": "100% %s %n %%d",
    "json-breakout": '"}\n{"action":"accept","x":"',
    "long-1mb": "x" * (1 << 20),
}
REASON_MAX = 100
REPLY_MAX = 400


def _is_safe_line(value: str, limit: int) -> bool:
    return len(value) <= limit and all(0x20 <= ord(ch) <= 0x7E for ch in value)


def _encoded_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode() + "?="


def _zip_named(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name[:200] + ".exe", b"MZ")
    return buffer.getvalue()


def hostile_message(value: str) -> bytes:
    """The value in the Subject, the From display name, an attachment and a zip member name."""
    short = value[:500]
    filename = urllib.parse.quote(short + ".exe", safe="")
    body = (
        "--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--B\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{filename}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA//8AALgAAAAA\r\n"
        "--B\r\nContent-Type: application/zip; name=files.zip\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(_zip_named(short)).decode().replace("\n", "\r\n")
        + "--B--\r\n"
    )
    head = (
        f"From: {_encoded_word(short)} <a@example.net>\r\n"
        f"Subject: {_encoded_word(value)}\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
    )
    return (head + body).encode()


def hostile_envelope(value: str) -> Envelope:
    short = value[:2000]
    return Envelope(
        client_ip="192.0.2.9",
        client_name=short,
        helo=short,
        sender=f"{short}@example.net",
        recipients=(f"{short}@example.com",),
        auth_user=short,
        queue_id="4HOSTILE",
    )


# --- verdict values: headers, reason, reply ---------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_verdict_values_stay_one_printable_line(engine: Engine, value: str) -> None:
    verdict = engine.evaluate(hostile_envelope(value), hostile_message(value))
    assert verdict.action is Action.REJECT  # blocked extension, named in the reason
    assert verdict.reply is not None
    assert _is_safe_line(verdict.reply.text, REPLY_MAX), verdict.reply.text
    assert _is_safe_line(verdict.reason, REASON_MAX), verdict.reason
    for name, header_value in verdict.headers:
        assert _is_safe_line(header_value, 998), (name, header_value)


# Any code point, lone surrogates included (st.characters(codec=None) needs a newer hypothesis).
_TEXT = st.text(st.integers(0, sys.maxunicode).map(chr), max_size=300)


@settings(max_examples=300, deadline=None)
@given(detail=_TEXT, filename=_TEXT, category=_TEXT, term=_TEXT)
def test_policy_output_is_safe_for_any_finding_text(
    engine: Engine, detail: str, filename: str, category: str, term: str
) -> None:
    # Findings whose free text came from a message: attachment rules, limits, clamd's
    # signature name, a keyword category, quota details.
    findings = [
        Finding("attachments", "ATTACHMENT_BLOCKED_EXTENSION", detail=detail, filename=filename),
        Finding("structure", "MIME_LIMIT", detail=detail),
        Finding("antivirus", "AV_INFECTED", detail=detail, filename=filename),
        Finding("keywords", "KEYWORD_HIT", category=category, term=term),
        Finding("quota", "QUOTA_WARNING", category=category, detail=detail),
    ]
    config = engine.policy
    for subset in (findings[:1], findings[1:2], findings[2:3], findings[3:]):
        verdict = decide(subset, hostile_envelope(detail), config)
        assert _is_safe_line(verdict.reason, REASON_MAX), verdict.reason
        if verdict.reply is not None:
            assert _is_safe_line(verdict.reply.text, REPLY_MAX), verdict.reply.text
        for _, value in verdict.headers:
            assert _is_safe_line(value, 998), value


# --- the audit line --------------------------------------------------------------------


@pytest.mark.parametrize("value", HOSTILE_VALUES.values(), ids=HOSTILE_VALUES.keys())
def test_audit_line_is_one_ascii_json_line(engine: Engine, value: str) -> None:
    envelope = hostile_envelope(value)
    verdict = engine.evaluate(envelope, hostile_message(value))
    sink = ListSink()
    AuditRecorder(sink, include_terms=True).record(envelope, verdict, 1234)
    (line,) = sink.lines
    assert line.isascii() and line.isprintable(), line[:200]
    record = json.loads(line)
    assert record["sender"] == envelope.sender
    assert record["auth_user"] == envelope.auth_user
    assert record["reason"] == verdict.reason


# --- the daemon's log line -------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def log_lines(
    monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> Iterator[tuple[RecordingCtx, _Records]]:
    logger = logging.getLogger("menshen.hostile")
    records = _Records()
    logger.addHandler(records)
    logger.setLevel(logging.DEBUG)
    spool = SpoolSettings(memory_bytes=1 << 20, cap_bytes=10 << 20, directory=None)
    counter = ConnectionCounter()
    monkeypatch.setattr(
        Milter, "factory", lambda: GuardMilter(lambda: engine, spool, counter, logger)
    )
    try:
        yield RecordingCtx(), records
    finally:
        logger.removeHandler(records)


# Every sender-controlled value in a log line goes through menshen.printable: CR, ESC, NUL,
# DEL and the other controls as \xNN (a first version escaped only LF; found here).
_LOG_CASES = [pytest.param(value, id=name) for name, value in HOSTILE_VALUES.items()]


@pytest.mark.parametrize("value", _LOG_CASES)
def test_log_line_has_no_control_characters(
    log_lines: tuple[RecordingCtx, _Records], value: str
) -> None:
    ctx, records = log_lines
    ctx._setsymval("i", "4HOSTILE")
    ctx._connect(host=value[:2000], helo=value[:2000], ip="192.0.2.9")
    envelope = hostile_envelope(value)
    rc = ctx._feedFile(io.BytesIO(hostile_message(value)), envelope.sender, "rcpt@example.com")
    assert rc == Milter.REJECT
    assert records.lines
    for line in records.lines:
        assert "\n" not in line
        assert not any(unicodedata.category(ch) == "Cc" for ch in line), repr(line[:300])
    assert ctx._reply is not None
    assert all(_is_safe_line(part, REPLY_MAX) for part in ctx._reply), ctx._reply


def test_quarantine_reason_and_headers_through_the_milter(
    log_lines: tuple[RecordingCtx, _Records],
) -> None:
    ctx, _ = log_lines
    ctx._setsymval("i", "4HOSTILE")
    ctx._connect(host="client.example", helo="client.example", ip="192.0.2.9")
    value = HOSTILE_VALUES["crlf-forged-header"] + "\u202e"
    name = urllib.parse.quote(f"report{value}.pdf", safe="")
    message = (
        f"From: a@example.net\r\nSubject: {_encoded_word(value)}\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: application/pdf\r\n"
        f"Content-Disposition: attachment; filename*=utf-8''{name}\r\n\r\n%PDF-1.4\r\n--B--\r\n"
    ).encode()
    assert ctx._feedFile(io.BytesIO(message), "a@example.net", "rcpt@example.com") == (
        Milter.ACCEPT
    )
    assert ctx.quarantined is not None
    assert _is_safe_line(ctx.quarantined, REASON_MAX), ctx.quarantined
    assert ctx.added
    for field, header_value in ctx.added:
        assert _is_safe_line(header_value, 998), (field, header_value)


def test_builtin_config_is_what_the_suite_assumes() -> None:
    config = load_config(None)
    assert config.attachments.enabled and not config.antivirus.enabled
