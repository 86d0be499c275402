"""Generate ``menshen.text.unihan_tables`` from the Unicode Character Database.

In:  the files of Debian's ``unicode-data`` package under /usr/share/unicode (or ``--ucd DIR``):
     Unihan_Variants.txt.bz2 (kSimplifiedVariant), UnicodeData.txt (general categories and
     canonical decompositions), DerivedCoreProperties.txt (Default_Ignorable_Code_Point),
     Scripts.txt (Latin and the CJK scripts) and ReadMe.txt (the version).
Out: the text of a Python module holding constant tables; written to unihan_tables.py next to
     this file, or, with ``--check``, compared with the shipped module (exit status 1 when they
     differ, 2 when the input files are missing).
Fails: OSError / ValueError on unreadable or malformed input; nothing is written then.
Thread safety: a build-time tool; not used by the running milter.

Rules the tables encode (normalise.py documents how they are applied):

* Traditional to simplified: a character maps to its kSimplifiedVariant when that differs from
  the character itself. When several simplified variants differ from it (one-to-many, e.g.
  瀋 -> 沈 / 渖, 線 -> 线 / 缐) the one with the lowest code point is taken: it is the common
  BMP form in practice and the rule does not depend on the order of the file. Chains are
  followed to their end (薴 -> 苧 -> 苎) so one ``str.translate`` pass is enough. Characters that
  list themselves among their simplified variants (乾, 著, 覆, ...) are folded as well: the
  table is applied to wordlists and to text alike, so folding only merges spellings and never
  loses a hit.
* Removed characters: Default_Ignorable_Code_Point, all format characters (Cf) and the C0/C1
  controls that are not whitespace.
* CJK separators: general categories Z*, P*, S* and Cc.
* CJK characters: letters (L*, Nl) of the Han, Hiragana, Katakana, Hangul and Bopomofo scripts,
  plus U+30FC KATAKANA-HIRAGANA PROLONGED SOUND MARK (script Common, used inside words).
* Latin folding: a lowercase Latin letter whose canonical decomposition carries nonspacing
  marks maps to its base letter (é -> e, ǰ -> j); nonspacing marks (Mn) left after a Latin
  letter are removed by normalise.py.

Usage: python -m menshen.text.generate_tables [--ucd DIR] [--check]
"""

from __future__ import annotations

import argparse
import bz2
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

DEFAULT_UCD = Path("/usr/share/unicode")
OUTPUT = Path(__file__).with_name("unihan_tables.py")
COMMAND = "python -m menshen.text.generate_tables"

CJK_SCRIPTS = frozenset({"Han", "Hiragana", "Katakana", "Hangul", "Bopomofo"})
CJK_EXTRA = (0x30FC,)
WHITESPACE_CONTROLS = frozenset({0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x85})

Ranges = list[tuple[int, int]]


def _data_lines(lines: Iterable[str]) -> Iterator[list[str]]:
    """Fields of the data lines of a UCD ``a ; b # comment`` file."""
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if line:
            yield [field.strip() for field in line.split(";")]


def _code_range(field: str) -> tuple[int, int]:
    first, _, last = field.partition("..")
    return int(first, 16), int(last or first, 16)


def _to_ranges(points: Iterable[int]) -> Ranges:
    ranges: Ranges = []
    for cp in sorted(set(points)):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges


def read_version(ucd: Path) -> str:
    text = (ucd / "DerivedCoreProperties.txt").read_text(encoding="utf-8")
    found = re.search(r"DerivedCoreProperties-(\d+\.\d+\.\d+)\.txt", text)
    if found is None:
        raise ValueError("cannot find the Unicode version in DerivedCoreProperties.txt")
    return found.group(1)


def read_unicode_data(ucd: Path) -> tuple[dict[int, str], dict[int, list[int]]]:
    """General category of every assigned code point, and canonical decompositions."""
    categories: dict[int, str] = {}
    decompositions: dict[int, list[int]] = {}
    range_start: int | None = None
    with (ucd / "UnicodeData.txt").open(encoding="utf-8") as handle:
        for line in handle:
            fields = line.rstrip("\n").split(";")
            cp, name, category, decomposition = int(fields[0], 16), fields[1], fields[2], fields[5]
            if name.endswith(", First>"):
                range_start = cp
                continue
            if name.endswith(", Last>") and range_start is not None:
                for point in range(range_start, cp + 1):
                    categories[point] = category
                range_start = None
                continue
            categories[cp] = category
            if decomposition and not decomposition.startswith("<"):
                decompositions[cp] = [int(part, 16) for part in decomposition.split()]
    return categories, decompositions


def read_property(path: Path, wanted: str) -> set[int]:
    points: set[int] = set()
    with path.open(encoding="utf-8") as handle:
        for fields in _data_lines(handle):
            if fields[1] == wanted:
                first, last = _code_range(fields[0])
                points.update(range(first, last + 1))
    return points


def read_scripts(ucd: Path) -> dict[int, str]:
    scripts: dict[int, str] = {}
    with (ucd / "Scripts.txt").open(encoding="utf-8") as handle:
        for fields in _data_lines(handle):
            first, last = _code_range(fields[0])
            for point in range(first, last + 1):
                scripts[point] = fields[1]
    return scripts


