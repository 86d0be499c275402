"""menshen.yml: defaults, every kind of error reported at once with file:line and key path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from menshen.config import (
    BUILTIN_CONFIG_NAME,
    ConfigError,
    KeywordAction,
    Mode,
    builtin_config_text,
    config_path,
    load_config,
    parse_config,
)
from menshen.model import Action, ExtractionLimits
from menshen.scanners.attachments import DEFAULT_BLOCKED_EXTENSIONS


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "/etc/menshen/menshen.yml", base_dir=None)
    return caught.value.problems


def test_builtin_default_loads_and_matches_the_code_defaults() -> None:
    config = load_config(None)
    assert config.source == BUILTIN_CONFIG_NAME
    assert config.policy.mode is Mode.ENFORCE
    assert config.limits == ExtractionLimits()
    assert config.policy.on_limits is Action.QUARANTINE
    assert config.policy.wordlists.directory is None
    assert config.policy.wordlists.rule_for("invoice_fraud").action is KeywordAction.REJECT


def test_empty_file_means_exactly_the_shipped_defaults() -> None:
    # The shipped file says "an absent key takes the value shown here": hold it to that.
    empty = parse_config("", BUILTIN_CONFIG_NAME, base_dir=None)
    builtin = load_config(None)
    assert empty.limits == builtin.limits
    assert empty.milter == builtin.milter
    assert dict(empty.policy.wordlists.categories) == dict(builtin.policy.wordlists.categories)
    assert empty.policy.wordlists.default_rule == builtin.policy.wordlists.default_rule
    for name in ("mode", "scoring", "on_limits", "allow", "deny", "replies", "headers"):
        assert getattr(empty.policy, name) == getattr(builtin.policy, name), name
    assert dict(empty.policy.rules) == dict(builtin.policy.rules)
    assert empty.antivirus == builtin.antivirus
    # The shipped file spells out the scanner's default list; an absent key means that list.
    assert empty.attachments.blocked_extensions is None
    assert builtin.attachments.blocked_extensions == DEFAULT_BLOCKED_EXTENSIONS
    assert replace(empty.attachments, blocked_extensions=DEFAULT_BLOCKED_EXTENSIONS) == (
        builtin.attachments
    )


def test_antivirus_and_attachment_settings() -> None:
    config = parse_config(
        "antivirus:\n  enabled: true\n  clamd: [unix:/run/a.ctl, tcp:127.0.0.1:3310]\n"
        "  on_error: accept\n  skip_above_bytes: 1000\n"
        "attachments:\n  blocked_extensions: [.EXE, scr]\n"
        "  actions:\n    encrypted_archive: reject\n",
        "x.yml",
        base_dir=None,
    )
    assert config.antivirus.enabled
    assert config.antivirus.clamd == ("unix:/run/a.ctl", "tcp:127.0.0.1:3310")
    assert config.antivirus.skip_above_bytes == 1000
    assert config.policy.rules["AV_ERROR"].action is Action.ACCEPT
    assert config.policy.rules["AV_INFECTED"].action is Action.REJECT
    assert config.attachments.blocked_extensions == frozenset({"exe", "scr"})
    encrypted = config.policy.rules["ATTACHMENT_ENCRYPTED_ARCHIVE"]
    assert encrypted.action is Action.REJECT
    assert encrypted.reply is not None and encrypted.reply.code == "550"


def test_categories_given_replace_the_shipped_table() -> None:
    config = parse_config(
        "wordlists:\n  categories:\n    mine: {action: tag}\n", "x.yml", base_dir=None
    )
    assert list(config.policy.wordlists.categories) == ["mine"]


def test_every_key_of_the_builtin_file_is_documented_by_a_comment() -> None:
    text = builtin_config_text()
    assert text.startswith("# menshen.yml")
    assert text.count("#") > 40


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("unknown top-level key", "colour: red\n", ":1: colour: unknown key"),
        ("typo gets a hint", "limits:\n  max_partz: 3\n", "did you mean 'max_parts'?"),
        ("negative integer", "limits:\n  max_parts: -1\n", ":2: limits.max_parts: expected an"),
        ("boolean is not an integer", "limits:\n  max_parts: true\n", "limits.max_parts"),
        ("bad mode", "mode: loud\n", ":1: mode: expected one of enforce, monitor"),
        (
            "bad category action",
            "wordlists:\n  categories:\n    gambling: {action: bounce}\n",
            ":3: wordlists.categories.gambling.action: expected one of reject",
        ),
        ("reject reply must be 5xx", "replies:\n  reject: 451 4.3.0 no\n", "replies.reject"),
        ("tempfail reply must be 4xx", "replies:\n  tempfail: 550 5.7.1 no\n", "replies.tempfail"),
        (
            "bad CIDR",
            "lists:\n  deny:\n    client_ips:\n      - 10.0.0.0/8\n      - 300.1.1.1\n",
            ":5: lists.deny.client_ips[1]: not an IP address or CIDR",
        ),
        ("bad address", "lists:\n  allow:\n    senders: [bob]\n", "lists.allow.senders[0]"),
        ("section of wrong type", "limits: 5\n", ":1: limits: expected a mapping"),
        ("top level not a mapping", "- a\n- b\n", "expected a mapping of sections"),
        ("duplicate key", "mode: enforce\nmode: monitor\n", ":2: duplicate key 'mode'"),
        ("syntax error", "limits: [\n", "menshen.yml:2:"),
        ("python tags refused", "mode: !!python/object:os.system x\n", "menshen.yml:1:"),
        ("bad header name", "headers:\n  verdict: 'X Bad: y'\n", "headers.verdict"),
        ("bad clamd address", "antivirus:\n  clamd: [/run/clamd.ctl]\n", "antivirus.clamd[0]"),
        ("enabled must be a boolean", "antivirus:\n  enabled: yes please\n", "antivirus.enabled"),
        (
            "infected reply must be 5xx",
            "antivirus:\n  infected_reply: 451 4.7.1 x\n",
            "antivirus.infected_reply",
        ),
        (
            "unknown attachment rule",
            "attachments:\n  actions:\n    exe_files: reject\n",
            "attachments.actions.exe_files: unknown key",
        ),
        (
            "bad extension",
            "attachments:\n  blocked_extensions: ['e x e']\n",
            "attachments.blocked_extensions[0]",
        ),
    ],
)
def test_error_names_file_line_and_key(name: str, text: str, expected: str) -> None:
    problems = _errors(text)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("/etc/menshen/menshen.yml:") for p in problems)


def test_all_errors_are_reported_at_once_in_file_order() -> None:
    problems = _errors(
        "mode: loud\nlimits:\n  max_parts: 0\n  max_depth: 3\nscoring:\n  reject_at: -1\n"
    )
    assert len(problems) == 4
    lines = [int(p.split(":")[1]) for p in problems]
    assert lines == sorted(lines)


def test_relative_wordlist_directory_is_resolved_against_the_config_file(tmp_path: Path) -> None:
    config_file = tmp_path / "menshen.yml"
    config_file.write_text("wordlists:\n  directory: lists\n", encoding="utf-8")
    config = load_config(config_file)
    assert config.policy.wordlists.directory == tmp_path / "lists"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yml")
    assert "missing.yml: cannot read" in caught.value.problems[0]


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "menshen.yml"
    path.write_bytes(b"mode: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_config_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MENSHEN_CONFIG", "/from/env.yml")
    assert config_path("/explicit.yml") == Path("/explicit.yml")
    assert config_path(None) == Path("/from/env.yml")


def test_lists_are_normalised() -> None:
    config = parse_config(
        "lists:\n  allow:\n    senders: ['<Boss@Example.COM>']\n    domains: [Example.org.]\n",
        "x.yml",
        base_dir=None,
    )
    assert config.policy.allow.senders == frozenset({"boss@example.com"})
    assert config.policy.allow.domains == frozenset({"example.org"})


def test_config_is_immutable() -> None:
    config = load_config(None)
    with pytest.raises(AttributeError):
        config.limits.max_parts = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.policy.wordlists.categories["x"] = None  # type: ignore[index]
