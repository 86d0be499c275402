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
    assert spool.on_disk is on_disk
    assert spool.read() == b"Subject: x\r\n\r\nbody\r\n"
    assert list(tmp_path.iterdir()) == []  # the file has no name, a crash leaves nothing
    spool.close()


@pytest.mark.parametrize("memory_bytes", [0, 4, 1 << 20], ids=["disk", "rolls-over", "memory"])
def test_the_cap_keeps_a_prefix_and_counts_everything(memory_bytes: int) -> None:
    spool = Spool(memory_bytes, cap_bytes=5)
    spool.write(b"abc")
    spool.write(b"defgh")
    assert (spool.read(), spool.size, spool.truncated) == (b"abcde", 8, True)
    spool.close()


def test_rolling_over_keeps_every_byte_in_order(tmp_path: Path) -> None:
    spool = Spool(8, cap_bytes=1 << 20, directory=tmp_path)
    chunks = [b"Subject: x\r\n", b"\r\n", b"a" * 3, b"b" * 100]
    for chunk in chunks[:2]:
        spool.write(chunk)
    assert spool.on_disk  # 14 bytes > 8
    for chunk in chunks[2:]:
        spool.write(chunk)
    assert spool.read() == b"".join(chunks)
    assert spool.size == sum(len(c) for c in chunks)
    assert list(tmp_path.iterdir()) == []
    spool.close()


class FullDisk(io.BytesIO):
    def close(self) -> None:
        raise OSError(28, "No space left on device")


def test_discarding_on_a_full_disk_never_raises() -> None:
    spool = Spool(0, cap_bytes=10)
    assert spool._file is not None
    spool._file.close()  # swapped for a file whose flush fails at close
    spool._file = FullDisk()
    spool.close()
