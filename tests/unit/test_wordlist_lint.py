"""Wordlist lint: each check, and the shipped lists lint clean."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from menshen.keywords.lint import lint_wordlists
from menshen.keywords.wordlist import load_wordlist

WORDLISTS = Path(__file__).resolve().parents[2] / "wordlists"


def lint_one(tmp_path: Path, name: str, data: bytes) -> list[str]:
    (tmp_path / name).write_bytes(data)
    return [str(issue) for issue in lint_wordlists(tmp_path)]


def test_duplicate_within_file(tmp_path: Path) -> None:
    out = lint_one(tmp_path, "a.txt", "代开发票\n代開發票\n".encode())
    assert out == [
        f"{tmp_path / 'a.txt'}:2: duplicate '代開發票' is the same term as '代开发票' "
        f"at {tmp_path / 'a.txt'}:1"
    ]


def test_duplicate_across_files_is_warning(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("online casino\n")
    (tmp_path / "b.txt").write_text("ONLINE  Casino\n")
    (issue,) = lint_wordlists(tmp_path)
    assert (issue.code, issue.severity, issue.line) == ("duplicate", "warning", 1)
    assert f"{tmp_path / 'a.txt'}:1" in issue.message


def test_empty(tmp_path: Path) -> None:
    (issue,) = lint_wordlists([_write(tmp_path, "a.txt", "ok term\n\u200b\u200d\n")])
    assert (issue.code, issue.line) == ("empty", 2)


def test_shadowed_cjk_substring(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("代开\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("xx\n代开发票\n", encoding="utf-8")
    codes = {(i.code, Path(i.source).name, i.line) for i in lint_wordlists(tmp_path)}
    assert ("shadowed", "b.txt", 2) in codes
    shadow = next(i for i in lint_wordlists(tmp_path) if i.code == "shadowed")
    assert "'代开' (a)" in shadow.message and f"{tmp_path / 'a.txt'}:1" in shadow.message


def test_shadowed_latin_whole_word_only(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("cialis\nspecialist deals\nbuy cialis now\n")
    shadowed = [i.line for i in lint_wordlists(tmp_path) if i.code == "shadowed"]
    assert shadowed == [3]


def test_short(tmp_path: Path) -> None:
    issues = lint_wordlists([_write(tmp_path, "a.txt", "赌\nab\nabc\n代开\n")])
    assert [(i.code, i.line) for i in issues] == [("short", 1), ("short", 2)]


def test_bom_and_crlf_info(tmp_path: Path) -> None:
    issues = lint_wordlists([_write_bytes(tmp_path, "a.txt", b"\xef\xbb\xbfone\r\ntwo\r\n")])
    assert {(i.code, i.severity) for i in issues} == {("bom", "info"), ("crlf", "info")}


def test_invalid_lines_reported(tmp_path: Path) -> None:
    issues = lint_wordlists([_write_bytes(tmp_path, "a.txt", b"good\n\xff\n")])
    assert [(i.code, i.line) for i in issues] == [("invalid", 2)]


def test_accepts_wordlist_values(tmp_path: Path) -> None:
    wordlist = load_wordlist(_write(tmp_path, "a.txt", "online casino\nonline casino\n"))
    assert [i.code for i in lint_wordlists([wordlist])] == ["duplicate"]


def test_shipped_wordlists_lint_clean() -> None:
    assert [str(i) for i in lint_wordlists(WORDLISTS)] == []
    assert [str(i) for i in lint_wordlists(files("menshen.builtin_wordlists"))] == []


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _write_bytes(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
