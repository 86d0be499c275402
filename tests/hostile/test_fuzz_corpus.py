"""Replay every committed fuzz corpus file through its target (ClamAV's run_fuzzer_tests).

The seeds and the crash inputs the fuzzers found (fuzz/corpus/<target>/crash-*) run in the
ordinary test suite, without atheris, so a fixed crash stays fixed. Each target function
raises only for a bug (see fuzz/fuzz_targets.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

FUZZ = Path(__file__).resolve().parents[2] / "fuzz"
if str(FUZZ) not in sys.path:
    sys.path.insert(0, str(FUZZ))

import fuzz_targets  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

CORPUS = FUZZ / "corpus"
REPLAYS = [
    pytest.param(target, path, id=f"{target}/{path.name}")
    for target, seeds in sorted(fuzz_targets.SEED_DIRECTORIES.items())
    for path in sorted((CORPUS / seeds).iterdir())
]


@pytest.mark.parametrize(("target", "path"), REPLAYS)
def test_corpus_file_replays_cleanly(target: str, path: Path) -> None:
    fuzz_targets.TARGETS[target](path.read_bytes())


def test_every_target_has_seeds() -> None:
    for target, seeds in fuzz_targets.SEED_DIRECTORIES.items():
        files = list((CORPUS / seeds).iterdir())
        assert files, target
        assert all(f.stat().st_size <= 64 * 1024 for f in files), target
