"""Quarantine helpers: reading menshen's reason from postcat output, refusing bad ids.

The round trip against a real Postfix is in tests/integration/test_operations.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from menshen.printable import printable
from menshen.quarantine import HoldQueue, NotHeldError, ToolResult, header_value

POSTCAT = """*** HEADER EXTRACTED hold/4ZkLmN1abc ***
Received: from client.menshen.test (localhost [127.0.0.1])
\tby mx.menshen.test (Postfix) with ESMTP id 4ZkLmN1abc
X-Menshen-Reason: forged by the sender
Subject: hi
X-Menshen-Verdict: quarantine; score=5; categories=confidential
X-Menshen-Reason: keyword category
 confidential
*** MESSAGE FILE END hold/4ZkLmN1abc ***
"""

HEADER_CASES = [
    ("the last copy, unfolded", "X-Menshen-Reason", "keyword category confidential"),
    ("case-insensitive", "x-menshen-reason", "keyword category confidential"),
    ("absent", "X-Other", ""),
]


@pytest.mark.parametrize(
    ("name", "header", "expected"), HEADER_CASES, ids=[c[0] for c in HEADER_CASES]
)
def test_reason_header(name: str, header: str, expected: str) -> None:
    assert header_value(POSTCAT, header) == expected


class NoTools:
    """A runner for ids that must be refused before any Postfix tool runs."""

    def __call__(self, argv: Sequence[str]) -> ToolResult:
        raise AssertionError(f"ran {argv}")


@pytest.mark.parametrize("queue_id", ["ALL", "-d", "../x", "", "4ZkL mN1", "a" * 40])
def test_ids_outside_postfix_alphabet_are_refused_before_any_tool(queue_id: str) -> None:
    queue = HoldQueue(None, "X-Menshen-Reason", runner=NoTools(), tool=lambda name: name)
    for act in (queue.release, queue.delete, queue.show):
        with pytest.raises(NotHeldError):
            act(queue_id)


def test_printable_values_cannot_drive_the_terminal() -> None:
    shown = printable("a\x1b[2J\r\nb\x07中")
    assert shown == "a\\x1b[2J\\x0d\\x0ab\\x07\\u4e2d"
    assert shown.isprintable()
