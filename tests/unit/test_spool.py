"""The per-message spool: byte-exact, bounded, on disk when asked, and quiet when discarded."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from menshen.spool import Spool


@pytest.mark.parametrize(
    ("memory_bytes", "on_disk"),
    [
        pytest.param(0, True, id="zero-means-straight-to-disk"),
        pytest.param(10, True, id="past-the-threshold-rolls-over"),
        pytest.param(1 << 20, False, id="small-stays-in-memory"),
    ],
)
def test_where_the_message_lives(memory_bytes: int, on_disk: bool, tmp_path: Path) -> None:
    spool = Spool(memory_bytes, cap_bytes=1 << 20, directory=tmp_path)
    spool.write(b"Subject: x\r\n\r\nbody\r\n")
    rolled = getattr(spool._file, "_rolled", True)
    assert rolled is on_disk
    assert spool.read() == b"Subject: x\r\n\r\nbody\r\n"
    assert list(tmp_path.iterdir()) == []  # the file has no name, a crash leaves nothing
    spool.close()


def test_the_cap_keeps_a_prefix_and_counts_everything() -> None:
    spool = Spool(0, cap_bytes=5)
    spool.write(b"abc")
    spool.write(b"defgh")
    assert (spool.read(), spool.size, spool.truncated) == (b"abcde", 8, True)
    spool.close()


class FullDisk(io.BytesIO):
    def close(self) -> None:
        raise OSError(28, "No space left on device")


def test_discarding_on_a_full_disk_never_raises() -> None:
    spool = Spool(1 << 20, cap_bytes=10)
    spool._file.close()  # swapped for a file whose flush fails at close
    spool._file = FullDisk()
    spool.close()
