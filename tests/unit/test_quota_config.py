"""The `quotas` section of menshen.yml: what it builds, and every mistake with file:line."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from menshen.config import (
    CalendarPeriod,
    ConfigError,
    NullSender,
    QuotaCount,
    QuotaKey,
    QuotaStoreKind,
    QuotaWindow,
    StoreFailure,
    load_config,
    parse_config,
)
from menshen.model import Action

FULL = """\
quotas:
  enabled: true
  timezone: Asia/Shanghai
  null_sender: count
  check_at_rcpt: false
  warn_at: 0.9
  on_exceeded: reject
  store:
    type: redis
    path: /var/lib/menshen/q.sqlite3
    redis_url: redis://10.0.0.5:6379/2
    timeout_seconds: 0.25
    on_error: tempfail
    retry_seconds: 3
  rules:
    - name: sender-month
      key: account
      limit: 500000
      per: month
      overrides:
        News@Example.com: 2000000
        ceo@example.com: unlimited
    - name: rcpt-minute
      key: sender
      count: recipients
      limit: 100
      per: minute
      warn_at: null
      exempt: [noreply@example.com]
    - name: client-15m
      key: client_ip
      limit: 2000
      per: 15m
      ipv4_prefix: 24
      exempt: [10.0.0.0/8]
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "/etc/menshen/menshen.yml", base_dir=None)
    return caught.value.problems


def test_a_complete_section_builds_every_field() -> None:
    quotas = parse_config(FULL, "m.yml", base_dir=None).quotas
    assert quotas.enabled and not quotas.check_at_rcpt
    assert quotas.zone == ZoneInfo("Asia/Shanghai")
    assert quotas.null_sender is NullSender.COUNT
    assert quotas.store.kind is QuotaStoreKind.REDIS
    assert quotas.store.on_error is StoreFailure.TEMPFAIL
    assert quotas.store.redis_url == "redis://10.0.0.5:6379/2"
    month, minute, client = quotas.rules
    assert (month.key, month.limit, month.window) == (
        QuotaKey.ACCOUNT,
        500000,
        QuotaWindow(calendar=CalendarPeriod.MONTH),
    )
    assert dict(month.overrides) == {"news@example.com": 2000000, "ceo@example.com": None}
    assert month.warn_at == 0.9  # the section's level
    assert (minute.count, minute.window.seconds, minute.warn_at) == (
        QuotaCount.RECIPIENTS,
        60,
        None,
    )
    assert minute.exempt == frozenset({"noreply@example.com"})
    assert (client.window.seconds, client.ipv4_prefix) == (900, 24)
    assert [str(n) for n in client.exempt_networks] == ["10.0.0.0/8"]


def test_on_exceeded_reject_gets_a_5xx_reply() -> None:
    rules = parse_config(FULL, "m.yml", base_dir=None).policy.rules
    rule = rules["QUOTA_EXCEEDED"]
    assert rule.action is Action.REJECT
    assert rule.reply is not None and rule.reply.code == "550"


def test_defaults_are_off_with_the_embedded_store() -> None:
    quotas = load_config(None).quotas
    assert not quotas.enabled and quotas.rules == ()
    assert quotas.store.kind is QuotaStoreKind.SQLITE
    assert quotas.store.on_error is StoreFailure.LOCAL
    default_reply = load_config(None).policy.rules["QUOTA_EXCEEDED"].reply
    assert default_reply is not None and str(default_reply).startswith("451 4.7.1 ")


def test_a_relative_store_path_lives_in_the_state_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    assert load_config(None).quotas.store.path == tmp_path / "quotas.sqlite3"
    monkeypatch.delenv("STATE_DIRECTORY")
    assert load_config(None).quotas.store.path == Path("/var/lib/menshen/quotas.sqlite3")


def test_utc_and_local_zones() -> None:
    utc = parse_config("quotas: {timezone: UTC}", "m.yml", base_dir=None).quotas
    assert utc.zone is UTC
    local = parse_config("quotas: {timezone: local}", "m.yml", base_dir=None).quotas
    assert local.zone_name == "local"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "quotas:\n  timezone: Mars/Olympus\n",
            "menshen.yml:2: quotas.timezone: unknown time zone 'Mars/Olympus'",
            id="unknown-zone",
        ),
        pytest.param(
            "quotas:\n  rules:\n    - {name: a, key: sender, limit: 1, per: fortnight}\n",
            "menshen.yml:3: quotas.rules[0].per: expected day, week, month",
            id="unknown-window",
        ),
        pytest.param(
            "quotas:\n  rules:\n    - {name: a, key: recipient, limit: 1, per: day}\n",
            "menshen.yml:3: quotas.rules[0].key: expected one of account",
            id="unknown-key-type",
        ),
        pytest.param(
            "quotas:\n  rules:\n    - {name: a, key: sender, per: day}\n",
            "menshen.yml:3: quotas.rules[0].limit: required",
            id="missing-limit",
        ),
        pytest.param(
            "quotas:\n  rules:\n    - {name: a, key: sender, limit: 1, per: day, windw: 1}\n",
            "menshen.yml:3: quotas.rules[0].windw: unknown key",
            id="unknown-rule-key",
        ),
        pytest.param(
            "quotas:\n  rules:\n    - {name: a, key: sender, limit: 1, per: day}\n"
            "    - {name: a, key: sender, limit: 2, per: day}\n",
            "menshen.yml:4: quotas.rules[1].name: duplicate name",
            id="duplicate-name",
        ),
        pytest.param(
            "quotas:\n  on_exceeded: quarantine\n",
            "menshen.yml:2: quotas.on_exceeded: expected tempfail or reject",
            id="exceeded-must-refuse",
        ),
        pytest.param(
            "quotas:\n  store:\n    type: redis\n    redis_url: http://x\n",
            "menshen.yml:4: quotas.store.redis_url: expected redis://",
            id="bad-redis-url",
        ),
        pytest.param(
            "quotas:\n  rules:\n    - name: a\n      key: client_ip\n      limit: 1\n"
            "      per: day\n      exempt: [10.0.0.0/33]\n",
            "menshen.yml:7: quotas.rules[0].exempt[0]: not an IP address or CIDR",
            id="bad-exempt-network",
        ),
        pytest.param(
            "quotas:\n  rules:\n    - name: a\n      key: sender\n      limit: 1\n"
            "      per: day\n      overrides:\n        x@y: lots\n",
            "menshen.yml:8: quotas.rules[0].overrides.x@y: expected an integer >= 0 or unlimited",
            id="bad-override",
        ),
    ],
)
def test_mistakes_name_file_line_and_key(text: str, expected: str) -> None:
    problems = errors(text)
    assert any(expected in problem for problem in problems), problems


def test_every_mistake_is_reported_at_once() -> None:
    problems = errors(
        "quotas:\n  timezone: Nowhere/Land\n  rules:\n"
        "    - {name: a, key: nobody, limit: -1, per: day}\n"
    )
    assert len(problems) == 3, problems
