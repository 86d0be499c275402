"""Loading wordlist files.

In:  a wordlist file (``load_wordlist``) or a directory of them (``load_wordlist_dir``), given as
     a ``pathlib.Path``/``str`` or an ``importlib.resources`` Traversable. Format: UTF-8 text,
     one term per line; a line whose first non-blank character is ``#`` is a comment (there
     are no inline comments, ``#`` may be part of a term); blank lines are ignored; a leading
     BOM and CRLF line ends are tolerated; surrounding whitespace is stripped. One category per
     file, named by the file stem (``invoice_fraud.txt`` is category ``invoice_fraud``).
Out: frozen ``Wordlist`` values holding ``Term``s with their normalised form. Terms that
     normalise to nothing are skipped here (``menshen wordlist lint`` reports them).
Fails: ``WordlistError`` listing every problem found (``file:line: what``): unreadable file,
     invalid UTF-8, NUL or other control characters, a file name that is not a usable category,
     a directory without wordlists. Nothing is returned unless everything loaded.
Thread safety: pure functions returning immutable values.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Union

from menshen.text.normalise import normalise

__all__ = [
    "RawLine",
    "Term",
    "Wordlist",
    "WordlistError",
    "load_wordlist",
    "load_wordlist_dir",
    "read_lines",
    "wordlist_files",
]

PathLike = Union[str, "os.PathLike[str]", Traversable]

_BOM = b"\xef\xbb\xbf"
# Category names end up in menshen.yml keys, audit lines and metric label values.
_CATEGORY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
# Controls other than tab have no business in a term and usually mean a binary or mangled file.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as written in the file, stripped
    normalised: str
    category: str
    source: str  # the file it came from
    line: int  # 1-based


@dataclass(frozen=True, slots=True)
class Wordlist:
    category: str
    source: str
    terms: tuple[Term, ...]


class WordlistError(Exception):
    """One or more wordlist files could not be loaded; ``problems`` lists them all."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class RawLine:
    """One line of a wordlist file as read, before it becomes a term (lint needs these)."""

    line: int
    text: str  # stripped; "" for blank lines and lines that failed to decode
    is_comment: bool
    problem: str = ""  # why the line is unusable, "" when it is fine
    crlf: bool = False


def _as_entry(path: PathLike) -> Path | Traversable:
    if isinstance(path, str | os.PathLike):
        return Path(path)
    return path


def category_of(path: PathLike) -> str:
    name = _as_entry(path).name
    return name[: -len(".txt")] if name.endswith(".txt") else name.rsplit(".", 1)[0]


def read_lines(path: PathLike) -> tuple[list[RawLine], bool, str]:
    """The lines of one file, whether it starts with a BOM, and a file-level problem or ""."""
    entry = _as_entry(path)
    try:
        data = entry.read_bytes()
    except OSError as exc:
        return [], False, f"cannot read: {exc.strerror or exc}"
    bom = data.startswith(_BOM)
    if bom:
        data = data[len(_BOM) :]
    lines: list[RawLine] = []
    for number, chunk in enumerate(data.split(b"\n"), start=1):
        crlf = chunk.endswith(b"\r")
        raw = chunk[:-1] if crlf else chunk
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            lines.append(RawLine(number, "", False, f"invalid UTF-8 at byte {exc.start + 1}", crlf))
            continue
        text = decoded.strip()
        control = _CONTROL.search(text)
        if control is not None:
            problem = f"control character U+{ord(control.group()):04X} in term"
            lines.append(RawLine(number, "", False, problem, crlf))
            continue
        lines.append(RawLine(number, text, text.startswith("#"), "", crlf))
    return lines, bom, ""


def load_wordlist(path: PathLike) -> Wordlist:
    """Load one wordlist file; raise WordlistError listing every problem in it."""
    wordlist, problems = _load(path)
    if problems:
        raise WordlistError(problems)
    return wordlist


def _load(path: PathLike) -> tuple[Wordlist, list[str]]:
    source = str(path)
    category = category_of(path)
    problems: list[str] = []
    if not _CATEGORY.match(category):
        problems.append(
            f"{source}: file name {category!r} is not a category name "
            "(letters, digits, '_' and '-', ASCII)"
        )
    lines, _bom, problem = read_lines(path)
    if problem:
        problems.append(f"{source}: {problem}")
    terms: list[Term] = []
    for raw in lines:
        if raw.problem:
            problems.append(f"{source}:{raw.line}: {raw.problem}")
            continue
        if not raw.text or raw.is_comment:
            continue
        normalised = normalise(raw.text)
        if normalised:
            terms.append(Term(raw.text, normalised, category, source, raw.line))
    return Wordlist(category, source, tuple(terms)), problems


def wordlist_files(directory: PathLike) -> Iterator[Path | Traversable]:
    """The ``*.txt`` files of a directory, sorted by name (raises OSError if unreadable)."""
    entry = _as_entry(directory)
    files = [child for child in entry.iterdir() if child.name.endswith(".txt") and child.is_file()]
    yield from sorted(files, key=lambda child: child.name)


def load_wordlist_dir(directory: PathLike) -> tuple[Wordlist, ...]:
    """Load every ``*.txt`` of a directory; raise WordlistError listing all problems."""
    try:
        files = list(wordlist_files(directory))
    except OSError as exc:
        raise WordlistError([f"{directory}: cannot read directory: {exc}"]) from exc
    if not files:
        raise WordlistError([f"{directory}: no *.txt wordlists in directory"])
    problems: list[str] = []
    wordlists: list[Wordlist] = []
    for path in files:
        wordlist, found = _load(path)
        problems.extend(found)
        wordlists.append(wordlist)
    if problems:
        raise WordlistError(problems)
    return tuple(wordlists)
