"""The shipped alert rules and dashboard: valid, tested with promtool, and about real metrics.

promtool comes from Debian's `prometheus` package (`make deps`). Without it these tests skip,
except under CI=true, where a missing promtool is a failure.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci import unavailable
from prometheus_client import CollectorRegistry

from menshen.metrics import Metrics, metric_names

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "packaging" / "prometheus" / "menshen-alerts.yml"
RULE_TESTS = ROOT / "packaging" / "prometheus" / "tests" / "menshen-alerts.test.yml"
DASHBOARD = ROOT / "packaging" / "grafana" / "menshen.json"
METRIC = re.compile(r"\b(menshen_[a-z0-9_]+|[a-z_]+:menshen_[a-z0-9_]+:[a-z0-9_]+)\b")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool not found: install Debian's 'prometheus' package (make deps)")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def known_names() -> set[str]:
    names = set(metric_names(_registry()))
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        names.update(rule["record"] for rule in group["rules"] if "record" in rule)
    return names


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Metrics(registry)
    return registry


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def rule_exprs() -> list[str]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def test_promtool_checks_the_rules() -> None:
    result = run(promtool(), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = run(promtool(), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
    }
    assert alerts == tested


@pytest.mark.parametrize(
    ("source", "exprs"), [("rules", rule_exprs), ("dashboard", dashboard_exprs)]
)
def test_every_expression_names_an_existing_metric(source: str, exprs: Any) -> None:
    known = known_names()
    found = 0
    for expr in exprs():
        for name in METRIC.findall(expr):
            found += 1
            assert name in known, f"{source}: {name} in {expr!r} is not exported by menshen"
    assert found > 10


def test_the_dashboard_is_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] == "menshen"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
