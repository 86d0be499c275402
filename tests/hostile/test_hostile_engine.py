"""Every hostile-input case through the real engine: a verdict, in bounded time and memory.

Each case of hostile_cases.CASES runs in a forked child (isolation.run_isolated) so that a
hang is killed and a memory blow-up stays in the child. A case passes when the engine
answered one of the verdicts the case allows, reported the limits and findings it must,
raised nothing (no INTERNAL_ERROR finding, no "internal error" limit, no traceback), and
stayed under the guards below. The guards catch hangs and explosions, not slowness: the
figures themselves go to docs/RELIABILITY.md (`make hostile-report`).
"""

from __future__ import annotations

import re

import pytest
from hostile_cases import CASES, HostileCase
from isolation import run_isolated

from menshen.engine import Engine

HANG_GUARD_SECONDS = 30.0  # evaluate() of one message; the extraction deadline is 20 s
KILL_AFTER_SECONDS = 120.0  # building the message included
MEMORY_GUARD_BYTES = 1 << 30  # RSS growth while evaluating one message
_SAFE_VALUE = re.compile(r"[\x20-\x7e]*")


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_case_gets_a_verdict(case: HostileCase, engine: Engine) -> None:
    result = run_isolated(case, lambda: engine, timeout=KILL_AFTER_SECONDS)
    assert result.error == "", result.error
    assert result.problems == (), result.problems
    assert result.action in {verdict.value for verdict in case.verdicts}, (
        f"{result.action}: {result.reason}"
    )
    assert case.limits <= set(result.limits), result.limits
    assert case.codes <= set(result.codes), result.codes
    assert result.wall_seconds < HANG_GUARD_SECONDS, result.wall_seconds
    assert result.rss_growth < MEMORY_GUARD_BYTES, result.rss_growth
    for name, value in result.headers:
        assert _SAFE_VALUE.fullmatch(value), (name, value)
    assert _SAFE_VALUE.fullmatch(result.reply), result.reply


def test_case_names_are_unique_and_table_ready() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    for case in CASES:
        assert re.fullmatch(r"[a-z0-9-]+", case.name), case.name
        assert "|" not in case.what and len(case.what) <= 80, case.what
        assert case.verdicts, case.name
