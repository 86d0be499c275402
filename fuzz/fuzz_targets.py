"""Fuzz targets: one function per parser, bytes in, an exception out only for a bug.

In:  arbitrary bytes, from atheris (fuzz/run.py) or from a corpus file (the replay in
     tests/hostile/test_fuzz_corpus.py, the pattern of ClamAV's run_fuzzer_tests.py).
Out: nothing. A target returns normally for every input the code handles as documented,
     and raises (an uncaught exception, or AssertionError for a broken invariant) for a
     bug. The targets and what each holds:
       extract    raw bytes -> Extractor.extract: never an "internal error" limit (that is
                  how the extractor reports its own exceptions), sizes and budgets kept,
                  and the same result as with the stdlib parser alone (the fast path
                  builds the stdlib's tree or steps aside);
       normalise  UTF-8 (lone surrogates for bad bytes) -> normalise: encodable as UTF-8,
                  idempotent, no surrounding or doubled spaces, no invisible characters;
       wordlist   file bytes -> the wordlist file parser: a Wordlist or WordlistError,
                  every term normalised and free of control characters;
       config     UTF-8 text -> parse_config: a Config or ConfigError naming the file;
       engine     raw bytes -> the whole engine on the built-in configuration (extract,
                  normalise, match, attachments, policy): never INTERNAL_ERROR, never a
                  tempfail, header and reply values one printable line.
Fails: see above; the assertion message names the broken invariant.
Thread safety: the module builds one Extractor and one Engine at import, shared by calls
     (both are immutable); the targets are called from one thread.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Iterator
from importlib.resources.abc import Traversable
from typing import Any

from menshen.composition import assemble
from menshen.config import ConfigError, load_config, parse_config
from menshen.extraction import Extractor
from menshen.keywords.wordlist import WordlistError, load_wordlist
from menshen.model import INTERNAL_ERROR, Action, Envelope, ExtractionLimits
from menshen.text.normalise import normalise

__all__ = ["SEED_DIRECTORIES", "TARGETS", "MemoryFile"]

LIMITS = ExtractionLimits()
EXTRACTOR = Extractor(LIMITS)
FULL_PARSER = Extractor(LIMITS, fast_path=False)
ENGINE = assemble(load_config(None)).engine
ENVELOPE = Envelope(
    client_ip="192.0.2.1",
    helo="fuzz.example",
    sender="fuzz@example.net",
    recipients=("rcpt@example.com",),
    queue_id="FUZZ",
)
_LIMIT_NAMES = frozenset(
    {"message_bytes", "parse", "depth", "parts", "decoded_bytes", "text_chars", "time"}
)
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u034f\u202a-\u202e]")
_SAFE_VALUE = re.compile(r"[\x20-\x7e]*")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def fuzz_extract(data: bytes) -> None:
    parsed = EXTRACTOR.extract(data)
    for hit in parsed.limits_hit:
        assert hit.limit in _LIMIT_NAMES, hit
        assert not hit.detail.startswith("internal error"), hit.detail
    assert parsed.size == len(data)
    text = sum(len(segment.text) for segment in parsed.segments)
    assert text <= LIMITS.max_text_chars, text
    assert len(parsed.defects) <= 64
    assert len({a.part for a in parsed.attachments}) == len(parsed.attachments)
    full = FULL_PARSER.extract(data)
    # A deadline hit in one run and not the other is the clock, not the parser.
    timed_out = any(hit.limit == "time" for hit in (*parsed.limits_hit, *full.limits_hit))
    assert timed_out or parsed == full, "the fast MIME path and the stdlib parser disagree"


def fuzz_normalise(data: bytes) -> None:
    text = data.decode("utf-8", "surrogateescape")
    result = normalise(text)
    result.encode("utf-8")  # lone surrogates must be gone
    assert normalise(result) == result, (text, result, normalise(result))
    assert result == result.strip(), result
    assert "  " not in result, result
    assert _INVISIBLE.search(result) is None, result


class MemoryFile(Traversable):
    """A wordlist file held in memory, so the parser runs without a disk round trip."""

    def __init__(self, name: str, data: bytes) -> None:
        self._name = name
        self._data = data

    @property
    def name(self) -> str:
        return self._name

    def __str__(self) -> str:
        return self._name

    def read_bytes(self) -> bytes:
        return self._data

    def read_text(self, encoding: str | None = None) -> str:
        return self._data.decode(encoding or "utf-8")

    def iterdir(self) -> Iterator[Traversable]:
        return iter(())

    def is_dir(self) -> bool:
        return False

    def is_file(self) -> bool:
        return True

    def joinpath(self, *descendants: str | os.PathLike[str]) -> Traversable:
        raise FileNotFoundError("/".join(str(d) for d in descendants))

    def __truediv__(self, child: str | os.PathLike[str]) -> Traversable:
        return self.joinpath(child)

    def open(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "b" in mode:
            return io.BytesIO(self._data)
        return io.StringIO(self.read_text())


def fuzz_wordlist(data: bytes) -> None:
    try:
        wordlist = load_wordlist(MemoryFile("fuzz_list.txt", data))
    except WordlistError as exc:
        assert exc.problems, exc
        assert all(p.startswith("fuzz_list.txt") for p in exc.problems), exc.problems
        return
    lines = data.count(b"\n") + 1
    assert wordlist.category == "fuzz_list"
    for term in wordlist.terms:
        assert term.normalised, term
        assert term.normalised == normalise(term.text), term
        assert term.text == term.text.strip() and not term.text.startswith("#"), term
        assert _CONTROL.search(term.text) is None, term
        assert 1 <= term.line <= lines, term


def fuzz_config(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    try:
        parse_config(text, "fuzz.yml", base_dir=None)
    except ConfigError as exc:
        assert exc.problems, "a ConfigError without problems"
        assert all(p.startswith("fuzz.yml") for p in exc.problems), exc.problems


def fuzz_engine(data: bytes) -> None:
    verdict = ENGINE.evaluate(ENVELOPE, data)
    errors = [f for f in verdict.findings if f.code == INTERNAL_ERROR]
    assert not errors, errors
    assert verdict.action is not Action.TEMPFAIL, verdict
    internal = [f.detail for f in verdict.findings if "internal error" in f.detail]
    assert not internal, internal
    for _, value in verdict.headers:
        assert _SAFE_VALUE.fullmatch(value), value
    if verdict.reply is not None:
        assert _SAFE_VALUE.fullmatch(verdict.reply.text), verdict.reply


TARGETS: dict[str, Callable[[bytes], None]] = {
    "extract": fuzz_extract,
    "normalise": fuzz_normalise,
    "wordlist": fuzz_wordlist,
    "config": fuzz_config,
    "engine": fuzz_engine,
}
# The engine target starts from the messages the extraction target starts from.
SEED_DIRECTORIES = {name: "extract" if name == "engine" else name for name in TARGETS}
