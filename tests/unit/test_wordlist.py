"""Wordlist loading: format rules and error collection."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest

from menshen.keywords.wordlist import WordlistError, load_wordlist, load_wordlist_dir


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


FORMAT_CASES = {
    "plain": (b"foo bar\n", ["foo bar"]),
    "comments_and_blanks": (b"# header\n\nterm one\n   \n  # indented comment\n", ["term one"]),
    "hash_inside_term": (b"c#sharp\n", ["c#sharp"]),
    "bom": (b"\xef\xbb\xbfterm\n", ["term"]),
    "crlf": (b"one\r\ntwo\r\n", ["one", "two"]),
    "surrounding_whitespace": (b"  \tterm  \n", ["term"]),
    "no_final_newline": (b"a1b2c3", ["a1b2c3"]),
    "invisible_only_skipped": ("\u200b\n代开发票\n".encode(), ["代开发票"]),
    "traditional_kept_as_written": ("代開發票\n".encode(), ["代開發票"]),
}


@pytest.mark.parametrize(("data", "expected"), FORMAT_CASES.values(), ids=FORMAT_CASES.keys())
def test_format(tmp_path: Path, data: bytes, expected: list[str]) -> None:
    wordlist = load_wordlist(write(tmp_path / "cat.txt", data))
    assert [t.text for t in wordlist.terms] == expected
    assert wordlist.category == "cat"


def test_term_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "invoice_fraud.txt", "# x\n\n代開發票\n".encode())
    (term,) = load_wordlist(path).terms
    assert (term.text, term.normalised, term.category, term.source, term.line) == (
        "代開發票",
        "代开发票",
        "invoice_fraud",
        str(path),
        3,
    )


def test_all_problems_collected(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", b"ok\n\xff\xfe bad\nfine\nnul\x00here\n")
    write(tmp_path / "b.txt", b"tab\tok\nbell\x07\n")
    with pytest.raises(WordlistError) as info:
        load_wordlist_dir(tmp_path)
    problems = info.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{tmp_path / 'a.txt'}:2: invalid UTF-8")
    assert problems[1].startswith(f"{tmp_path / 'a.txt'}:4: control character U+0000")
    assert problems[2].startswith(f"{tmp_path / 'b.txt'}:2: control character U+0007")


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text("x")
    with pytest.raises(WordlistError, match=r"no \*\.txt wordlists"):
        load_wordlist_dir(tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(WordlistError, match="cannot read"):
        load_wordlist(tmp_path / "missing.txt")


def test_bad_category_name(tmp_path: Path) -> None:
    with pytest.raises(WordlistError, match="not a category name"):
        load_wordlist(write(tmp_path / "bad name.txt", b"x\n"))


def test_directory_sorted(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", b"bbb\n")
    write(tmp_path / "a.txt", b"aaa\n")
    write(tmp_path / "c.text", b"ccc\n")
    assert [w.category for w in load_wordlist_dir(tmp_path)] == ["a", "b"]
    assert [w.category for w in load_wordlist_dir(str(tmp_path))] == ["a", "b"]


def test_builtin_wordlists_via_resources() -> None:
    wordlists = load_wordlist_dir(files("menshen.builtin_wordlists"))
    categories = {w.category for w in wordlists}
    assert {"invoice_fraud", "gambling", "phishing", "confidential", "pharma_spam"} <= categories
    assert all(len(w.terms) >= 30 for w in wordlists)
