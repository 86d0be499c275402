"""Wordlist lint: problems an operator should fix before loading a list.

In:  a directory of ``*.txt`` wordlists (path or Traversable), or an iterable of wordlist files
     or ``Wordlist`` values (their ``source`` files are read again: lint needs the lines that the
     loader skips).
Out: ``LintIssue``s sorted by file and line, each printable as ``file:line: code message``:
     - ``invalid`` (error): a line or file the loader rejects (encoding, control characters);
     - ``duplicate`` (error in one file, warning across files): the same normalised term again,
       naming the first occurrence;
     - ``empty`` (error): the term normalises to nothing (only invisible characters, spaces);
     - ``shadowed`` (warning): another term, of any category, matches inside this one (as a
       substring for CJK edges, as a whole word for Latin edges), so every hit of this term is
       also a hit of the other;
     - ``short`` (warning): a single CJK character or fewer than three other characters;
     - ``bom`` / ``crlf`` (info): tolerated, but not the canonical form.
     The exit status policy belongs to the CLI.
Fails: never raises for bad content; unreadable files become ``invalid`` issues.
Thread safety: pure function.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources.abc import Traversable

from menshen.keywords.matcher import KeywordMatcher
from menshen.keywords.wordlist import (
    PathLike,
    Term,
    Wordlist,
    category_of,
    read_lines,
    wordlist_files,
)
from menshen.text.normalise import is_cjk, normalise

__all__ = ["LintIssue", "lint_wordlists"]

ERROR = "error"
WARNING = "warning"
INFO = "info"


@dataclass(frozen=True, slots=True)
class LintIssue:
    source: str
    line: int  # 0 for issues about the whole file
    code: str
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.code} {self.message}"


def _files(wordlists_or_dir: PathLike | Iterable[PathLike | Wordlist]) -> list[PathLike]:
    if isinstance(wordlists_or_dir, str | os.PathLike | Traversable):
        return list(wordlist_files(wordlists_or_dir))
    return [item.source if isinstance(item, Wordlist) else item for item in wordlists_or_dir]


def _is_short(normalised: str) -> bool:
    if len(normalised) == 1 and is_cjk(normalised):
        return True
    return len(normalised) < 3 and not any(is_cjk(ch) for ch in normalised)


def lint_wordlists(wordlists_or_dir: PathLike | Iterable[PathLike | Wordlist]) -> list[LintIssue]:
    """Lint wordlist files (see the module docstring for the checks)."""
    issues: list[LintIssue] = []
    try:
        files = _files(wordlists_or_dir)
    except OSError as exc:
        return [LintIssue(str(wordlists_or_dir), 0, "invalid", f"cannot read directory: {exc}")]
    first_seen: dict[str, Term] = {}
    unique: list[Term] = []
    for path in files:
        source = str(path)
        category = category_of(path)
        lines, bom, problem = read_lines(path)
        if problem:
            issues.append(LintIssue(source, 0, "invalid", problem))
            continue
        if bom:
            issues.append(LintIssue(source, 1, "bom", "file starts with a byte order mark", INFO))
        crlf = [raw.line for raw in lines if raw.crlf]
        if crlf:
            issues.append(
                LintIssue(source, crlf[0], "crlf", f"CRLF line ends ({len(crlf)} lines)", INFO)
            )
        for raw in lines:
            if raw.problem:
                issues.append(LintIssue(source, raw.line, "invalid", raw.problem))
                continue
            if not raw.text or raw.is_comment:
                continue
            normalised = normalise(raw.text)
            if not normalised:
                issues.append(
                    LintIssue(source, raw.line, "empty", f"{raw.text!r} normalises to nothing")
                )
                continue
            term = Term(raw.text, normalised, category, source, raw.line)
            earlier = first_seen.get(normalised)
            if earlier is not None:
                same_file = earlier.source == source
                issues.append(
                    LintIssue(
                        source,
                        raw.line,
                        "duplicate",
                        f"{raw.text!r} is the same term as {earlier.text!r} at "
                        f"{earlier.source}:{earlier.line}",
                        ERROR if same_file else WARNING,
                    )
                )
                continue
            first_seen[normalised] = term
            unique.append(term)
            if _is_short(normalised):
                issues.append(
                    LintIssue(
                        source,
                        raw.line,
                        "short",
                        f"{raw.text!r} is very short and will match ordinary text",
                        WARNING,
                    )
                )
    issues.extend(_shadowed(unique))
    issues.sort(key=lambda issue: (issue.source, issue.line, issue.code))
    return issues


def _shadowed(terms: list[Term]) -> list[LintIssue]:
    """Terms containing another term, found with one automaton pass over all terms."""
    matcher = KeywordMatcher.build([Wordlist("", "", tuple(terms))])
    issues: list[LintIssue] = []
    for term in terms:
        inner = [
            match.term
            for match in matcher.find(term.normalised, max_hits=len(term.normalised) + 1)
            if match.term.normalised != term.normalised
        ]
        if not inner:
            continue
        shadow = min(inner, key=lambda t: (t.source, t.line))
        issues.append(
            LintIssue(
                term.source,
                term.line,
                "shadowed",
                f"{term.text!r} contains {shadow.text!r} ({shadow.category}) at "
                f"{shadow.source}:{shadow.line}, which matches wherever this term does",
                WARNING,
            )
        )
    return issues
