"""A spool directory that is full: the message is tempfailed, never accepted unscanned.

The daemon spools every message to disk (spool_memory_bytes: 0) into a 256 KB tmpfs that
the test mounts (root only). A message larger than the space left gets 451 4.3.0; small
messages before and after are judged as usual, and no spool file is left behind.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ci import unavailable
from milter_client import Code

if TYPE_CHECKING:  # conftest modules are not importable at run time
    from conftest import StartDaemon

ROOT = Path(__file__).resolve().parents[2]
CLEAN = (ROOT / "samples" / "clean-chinese-business.eml").read_bytes()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    mount_point = tmp_path / "spool"
    mount_point.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount_point)],
        check=True,
    )
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def big_message(size: int) -> bytes:
    body = ("各位同事，季度报告见附件。" * (size // 36 + 1)).encode("utf-8")[:size]
    return (
        b"From: a@sender.example\r\nTo: b@example.com\r\nSubject: big\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + body + b"\r\n"
    )


def test_a_full_spool_disk_is_a_tempfail(start_daemon: StartDaemon, small_disk: Path) -> None:
    daemon = start_daemon(
        f"milter:\n  spool_memory_bytes: 0\n  spool_directory: {small_disk}\n"
        "metrics:\n  enabled: false\n"
    )
    with daemon.client() as client:
        assert client.send_message(CLEAN, "a@sender.example", ("b@x.example",)).action is (
            Code.ACCEPT
        )
    with daemon.client() as client:
        result = client.send_message(big_message(1 << 20), "a@sender.example", ("b@x.example",))
    assert result.action is Code.REPLYCODE
    assert result.reply is not None and str(result.reply).startswith("451 4.3.0"), result
    daemon.wait_for_log(r"cannot spool the message \(disk full\?\); tempfail")
    with daemon.client() as client:
        assert client.send_message(CLEAN, "a@sender.example", ("b@x.example",)).action is (
            Code.ACCEPT
        )
    assert list(small_disk.iterdir()) == []  # spool files are unlinked at creation
