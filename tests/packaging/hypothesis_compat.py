"""pytest plugin for the install test: newer Hypothesis spellings on bookworm's Hypothesis.

Debian 12 ships python3-hypothesis 6.67.1, whose `characters()` predates the `codec`,
`categories`, `exclude_categories`, `include_characters` and `exclude_characters`
arguments. Loaded only by `make deb-test` (pytest -p hypothesis_compat), and only acting
when the installed Hypothesis lacks `codec`, this translates those arguments to the old
ones, so that the unit tests that use them still run against Debian's libraries instead of
failing to import. It prints which spelling it translated.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from hypothesis import strategies as st

_original = st.characters
_RENAMES = {
    "categories": "whitelist_categories",
    "exclude_categories": "blacklist_categories",
    "include_characters": "whitelist_characters",
    "exclude_characters": "blacklist_characters",
}
_used: set[str] = set()


def _characters(**kwargs: Any) -> Any:
    for new, old in _RENAMES.items():
        if new in kwargs:
            _used.add(new)
            value = kwargs.pop(new)
            if value is not None:
                kwargs[old] = value
    if "codec" in kwargs:
        _used.add("codec")
        codec = kwargs.pop("codec")
        if codec is None:
            # Every code point, surrogates included: the old API's default when a
            # category list is given, so give one that names every category.
            if "whitelist_categories" not in kwargs and "blacklist_categories" not in kwargs:
                return st.integers(
                    kwargs.get("min_codepoint") or 0, kwargs.get("max_codepoint") or sys.maxunicode
                ).map(chr)
        elif codec in ("utf-8", "utf8"):
            kwargs.setdefault("blacklist_categories", ("Cs",))
        elif codec == "ascii":
            kwargs["max_codepoint"] = min(kwargs.get("max_codepoint") or 0x7F, 0x7F)
        else:
            raise NotImplementedError(f"hypothesis_compat: characters(codec={codec!r})")
    return _original(**kwargs)


if "codec" not in inspect.signature(_original).parameters:
    st.characters = _characters


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _used:
        terminalreporter.write_line(
            "hypothesis_compat: translated characters("
            + ", ".join(sorted(_used))
            + "=...) for this Hypothesis (bookworm's python3-hypothesis lacks them)"
        )
