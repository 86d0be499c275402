"""The adapter driven through pymilter's TestCtx: verdicts become the right milter calls.

TestCtx replaces libmilter's context and feeds callbacks in libmilter's order. Its
quarantine() raises, so a subclass records it instead; its body is LF-only, unlike
Postfix's CRLF (the daemon and Postfix suites cover CRLF end to end).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import Milter
import pytest
from recorders import RecordingCtx

from menshen.adapter import ConnectionCounter, GuardMilter, QuotaCheckingMilter, SpoolSettings
from menshen.composition import assemble
from menshen.config import parse_config
from menshen.engine import Engine
from menshen.model import Envelope, Verdict

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _engine(config_text: str = "", wordlists: Path | None = None) -> Engine:
    config = parse_config(config_text, "test.yml", base_dir=None)
    return assemble(config, wordlists).engine


@pytest.fixture
def counter() -> ConnectionCounter:
    return ConnectionCounter()


@pytest.fixture
def milter_with(
    monkeypatch: pytest.MonkeyPatch, counter: ConnectionCounter
) -> Iterator[Callable[[Engine], RecordingCtx]]:
    def connect(engine: Engine, memory_bytes: int = 1 << 20) -> RecordingCtx:
        spool = SpoolSettings(memory_bytes=memory_bytes, cap_bytes=10 << 20, directory=None)
        logger = logging.getLogger("menshen.test")
        monkeypatch.setattr(
            Milter, "factory", lambda: GuardMilter(lambda: engine, spool, counter, logger)
        )
        ctx = RecordingCtx()
        ctx._setsymval("i", "4TestQ1")
        assert ctx._connect(host="client.example", helo="client.example", ip="192.0.2.7") == (
            Milter.CONTINUE
        )
        return ctx

    yield connect


def _feed(ctx: RecordingCtx, path: Path, sender: str = "a@sender.example") -> int:
    with path.open("rb") as handle:
        return int(ctx._feedFile(handle, sender, "b@example.com"))


def test_clean_message_is_accepted_with_the_verdict_header(
    milter_with: Callable[[Engine], RecordingCtx],
) -> None:
    ctx = milter_with(_engine())
    assert _feed(ctx, SAMPLES / "clean-chinese-business.eml") == Milter.ACCEPT
    assert ctx._reply is None
    # Header values keep their leading space: the MTA writes "Name:" + value as given.
    assert ctx.added == [("X-Menshen-Verdict", " accept; score=0")]
    assert ctx.quarantined is None


@pytest.mark.parametrize(
    "sample", ["kw-body-gbk-base64.eml", "kw-body-big5.eml", "kw-attachment-docx.eml"]
)
def test_keyword_message_is_rejected_with_the_policy_reply(
    milter_with: Callable[[Engine], RecordingCtx], sample: str
) -> None:
    ctx = milter_with(_engine())
    assert _feed(ctx, SAMPLES / sample) == Milter.REJECT
    assert ctx._reply == (
        "550",
        "5.7.1",
        "Message rejected by content policy: keyword category invoice_fraud",
    )


def test_quarantine_category_quarantines_then_accepts(
    milter_with: Callable[[Engine], RecordingCtx], tmp_path: Path
) -> None:
    (tmp_path / "review.txt").write_text("季度报告\n", encoding="utf-8")
    engine = _engine("wordlists:\n  categories:\n    review: {action: quarantine}\n", tmp_path)
    ctx = milter_with(engine)
    assert _feed(ctx, SAMPLES / "clean-chinese-business.eml") == Milter.ACCEPT
    assert ctx.quarantined == "keyword category review"
    assert ("X-Menshen-Verdict", " quarantine; score=1; categories=review") in ctx.added


def test_forged_verdict_header_is_removed(
    milter_with: Callable[[Engine], RecordingCtx], tmp_path: Path
) -> None:
    message = tmp_path / "forged.eml"
    message.write_bytes(
        b"From: a@sender.example\nX-Menshen-Verdict: accept; score=0\nSubject: hi\n\nhello\n"
    )
    ctx = milter_with(_engine())
    assert _feed(ctx, message) == Milter.ACCEPT
    assert ("X-Menshen-Verdict", 1, "") in ctx.changed


def test_the_engine_sees_the_envelope_and_the_message(
    milter_with: Callable[[Engine], RecordingCtx],
) -> None:
    seen: list[tuple[Envelope, bytes]] = []

    class Recording(Engine):
        def evaluate(self, envelope: Envelope, raw: bytes, heartbeat: object = None) -> Verdict:
            seen.append((envelope, raw))
            return super().evaluate(envelope, raw)

    base = _engine()
    engine = Recording(base._extractor, base._scanners, base.policy)
    ctx = milter_with(engine)
    _feed(ctx, SAMPLES / "kw-spaced.eml")
    envelope, raw = seen[0]
    assert envelope.sender == "a@sender.example"
    assert envelope.recipients == ("b@example.com",)
    assert envelope.client_ip == "192.0.2.7"
    assert envelope.helo == "client.example"
    assert envelope.queue_id == "4TestQ1"
    headers, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\nSubject:" in b"\r\n" + headers
    assert body  # headers end with the blank line the adapter writes at eoh


def test_an_exploding_engine_becomes_451_not_accept(
    milter_with: Callable[[Engine], RecordingCtx], caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(Engine):
        def evaluate(self, envelope: Envelope, raw: bytes, heartbeat: object = None) -> Verdict:
            raise RuntimeError("boom")

    base = _engine()
    ctx = milter_with(Broken(base._extractor, base._scanners, base.policy))
    with caplog.at_level(logging.ERROR):
        assert _feed(ctx, SAMPLES / "clean-specialist.eml") == Milter.TEMPFAIL
    assert ctx._reply is not None and ctx._reply[0] == "451" and ctx._reply[1] == "4.3.0"
    assert "4TestQ1: internal error at end of message" in caplog.text


def test_large_message_spools_to_disk_and_is_judged(
    milter_with: Callable[[Engine], RecordingCtx], tmp_path: Path
) -> None:
    big = tmp_path / "big.eml"
    filler = ("平常的业务往来文字。" * 2000 + "\n").encode("utf-8")
    big.write_bytes(
        b"From: a@sender.example\nSubject: big\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: 8bit\n\n" + filler * 5 + "代开发票\n".encode()
    )
    ctx = milter_with(_engine(), 4096)
    assert _feed(ctx, big) == Milter.REJECT


def test_abort_discards_the_message_and_close_counts_the_connection(
    milter_with: Callable[[Engine], RecordingCtx], counter: ConnectionCounter
) -> None:
    ctx = milter_with(_engine())
    assert counter.active == 1
    milter: GuardMilter = ctx.getpriv()
    milter.envfrom("<a@sender.example>")
    milter.body(b"partial")
    ctx._abort()
    assert counter.active == 0
    assert counter.wait_idle(0.1)


def test_spool_write_failure_is_a_tempfail(
    milter_with: Callable[[Engine], RecordingCtx], monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = milter_with(_engine())

    def disk_full(self: object, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("menshen.spool.Spool.write", disk_full)
    assert _feed(ctx, SAMPLES / "clean-specialist.eml") == Milter.TEMPFAIL
    assert ctx._reply is not None and ctx._reply[0] == "451"


def test_lf_only_feed_is_still_parsed(milter_with: Callable[[Engine], RecordingCtx]) -> None:
    ctx = milter_with(_engine())
    raw = io.BytesIO(b"From: a@b.example\nSubject: cialis deal\n\nbuy now\n")
    assert ctx._feedFile(raw, "a@b.example", "c@d.example") == Milter.REJECT


# --- quotas at RCPT -------------------------------------------------------------------------

QUOTA_CONFIG = """
quotas:
  enabled: true
  store: {type: memory}
  rules:
    - {name: two-a-day, key: sender, limit: 2, per: day}
