"""A real clamd for tests and benchmarks: a generated signature database and the daemon.

In:  `write_signature_db(directory)` writes a tiny database: `menshen-test.hdb` (MD5 hash
     signatures in sigtool's `md5:size:name` format, computed with hashlib because sigtool
     ships in Debian's `clamav` package, not in `clamav-daemon`) and `menshen-test.ndb` (a
     body signature of EICAR's hex). Names are `Menshen.Test.*`; clamd reports them with the
     suffix `.UNOFFICIAL`. `ClamdServer(binary, workdir, database)` runs Debian's clamd in the
     foreground on a unix socket in `workdir` (no TCP, StreamMaxLength 25M, MaxThreads 4,
     archives and mail scanned, AlertEncryptedArchive and AlertExceedsMax on so that
     encrypted and over-limit content is reported instead of passing as OK).
Out: a server ready when `zPING` answers `PONG` (probed with a deadline, never a bare
     sleep), with `.address`, `.start()`, `.stop()`, `.pause()`, `.resume()`, `.kill()`.
Fails: a missing clamd binary or a clamd that never answers raises with instructions and
     the log tail.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from clamd_samples import eicar, marker


class ClamdRigError(Exception):
    """clamd is missing or would not start; the message says what to do."""


SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
READY_SECONDS = 30.0  # a tiny database loads in well under a second; this is the failure bound
STOP_SECONDS = 10.0
POLL_SECONDS = 0.02  # clamd has no readiness notification other than answering on its socket


# -- the signature database ------------------------------------------------------------


def _hash_signature(data: bytes, name: str) -> str:
    """One .hdb line, exactly what `sigtool --md5 FILE` prints with the name replaced."""
    return f"{hashlib.md5(data).hexdigest()}:{len(data)}:{name}\n"


def write_signature_db(directory: Path) -> Path:
    """Write the tiny test signature database into `directory` and return it."""
    (directory / "menshen-test.hdb").write_text(
        _hash_signature(eicar(), "Menshen.Test.EICAR.MD5")
        + _hash_signature(marker(), "Menshen.Test.Marker.MD5")
    )
    # Name:TargetType:Offset:HexBytes; target 0 = any file, offset * = anywhere.
    (directory / "menshen-test.ndb").write_text(f"Menshen.Test.EICAR.Body:0:*:{eicar().hex()}\n")
    return directory


# -- the real clamd --------------------------------------------------------------------


def find_clamd() -> str:
    found = shutil.which("clamd")
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / "clamd"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise ClamdRigError(
        "clamd not found on PATH or in /usr/sbin: install Debian's clamav-daemon "
        "(`make deps`); these tests need a real clamd and are never skipped"
    )


def clamd_answers_pong(path: Path) -> bool:
    """Probe with a raw socket, independent of the client under test."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            probe.connect(str(path))
            probe.sendall(b"zPING\0")
            return probe.recv(64) == b"PONG\0"
    except OSError:
        return False


@dataclass
class ClamdServer:
    executable: str
    base: Path
    database: Path
    process: subprocess.Popen[bytes] | None = None
    _output: list[Path] = field(default_factory=list)

    @property
    def socket_path(self) -> Path:
        return self.base / "run" / "clamd.ctl"

    @property
    def address(self) -> str:
        return f"unix:{self.socket_path}"

    @property
    def config_path(self) -> Path:
        return self.base / "clamd.conf"

    @property
    def log_path(self) -> Path:
        return self.base / "clamd.log"

    @property
    def stdout_path(self) -> Path:
        return self.base / "clamd.out"

    def write_config(self) -> None:
        (self.base / "run").mkdir(parents=True, exist_ok=True)
        (self.base / "tmp").mkdir(exist_ok=True)
        lines = [
            "Foreground yes",
            f"LocalSocket {self.socket_path}",
            "LocalSocketMode 600",
            "FixStaleSocket yes",
            f"DatabaseDirectory {self.database}",
            f"TemporaryDirectory {self.base / 'tmp'}",
            f"LogFile {self.log_path}",
            "LogTime yes",
            "MaxThreads 4",
            "StreamMaxLength 25M",
            "ScanArchive yes",
            "ScanMail yes",
            # Without these clamd reports encrypted or over-limit content as plain OK.
            "AlertEncryptedArchive yes",
            "AlertExceedsMax yes",
            "SelfCheck 3600",
        ]
        if os.geteuid() == 0:
            lines.insert(1, "User root")  # otherwise clamd would switch to the clamav user
        self.config_path.write_text("\n".join(lines) + "\n")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running():
            return
        with self.stdout_path.open("ab") as out:
            self.process = subprocess.Popen(
                [self.executable, "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + READY_SECONDS
        while not clamd_answers_pong(self.socket_path):
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise ClamdRigError(f"clamd exited with status {code} at start:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ClamdRigError(
                    f"clamd did not answer PONG within {READY_SECONDS} s:\n{self.log()}"
                )
            time.sleep(POLL_SECONDS)

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it outlives the deadline. Tolerates a stopped clamd."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGCONT)  # a paused clamd cannot act on SIGTERM
                process.terminate()
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None

    def kill(self) -> None:
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        self.process = None

    def pause(self) -> None:
        assert self.process is not None, "clamd is not running"
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None, "clamd is not running"
        self.process.send_signal(signal.SIGCONT)

    def log(self, lines: int = 40) -> str:
        parts = []
        for path in (self.log_path, self.stdout_path):
            with contextlib.suppress(OSError):
                text = path.read_text("utf-8", "replace")
                parts.append(f"--- {path.name}\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts)
