"""Sender-controlled text in log lines: one printable ASCII line, whatever came in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from menshen.printable import printable


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        pytest.param("a@example.com", "a@example.com", id="plain-address"),
        pytest.param("x\r\nwarning: forged", "x\\x0d\\x0awarning: forged", id="crlf"),
        pytest.param("a\x00b", "a\\x00b", id="nul"),
        pytest.param("\x1b[31mred", "\\x1b[31mred", id="ansi-escape"),
        pytest.param("del\x7f", "del\\x7f", id="delete"),
        pytest.param("张三@例子.中国", "\\u5f20\\u4e09@\\u4f8b\\u5b50.\\u4e2d\\u56fd", id="cjk"),
    ],
)
def test_cases(raw: str, shown: str) -> None:
    assert printable(raw) == shown


@given(st.text())
def test_always_one_printable_ascii_line(text: str) -> None:
    shown = printable(text, limit=10_000)
    assert all(0x20 <= ord(ch) < 0x7F for ch in shown)


def test_cut_to_the_limit() -> None:
    assert printable("x" * 1000, limit=40) == "x" * 40
