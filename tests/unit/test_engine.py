"""The engine isolates failures: an unfinished check never becomes a clean verdict."""

from __future__ import annotations

import logging

import pytest

from menshen.config import load_config
from menshen.engine import Engine
from menshen.extraction import Extractor
from menshen.model import (
    INTERNAL_ERROR,
    Action,
    Envelope,
    ExtractionLimits,
    Finding,
    ParsedMessage,
)
from menshen.scanners.structure import StructureScanner

MESSAGE = b"From: a@example.com\r\nSubject: hello\r\n\r\nhello\r\n"


class ExplodingScanner:
    name = "exploding"

    def scan(self, message: ParsedMessage, envelope: Envelope) -> tuple[Finding, ...]:
        raise RuntimeError("boom")


class ExplodingExtractor(Extractor):
    def extract(self, raw: bytes) -> ParsedMessage:
        raise MemoryError


def _engine(*scanners: object, extractor: Extractor | None = None) -> Engine:
    policy = load_config(None).policy
    return Engine(extractor or Extractor(ExtractionLimits()), scanners, policy)  # type: ignore[arg-type]


def test_clean_message_is_accepted_with_timings() -> None:
    verdict = _engine(StructureScanner()).evaluate(Envelope(), MESSAGE)
    assert verdict.action is Action.ACCEPT
    stages = [stage for stage, _ in verdict.timings]
    assert stages == ["extract", "structure", "policy", "total"]


def test_a_failing_scanner_becomes_a_tempfail_and_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="menshen.engine"):
        verdict = _engine(ExplodingScanner()).evaluate(Envelope(queue_id="4AbC1"), MESSAGE)
    assert verdict.action is Action.TEMPFAIL
    assert verdict.reply is not None and verdict.reply.code == "451"
    assert Finding(scanner="exploding", code=INTERNAL_ERROR, detail="RuntimeError") in (
        verdict.findings
    )
    assert "4AbC1: scanner exploding failed" in caplog.text


def test_a_failing_extractor_becomes_a_tempfail() -> None:
    engine = _engine(StructureScanner(), extractor=ExplodingExtractor(ExtractionLimits()))
    verdict = engine.evaluate(Envelope(), MESSAGE)
    assert verdict.action is Action.TEMPFAIL


def test_heartbeat_is_called_between_stages() -> None:
    beats: list[int] = []
    _engine(StructureScanner(), StructureScanner()).evaluate(
        Envelope(), MESSAGE, heartbeat=lambda: beats.append(1)
    )
    assert len(beats) == 3  # after extraction and after each scanner


def test_limits_hit_quarantine_by_default() -> None:
    nested = b"Content-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for depth in range(1, 40):
        nested += (
            f"--b{depth - 1}\r\nContent-Type: multipart/mixed; boundary=b{depth}\r\n\r\n".encode()
        )
    engine = Engine(
        Extractor(ExtractionLimits(max_depth=8)), (StructureScanner(),), load_config(None).policy
    )
    verdict = engine.evaluate(Envelope(), nested)
    assert verdict.action is Action.QUARANTINE
    assert "MIME limit" in verdict.reason
