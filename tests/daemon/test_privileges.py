"""Started as root, the daemon opens its socket and then serves as its own user.

The daemon runs under Debian's /usr/bin/python3 with Debian's packaged libraries
(python3-milter, python3-ahocorasick, python3-yaml, python3-prometheus-client, which `make
deps` installs) and the source tree on PYTHONPATH: after the drop, the interpreter's own
files must be readable by the user it became, which the virtualenv's interpreter here
(under /root) is not. As a bonus this runs the daemon on the versions Debian 12 ships.
Covered: the single process and the parent with its workers all run as the configured user
(nobody); the socket was made while root (owner root, group postfix when present) and still
answers; an unknown user stops the start with exit 2 and a clear line.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ci import unavailable
from milter_client import Code, MilterClient
from procfs import child_pids, effective_uid

ROOT = Path(__file__).resolve().parents[2]
CLEAN = (ROOT / "samples" / "clean-chinese-business.eml").read_bytes()
DEBIAN_PYTHON = "/usr/bin/python3"
DEBIAN_MODULES = "import milter, Milter, ahocorasick, yaml, prometheus_client"


@pytest.fixture(autouse=True)
def _root() -> None:
    if os.geteuid() != 0:
        unavailable("dropping privileges needs a root start")


@pytest.fixture(scope="module")
def debian_python() -> str:
    """Debian's interpreter with Debian's packaged libraries; missing ones fail the test."""
    found = subprocess.run(
        [DEBIAN_PYTHON, "-c", DEBIAN_MODULES], capture_output=True, text=True, check=False
    )
    if found.returncode != 0:
        pytest.fail(f"{DEBIAN_PYTHON} lacks Debian's packages (make deps): {found.stderr}")
    return DEBIAN_PYTHON


@pytest.fixture(scope="module")
def readable_source() -> Iterator[Path]:
    """A copy of the package that any user can read.

    A checkout may sit below a directory only root can enter (mktemp -d makes 0700 ones),
    and the daemon reads its built-in wordlists only after it has become the other user.
    """
    copy = Path(tempfile.mkdtemp(prefix="menshen-src-"))
    try:
        shutil.copytree(ROOT / "milter" / "menshen", copy / "menshen", symlinks=False)
        for path in [copy, *copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)


class Started:
    def __init__(self, python: str, source: Path, directory: Path, config: str) -> None:
        directory.chmod(0o755)  # the configured user reads nothing here; the socket dir
        self.socket = directory / "menshen.sock"
        self.log_path = directory / "menshen.log"
        config_file = directory / "menshen.yml"
        config_file.write_text(config, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k not in ("MENSHEN_CONFIG", "PYTHONPATH")}
        env["PYTHONPATH"] = str(source)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    python,
                    "-m",
                    "menshen.cli",
                    "serve",
                    "-c",
                    str(config_file),
                    "--socket",
                    f"unix:{self.socket}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=env,
                cwd="/",
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not logged; log:\n{self.log()}")
            time.sleep(0.05)  # polling the log file: the daemon has no other signal

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def start(debian_python: str, readable_source: Path, tmp_path: Path) -> Iterator[object]:
    started: list[Started] = []

    def run(config: str) -> Started:
        daemon = Started(debian_python, readable_source, tmp_path / f"d{len(started)}", config)
        started.append(daemon)
        return daemon

    for directory in (tmp_path / "d0", tmp_path / "d1"):
        directory.mkdir()
    tmp_path.chmod(0o755)
    yield run
    for daemon in started:
        daemon.stop()


@pytest.mark.parametrize("workers", [1, 2], ids=["single-process", "two-workers"])
def test_started_as_root_it_serves_as_its_user(start: object, workers: int) -> None:
    nobody = pwd.getpwnam("nobody").pw_uid
    daemon = start(  # type: ignore[operator]
        f"milter:\n  workers: {workers}\n  user: nobody\nmetrics:\n  enabled: false\n"
    )
    daemon.wait_for("running as user nobody")
    daemon.wait_for("listening on")
    pids = {daemon.process.pid, *child_pids(daemon.process.pid)}
    assert len(pids) == (1 if workers == 1 else 1 + workers), pids
    assert {effective_uid(pid) for pid in pids} == {nobody}
    assert daemon.socket.stat().st_uid == 0  # made while root, then handed to Postfix's group
    with MilterClient(f"unix:{daemon.socket}", timeout=20) as client:
        result = client.send_message(CLEAN, "a@sender.example", ("b@example.com",))
    assert result.action is Code.ACCEPT, daemon.log()


def test_an_unknown_user_stops_the_start(start: object) -> None:
    daemon = start("milter:\n  workers: 1\n  user: no-such-user-here\n")  # type: ignore[operator]
    assert daemon.process.wait(timeout=20) == 2
    assert "milter.user: no such user 'no-such-user-here'" in daemon.log()