"""


@pytest.fixture
def quota_milter_with(
    monkeypatch: pytest.MonkeyPatch, counter: ConnectionCounter
) -> Callable[[Engine], RecordingCtx]:
    def connect(engine: Engine) -> RecordingCtx:
        spool = SpoolSettings(memory_bytes=1 << 20, cap_bytes=10 << 20, directory=None)
        logger = logging.getLogger("menshen.test")
        monkeypatch.setattr(
            Milter,
            "factory",
            lambda: QuotaCheckingMilter(lambda: engine, spool, counter, logger),
        )
        ctx = RecordingCtx()
        ctx._setsymval("i", "4TestQ2")
        assert ctx._connect(host="client.example", helo="client.example", ip="192.0.2.7") == (
            Milter.CONTINUE
        )
        return ctx

    return connect


def test_rcpt_is_a_reply_step_only_for_the_quota_checking_milter() -> None:
    assert GuardMilter.protocol_mask() & Milter.P_NR_RCPT == 0  # RCPT is a no-reply step
    assert QuotaCheckingMilter.protocol_mask() & Milter.P_NR_RCPT  # RCPT gets an answer
    nr_rest = Milter.P_NR_MAIL | Milter.P_NR_HDR | Milter.P_NR_BODY
    assert QuotaCheckingMilter.protocol_mask() & nr_rest == GuardMilter.protocol_mask() & nr_rest


def test_a_used_up_quota_refuses_at_rcpt_before_the_body(
    quota_milter_with: Callable[[Engine], RecordingCtx],
) -> None:
    engine = _engine(QUOTA_CONFIG)
    ctx = quota_milter_with(engine)
    sample = SAMPLES / "clean-chinese-business.eml"
    assert _feed(ctx, sample) == Milter.ACCEPT
    assert _feed(ctx, sample) == Milter.ACCEPT
    assert _feed(ctx, sample) == Milter.TEMPFAIL  # refused at RCPT this time
    assert ctx._reply is not None and ctx._reply[:2] == ("451", "4.7.1")
    assert "quota two-a-day" in ctx._reply[2]
    # Another sender on the same connection is not held back.
    assert _feed(ctx, sample, sender="other@sender.example") == Milter.ACCEPT
