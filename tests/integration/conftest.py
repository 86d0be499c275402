"""Fixtures for the real-Postfix integration suite: a private Postfix and `menshen serve`.

What:
- `postfix_rig` (module): a started `PostfixRig` (tests/rig/postfix_rig.py): private
  config/queue/data directories under a temp dir, smtpd on 127.0.0.1:<free port> with
  `smtpd_milters = unix:<milter_socket>` and `milter_default_action = tempfail`, relaying to
  smtp-sink -d. Stopped (and leftovers killed) at the end of the module, even after failures.
- `postfix` (function): the same rig after `reset()` (queue and sink emptied), so every test
  starts from "nothing queued, nothing delivered". Methods: `send(msg, sender, rcpts) ->
  (code, text)`, `delivered(timeout, expect=None) -> list[bytes]`, `hold_queue()`,
  `queue()`, `log_text()`, `flush()`, `wait_drained()`.
- `milter_socket` (module): the unix socket path Postfix is configured to use.
- `wordlist_dir` (function): a private, writable copy of the shipped wordlists.
- `menshen_config` (function): a config file using `wordlist_dir` (default categories;
  confidential/phishing quarantine, the rest reject) and a short drain time.
- `menshen_daemon` (function, factory): `menshen_daemon(config=None, socket=None)` starts
  `menshen serve -c CFG --socket unix:SOCK --pid-file PID` with stderr in a log file, and
  returns a `MenshenDaemon` once the socket accepts a connection. `.reload()` sends SIGUSR1
  and returns "reloaded" or "reload refused" when that line is logged; `.stop()` sends
  SIGTERM and asserts exit status 0; `.kill()`; `.log_text()`. Every daemon still running at
  teardown is killed.

Failures: a missing Postfix tool, a daemon that exits or never listens, a Postfix that never
answers: all are errors with the log tail attached. Never a skip, with or without CI=true:
`make deps` installs everything this needs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "rig"))

from postfix_rig import (  # noqa: E402
    PostfixRig,
    RigError,
    menshen_executable,
    pid_alive,
    tail,
    unix_socket_accepts,
    wait_until,
)

SAMPLES = ROOT / "samples"
# The default categories, spelled out so a test config does not depend on how a partial
# `categories` mapping merges with the defaults.
DEFAULT_CATEGORIES: dict[str, dict[str, object]] = {
    "invoice_fraud": {"action": "reject", "weight": 10},
    "gambling": {"action": "reject", "weight": 10},
    "pharma_spam": {"action": "reject", "weight": 10},
    "phishing": {"action": "quarantine", "weight": 5},
    "confidential": {"action": "quarantine", "weight": 5},
}


def write_config(
    path: Path,
    wordlist_dir: Path,
    categories: dict[str, dict[str, object]] | None = None,
    drain_seconds: int = 20,
) -> Path:
    """Write a menshen.yml for the tests and return its path."""
    config = {
        # Drain bounded well inside the suite's time budget.
        "milter": {"drain_seconds": drain_seconds},
        "wordlists": {
            "directory": str(wordlist_dir),
            "categories": categories if categories is not None else DEFAULT_CATEGORIES,
        },
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path


class MenshenDaemon:
    """One `menshen serve` process under test."""

    def __init__(self, config: Path, socket: Path, workdir: Path) -> None:
        self.config = config
        self.socket = socket
        self.pid_file = workdir / "menshen.pid"
        self.log_path = workdir / "menshen.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "daemon not started"
        return self.process.pid

    def start(self, timeout: float = 30.0) -> MenshenDaemon:
        argv = [
            menshen_executable(),
            "serve",
            "-c",
            str(self.config),
            "--socket",
            f"unix:{self.socket}",
            "--pid-file",
            str(self.pid_file),
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=ROOT
            )
        wait_until(
            self._listening, timeout, f"menshen serve listening on {self.socket}", self._tail
        )
        return self

    def _listening(self) -> bool | None:
        assert self.process is not None
        status = self.process.poll()
        if status is not None:
            raise RigError(
                f"menshen serve exited with status {status} before listening on "
                f"{self.socket}\n{self._tail()}"
            )
        # "listening on" is logged once the socket has its group and mode: only then can
        # Postfix's smtpd (not root) connect, however early root's probe succeeds.
        if "listening on" not in self.log_text():
            return None
        return True if unix_socket_accepts(self.socket) else None

    def _tail(self) -> str:
        return f"--- {self.log_path} ---\n{tail(self.log_path)}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def reload(self, timeout: float = 30.0) -> str:
        """SIGUSR1; returns "reloaded" or "reload refused", whichever the daemon logs next."""

        def outcomes() -> tuple[int, int]:
            text = self.log_text()
            return text.count("reloaded"), text.count("reload refused")

        before = outcomes()
        os.kill(self.pid, signal.SIGUSR1)

        def outcome() -> str | None:
            now = outcomes()
            if now[1] > before[1]:
                return "reload refused"
            if now[0] > before[0]:
                return "reloaded"
            if not self.running():
                raise RigError(f"menshen serve died on SIGUSR1\n{self._tail()}")
            return None

        return wait_until(outcome, timeout, "a reload outcome in the daemon's log", self._tail)

    def terminate(self) -> None:
        """SIGTERM without waiting (see `wait()`)."""
        os.kill(self.pid, signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RigError(
                f"menshen serve still running {timeout:.0f}s after SIGTERM\n{self._tail()}"
            ) from exc

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait for the exit, and assert it was a clean one (status 0)."""
        self.terminate()
        status = self.wait(timeout)
        assert status == 0, f"menshen serve exited with {status} on SIGTERM\n{self._tail()}"
        return status

    def kill(self) -> None:
        """SIGKILL by pid, tolerating a process that has already gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


@pytest.fixture(scope="module")
def rig_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: its parents are mode 0700, and smtpd and smtp-sink (as user
    # postfix) must traverse this tree to reach the milter socket and the dump files.
    base = Path(tempfile.mkdtemp(prefix="menshen-it-"))
    base.chmod(0o755)
    yield base
    if not os.environ.get("MENSHEN_KEEP_RIG"):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def milter_socket(rig_dir: Path) -> Path:
    return rig_dir / "run" / "menshen.sock"


@pytest.fixture(scope="module")
def postfix_rig(rig_dir: Path, milter_socket: Path) -> Iterator[PostfixRig]:
    rig = PostfixRig(rig_dir / "postfix", milter_socket)
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()


@pytest.fixture
def postfix(postfix_rig: PostfixRig) -> PostfixRig:
    postfix_rig.reset()
    return postfix_rig


@pytest.fixture
def wordlist_dir(tmp_path: Path) -> Path:
    target = tmp_path / "wordlists"
    target.mkdir()
    shipped = resources.files("menshen.builtin_wordlists")
    for entry in shipped.iterdir():
        if entry.name.endswith(".txt"):
            (target / entry.name).write_bytes(entry.read_bytes())
    return target


@pytest.fixture
def menshen_config(tmp_path: Path, wordlist_dir: Path) -> Path:
    return write_config(tmp_path / "menshen.yml", wordlist_dir)


@pytest.fixture
def menshen_daemon(
    tmp_path: Path, menshen_config: Path, milter_socket: Path
) -> Iterator[Callable[..., MenshenDaemon]]:
    started: list[MenshenDaemon] = []

    def start(config: Path | None = None, socket: Path | None = None) -> MenshenDaemon:
        workdir = tmp_path / f"daemon{len(started)}"
        workdir.mkdir()
        daemon = MenshenDaemon(config or menshen_config, socket or milter_socket, workdir)
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        if daemon.process is not None and pid_alive(daemon.pid):
            daemon.kill()
