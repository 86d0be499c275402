"""The generated Unicode tables are current and sane."""

from __future__ import annotations

from pathlib import Path

import pytest

from menshen.text import generate_tables
from menshen.text import unihan_tables as t

# Debian's unicode-data package, which `make test` installs: a missing copy is a failure.
UCD = Path("/usr/share/unicode")


def test_unicode_data_is_installed() -> None:
    assert (UCD / "Unihan_Variants.txt.bz2").exists(), "install Debian's unicode-data package"


def test_shipped_table_matches_generator() -> None:
    assert generate_tables.main(["--check", "--ucd", str(UCD)]) == 0


def test_check_reports_difference(tmp_path: Path) -> None:
    stale = tmp_path / "unihan_tables.py"
    stale.write_text("UNICODE_VERSION = 'old'\n", encoding="utf-8")
    assert generate_tables.main(["--check", "--output", str(stale)]) == 1


def test_missing_input_is_exit_2(tmp_path: Path) -> None:
    assert generate_tables.main(["--check", "--ucd", str(tmp_path)]) == 2


PAIRS = {
    "fa_issue": ("發", "发"),
    "fa_hair": ("髮", "发"),
    "ji_machine": ("機", "机"),
    "kai_open": ("開", "开"),
    "one_to_many_lowest": ("瀋", "沈"),
    "self_listed_folded": ("乾", "干"),
}


@pytest.mark.parametrize(("trad", "simp"), PAIRS.values(), ids=PAIRS.keys())
def test_trad_to_simp_pairs(trad: str, simp: str) -> None:
    table = dict(zip(t.TRAD_TO_SIMP[::2], t.TRAD_TO_SIMP[1::2], strict=True))
    assert table[trad] == simp


def test_tables_are_well_formed() -> None:
    assert len(t.TRAD_TO_SIMP) % 2 == 0 and len(t.TRAD_TO_SIMP) > 10000
    table = dict(zip(t.TRAD_TO_SIMP[::2], t.TRAD_TO_SIMP[1::2], strict=True))
    assert not set(table.values()) & set(table), "chains must be resolved"
    for ranges in (t.REMOVED, t.CJK_SEPARATORS, t.CJK, t.LATIN, t.NONSPACING_MARKS):
        assert all(a <= b for a, b in ranges)
        assert all(ranges[i][1] < ranges[i + 1][0] for i in range(len(ranges) - 1))
    removed = {cp for a, b in t.REMOVED for cp in range(a, b + 1)}
    for cp in (
        0x200B,
        0x200C,
        0x200D,
        0x2060,
        0xFEFF,
        0x00AD,
        0x202E,
        0x2066,
        0x034F,
        0x180E,
        0xFE0F,
        0x3164,
        0xE0100,
    ):
        assert cp in removed, hex(cp)
    assert 0x0A not in removed and 0x09 not in removed