def read_simplified(ucd: Path) -> dict[int, int]:
    variants: dict[int, list[int]] = {}
    with bz2.open(ucd / "Unihan_Variants.txt.bz2", "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            cp_field, key, value = line.rstrip("\n").split("\t")
            if key != "kSimplifiedVariant":
                continue
            cp = int(cp_field[2:], 16)
            variants[cp] = [int(item.split("<")[0][2:], 16) for item in value.split()]
    mapping = {
        cp: min(v for v in targets if v != cp)
        for cp, targets in variants.items()
        if any(v != cp for v in targets)
    }
    resolved: dict[int, int] = {}
    for cp, first in mapping.items():
        target, seen = first, {cp}
        while target in mapping and target not in seen:
            seen.add(target)
            target = mapping[target]
        resolved[cp] = target
    return resolved


def _full_decomposition(cp: int, decompositions: dict[int, list[int]]) -> list[int]:
    if cp not in decompositions:
        return [cp]
    result: list[int] = []
    for part in decompositions[cp]:
        result.extend(_full_decomposition(part, decompositions))
    return result


def build_tables(ucd: Path) -> dict[str, object]:
    categories, decompositions = read_unicode_data(ucd)
    scripts = read_scripts(ucd)
    ignorable = read_property(ucd / "DerivedCoreProperties.txt", "Default_Ignorable_Code_Point")
    removed = set(ignorable)
    removed.update(cp for cp, cat in categories.items() if cat == "Cf")
    removed.update(
        cp for cp, cat in categories.items() if cat == "Cc" and cp not in WHITESPACE_CONTROLS
    )
    separators = {cp for cp, cat in categories.items() if cat[0] in "ZPS" or cat == "Cc"} - removed
    cjk = {
        cp
        for cp, script in scripts.items()
        if script in CJK_SCRIPTS
        and (categories.get(cp, "Cn")[:1] == "L" or categories.get(cp) == "Nl")
    } - removed
    cjk.update(CJK_EXTRA)
    latin = {cp for cp, script in scripts.items() if script == "Latin" and cp in categories}
    marks = {cp for cp, cat in categories.items() if cat == "Mn"} - removed
    latin_fold: list[tuple[int, int]] = []
    for cp in sorted(latin):
        if categories[cp] != "Ll":
            continue
        parts = _full_decomposition(cp, decompositions)
        base = [p for p in parts if categories.get(p) != "Mn"]
        if len(base) == 1 and base[0] != cp and len(parts) > 1:
            latin_fold.append((cp, base[0]))
    return {
        "version": read_version(ucd),
        "t2s": sorted(read_simplified(ucd).items()),
        "latin_fold": latin_fold,
        "removed": _to_ranges(removed),
        "separators": _to_ranges(separators),
        "cjk": _to_ranges(cjk),
        "latin": _to_ranges(latin | set(range(0x30, 0x3A))),
        "marks": _to_ranges(marks),
    }


def _pairs_literal(name: str, pairs: list[tuple[int, int]], per_line: int, comment: str) -> str:
    lines = [f"# {comment}", f"{name} = ("]
    for start in range(0, len(pairs), per_line):
        chunk = "".join(chr(a) + chr(b) for a, b in pairs[start : start + per_line])
        lines.append(f'    "{chunk}"')
    lines.append(")")
    return "\n".join(lines)


def _ranges_literal(name: str, ranges: Ranges, comment: str) -> str:
    items = [f"(0x{a:04X}, 0x{b:04X})" for a, b in ranges]
    lines = [f"# {comment}", f"{name}: tuple[tuple[int, int], ...] = ("]
    current = "   "
    for item in items:
        if len(current) + len(item) + 2 > 96:
            lines.append(current.rstrip())
            current = "   "
        current += f" {item},"
    if current.strip():
        lines.append(current.rstrip())
    lines.append(")")
    return "\n".join(lines)


def render(tables: dict[str, object]) -> str:
    version = tables["version"]
    t2s = tables["t2s"]
    latin_fold = tables["latin_fold"]
    assert isinstance(t2s, list) and isinstance(latin_fold, list)
    parts = [
        f'"""Constant Unicode tables for menshen.text.normalise. GENERATED: DO NOT EDIT.\n\n'
        f"Generated by `{COMMAND}`\nfrom Debian's unicode-data files (Unicode {version}):\n"
        "Unihan_Variants.txt.bz2, UnicodeData.txt, DerivedCoreProperties.txt, Scripts.txt.\n"
        f"Check that this file is current with `{COMMAND} --check`.\n"
        '"""',
        f'UNICODE_VERSION = "{version}"',
        _pairs_literal(
            "TRAD_TO_SIMP",
            t2s,
            20,
            "Pairs of characters: traditional, then simplified (kSimplifiedVariant).",
        ),
        _pairs_literal(
            "LATIN_FOLD",
            latin_fold,
            30,
            "Pairs: lowercase Latin letter with marks, then its base letter.",
        ),
    ]
    for key, name, comment in (
        ("removed", "REMOVED", "Default ignorables, format (Cf) and non-whitespace controls."),
        ("separators", "CJK_SEPARATORS", "Z*, P*, S* and Cc: dropped between two CJK characters."),
        ("cjk", "CJK", "Han, kana, hangul and bopomofo letters."),
        ("latin", "LATIN", "Latin-script characters and ASCII digits."),
        ("marks", "NONSPACING_MARKS", "General category Mn."),
    ):
        value = tables[key]
        assert isinstance(value, list)
        parts.append(_ranges_literal(name, value, comment))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--ucd", type=Path, default=DEFAULT_UCD, help="UCD directory")
    parser.add_argument("--check", action="store_true", help="compare with the shipped module")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="module to write or check")
    args = parser.parse_args(argv)
    try:
        text = render(build_tables(args.ucd))
    except FileNotFoundError as exc:
        print(f"generate_tables: {exc}", file=sys.stderr)
        return 2
    if args.check:
        try:
            shipped = args.output.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"generate_tables: {exc}", file=sys.stderr)
            return 1
        if shipped != text:
            print(f"{args.output} differs from what {COMMAND} generates", file=sys.stderr)
            return 1
        return 0
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
