"""Metrics: what each verdict adds, bounded labels, the HTTP endpoint and `menshen stats`.

Every test builds its own CollectorRegistry, as the daemon does: nothing is recorded on
prometheus-client's global registry.
"""

from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from menshen.clientrates import ClientFailureWindow
from menshen.config import parse_config
from menshen.metrics import MAX_LABEL_VALUES, OTHER, BoundedLabel, Metrics, MetricsServer
from menshen.model import (
    AV_ERROR,
    AV_INFECTED,
    AV_SKIPPED,
    KEYWORD_HIT,
    Action,
    Envelope,
    Finding,
    Verdict,
)
from menshen.operations import start_operations
from menshen.stats import render, summarise

ENVELOPE = Envelope(client_ip="192.0.2.7", sender="alice@example.com", recipients=("b@x.test",))
TIMINGS = (("extract", 0.001), ("keywords", 0.002), ("policy", 0.0001), ("total", 0.0031))


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def kw(category: str, term: str = "t") -> Finding:
    return Finding(scanner="keywords", code=KEYWORD_HIT, category=category, term=term)


@dataclass(frozen=True)
class Case:
    name: str
    verdict: Verdict
    expect: dict[tuple[str, tuple[tuple[str, str], ...]], float]


CASES = [
    Case(
        "clean accept",
        Verdict(Action.ACCEPT, None, "no policy hit", timings=TIMINGS),
        {
            ("menshen_messages_total", (("action", "accept"), ("mode", "enforce"))): 1,
            ("menshen_message_scan_seconds_count", ()): 1,
            ("menshen_stage_duration_seconds_count", (("stage", "keywords"),)): 1,
        },
    ),
    Case(
        "two terms of one category count one message of that category",
        Verdict(
            Action.REJECT,
            None,
            "keyword category fraud",
            findings=(kw("fraud", "a"), kw("fraud", "b"), kw("phish")),
        ),
        {
            ("menshen_messages_total", (("action", "reject"), ("mode", "enforce"))): 1,
            ("menshen_keyword_messages_total", (("category", "fraud"),)): 1,
            ("menshen_keyword_messages_total", (("category", "phish"),)): 1,
            (
                "menshen_findings_total",
                (("scanner", "keywords"), ("code", KEYWORD_HIT), ("category", "fraud")),
            ): 2,
        },
    ),
    Case(
        "monitor mode counts what enforce would have done",
        Verdict(Action.ACCEPT, None, "keyword category fraud", monitored_action=Action.REJECT),
        {
            ("menshen_messages_total", (("action", "reject"), ("mode", "monitor"))): 1,
            ("menshen_messages_total", (("action", "accept"), ("mode", "enforce"))): 0,
        },
    ),
    Case(
        "clamd error",
        Verdict(
            Action.TEMPFAIL,
            None,
            "antivirus unavailable",
            findings=(Finding(scanner="antivirus", code=AV_ERROR, detail="timeout"),),
            timings=(("antivirus", 2.0), ("total", 2.0)),
        ),
        {
            ("menshen_clamd_scans_total", (("result", "error"),)): 1,
            ("menshen_clamd_scans_total", (("result", "clean"),)): 0,
        },
    ),
    Case(
        "clamd infected beats skipped",
        Verdict(
            Action.REJECT,
            None,
            "virus",
            findings=(
                Finding(scanner="antivirus", code=AV_SKIPPED),
                Finding(scanner="antivirus", code=AV_INFECTED, detail="Eicar-Signature"),
            ),
            timings=(("antivirus", 0.01),),
        ),
        {("menshen_clamd_scans_total", (("result", "infected"),)): 1},
    ),
    Case(
        "clamd clean when the stage ran without findings",
        Verdict(Action.ACCEPT, None, "no policy hit", timings=(("antivirus", 0.01),)),
        {("menshen_clamd_scans_total", (("result", "clean"),)): 1},
    ),
    Case(
        "no antivirus stage, no clamd count",
        Verdict(Action.ACCEPT, None, "no policy hit", timings=TIMINGS),
        {("menshen_clamd_scans_total", (("result", "clean"),)): 0},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_verdict_adds_exactly_this(case: Case) -> None:
    registry = CollectorRegistry()
    Metrics(registry).message(ENVELOPE, case.verdict, 1234)
    for (name, labels), expected in case.expect.items():
        assert value(registry, name, **dict(labels)) == expected, (name, labels)
    assert value(registry, "menshen_scanned_bytes_total") == 1234


def test_addresses_terms_and_ids_never_become_label_values() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    envelope = Envelope(client_ip="198.51.100.9", sender="secret@corp.test", queue_id="4AbCdE")
    verdict = Verdict(
        Action.REJECT,
        None,
        "virus",
        findings=(
            kw("fraud", term="代开发票"),
            Finding(scanner="antivirus", code=AV_INFECTED, detail="Win.Test.Virus"),
        ),
    )
    metrics.message(envelope, verdict, 10)
    labels = {
        value
        for family in registry.collect()
        for sample in family.samples
        for value in sample.labels.values()
    }
    for secret in ("198.51.100.9", "secret@corp.test", "4AbCdE", "代开发票", "Win.Test.Virus"):
        assert secret not in labels


def test_operator_named_labels_are_capped() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for index in range(MAX_LABEL_VALUES + 10):
        metrics.message(ENVELOPE, Verdict(Action.ACCEPT, None, "", findings=(kw(f"c{index}"),)), 1)
    categories = {
        sample.labels["category"]
        for family in registry.collect()
        if family.name == "menshen_keyword_messages"
        for sample in family.samples
    }
    assert len(categories) == MAX_LABEL_VALUES + 1
    assert value(registry, "menshen_keyword_messages_total", category=OTHER) == 10


def test_fixed_label_sets_admit_only_their_values() -> None:
    stages = BoundedLabel(allowed=("extract", "policy"))
    assert [stages(s) for s in ("extract", "policy", "bogus")] == ["extract", "policy", OTHER]


def test_quota_reload_and_connection_events() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry, clock=lambda: 1700000000.0)
    metrics.quota_warning("per_sender_day")
    metrics.quota_limit_hit("per_sender_day")
    metrics.quota_limit_hit()
    metrics.quota_backend_up(False)
    metrics.reload(False)
    metrics.connections_in_flight(3)
    assert value(registry, "menshen_quota_warnings_total", rule="per_sender_day") == 1
    assert value(registry, "menshen_quota_limits_hit_total", rule="per_sender_day") == 1
    assert value(registry, "menshen_quota_limits_hit_total", rule="") == 1
    assert value(registry, "menshen_quota_backend_up") == 0
    assert value(registry, "menshen_reloads_total", result="failed") == 1
    assert value(registry, "menshen_config_last_reload_successful") == 0
    assert value(registry, "menshen_milter_connections_active") == 3
    metrics.reload(True)
    assert value(registry, "menshen_config_last_reload_successful") == 1
    assert value(registry, "menshen_config_last_reload_success_timestamp_seconds") == 1.7e9


def test_nothing_is_recorded_on_the_global_registry() -> None:
    before = {family.name for family in REGISTRY.collect()}
    Metrics(CollectorRegistry()).message(ENVELOPE, CASES[0].verdict, 1)
    assert not any(
        name.startswith("menshen") for name in {f.name for f in REGISTRY.collect()} - before
    )


def test_client_window_feeds_the_gauges_at_scrape_time() -> None:
    now = [0.0]
    window = ClientFailureWindow(window_seconds=100, min_messages=4, clock=lambda: now[0])
    registry = CollectorRegistry()
    Metrics(registry).watch_clients(window.snapshot)
    for failed in (True, True, False, False):
        window.record("192.0.2.1", failed)
    assert value(registry, "menshen_clients_over_failure_ratio") == 1
    assert value(registry, "menshen_client_failure_ratio_max") == 0.5
    now[0] = 200.0  # the window slid past every message
    assert value(registry, "menshen_clients_over_failure_ratio") == 0


def test_endpoint_serves_the_registry_and_stats_reads_it() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.message(ENVELOPE, CASES[1].verdict, 100)
    server = MetricsServer(registry, "127.0.0.1", 0)
    host, port = server.start()
    try:
        url = f"http://{host}:{port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    finally:
        server.stop()
    assert 'menshen_messages_total{action="reject",mode="enforce"} 1.0' in text
    summary = summarise(text)
    assert summary["messages"] == {"accept": 0, "quarantine": 0, "reject": 1, "tempfail": 0}
    assert summary["keyword_messages"] == {"fraud": 1, "phish": 1}
    assert "messages          accept 0  quarantine 0  reject 1  tempfail 0" in render(summary, url)


def test_a_taken_port_is_an_oserror() -> None:
    registry = CollectorRegistry()
    first = MetricsServer(registry, "127.0.0.1", 0)
    _, port = first.start()
    try:
        with pytest.raises(OSError):
            MetricsServer(registry, "127.0.0.1", port).start()
    finally:
        first.stop()


def test_operations_without_http_record_but_listen_nowhere(tmp_path: Path) -> None:
    config = parse_config("metrics:\n  port: 1\n", "test.yml", base_dir=tmp_path)
    registry = CollectorRegistry()
    operations = start_operations(config, logging.getLogger("test"), registry, serve_http=False)
    try:
        assert operations.server is None
        operations.observe(ENVELOPE, CASES[0].verdict, 5)
        assert value(registry, "menshen_messages_total", action="accept", mode="enforce") == 1
    finally:
        operations.close()
