"""Fixtures that run the real `menshen serve` daemon as a subprocess, for the daemon tests.

What:
- `start_daemon` (function scope) and `start_module_daemon` (module scope) are factories:
  `start(config=None, *, wordlists=None, extra_args=(), socket=None, wait_ready=True)`
  writes the config file, starts `menshen serve -c CFG --socket SOCK --pid-file PID` with
  stderr in a log file, and returns a `Daemon` once it is ready: its "listening on" line is
  logged and the socket accepts a connection. `config` is YAML text, used as it is without
  `wordlists`; with `wordlists` the text is parsed, `wordlists.directory` set to that
  directory and the shipped categories spelled out under the ones the text names (menshen
  replaces, not merges, a partial `categories` mapping). `socket` defaults to a unix socket
  in the test's temp dir. The daemon runs as one process (`--workers 1`) unless the
  config or `extra_args` name workers.
- `Daemon`: `.socket` (the milter spec), `.socket_path`, `.pid_file`, `.config_file`,
  `.log()` (stderr so far), `.wait_for_log(regex)`, `.signal(sig)`, `.wait(timeout) -> exit
  code`, `.stop() -> exit code` (SIGTERM, then wait), `.client()` (a connected
  `MilterClient`).
- `run_menshen` (function): `run_menshen(*args)` runs the `menshen` command as an operator
  would (no MENSHEN_CONFIG) and returns the CompletedProcess (text, exit status unchecked).
- `menshen_command()`, `daemon_env()`: how the tests run the `menshen` command themselves.
Test modules import `Daemon` and `StartDaemon` for annotations only (under TYPE_CHECKING):
conftest modules are not importable at run time.

Clean-up: every daemon a test leaves running gets SIGTERM at the end of its test (or
module); libmilter needs up to ~5 s to notice a stop, so instead of waiting there the
process is handed to a session-wide reaper that waits for all of them at once at the end of
the session and SIGKILLs any that outlive the deadline. A daemon that fails to start is
killed at once, and the error carries its log.
"""

from __future__ import annotations

import os
import re
import signal
import socket as socketlib
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from milter_client import DEFAULT_TIMEOUT, MilterClient

SINGLE = ("--workers", "1")  # one process unless a test asks for workers
READY_SECONDS = 20.0  # start-up builds the engine (wordlists, tables): well under a second
STOP_SECONDS = 15.0  # libmilter notices a stop signal within ~5 s, then drains
POLL_SECONDS = 0.02  # the daemon has no readiness notification other than its log and socket

# The default categories of menshen.yml, spelled out for configs that set a wordlist dir.
SHIPPED_CATEGORIES: dict[str, dict[str, Any]] = {
    "invoice_fraud": {"action": "reject", "weight": 10},
    "gambling": {"action": "reject", "weight": 10},
    "pharma_spam": {"action": "reject", "weight": 10},
    "phishing": {"action": "quarantine", "weight": 5},
    "confidential": {"action": "quarantine", "weight": 5},
}


def menshen_command() -> list[str]:
    """The `menshen` console script of the environment running the tests."""
    beside = Path(sys.executable).parent / "menshen"
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-m", "menshen.cli"]


def daemon_env() -> dict[str, str]:
    """The environment minus MENSHEN_CONFIG, so only the file given with -c counts."""
    env = {k: v for k, v in os.environ.items() if k != "MENSHEN_CONFIG"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def socket_accepts(spec: str) -> bool:
    """True when a connection to the milter socket `spec` is accepted (then closed)."""
    if spec.startswith("unix:"):
        family, address = socketlib.AF_UNIX, spec.removeprefix("unix:")
        target: str | tuple[str, int] = address
    else:
        port, host = spec.removeprefix("inet:").split("@", 1)
        family, target = socketlib.AF_INET, (host, int(port))
    with socketlib.socket(family, socketlib.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(target)
        except OSError:
            return False
    return True


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    socket: str
    pid_file: Path
    config_file: Path
    log_file: Path
    client_timeout: float = DEFAULT_TIMEOUT

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def socket_path(self) -> Path | None:
        return Path(self.socket.removeprefix("unix:")) if self.socket.startswith("unix:") else None

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def running(self) -> bool:
        return self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = STOP_SECONDS) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"menshen (pid {self.pid}) still running after {timeout:g}s; log:\n"
                + tail(self.log())
            ) from None

    def stop(self, timeout: float = STOP_SECONDS) -> int:
        if self.running():
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait_for_log(self, pattern: str, timeout: float = 10.0, after: int = 0) -> re.Match[str]:
        """The first match of `pattern` (multiline regex) in the log past offset `after`."""
        regex = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.log(), after)
            if match is not None:
                return match
            if time.monotonic() > deadline or not self.running():
                raise AssertionError(
                    f"{pattern!r} not logged within {timeout:g}s "
                    f"(daemon {'running' if self.running() else 'exited'}); log:\n"
                    + tail(self.log())
                )
            time.sleep(POLL_SECONDS)  # a short poll inside the deadline: the log is a file

    def client(self, **options: Any) -> MilterClient:
        options.setdefault("timeout", self.client_timeout)
        return MilterClient(self.socket, **options)


class Reaper:
    """Waits for stopping daemons at the end of the session; kills what outlives it."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def stop_later(self, daemon: Daemon) -> None:
        if daemon.running():
            daemon.signal(signal.SIGTERM)
            self._processes.append(daemon.process)

    def finish(self) -> None:
        deadline = time.monotonic() + STOP_SECONDS
        for process in self._processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class StartDaemon(Protocol):
    def __call__(
        self,
        config: str | None = None,
        *,
        wordlists: Path | None = None,
        extra_args: Sequence[str] = (),
        socket: str | None = None,
        wait_ready: bool = True,
    ) -> Daemon: ...


@dataclass
class DaemonFactory:
    directory: Path
    reaper: Reaper
    started: list[Daemon] = field(default_factory=list)

    def __call__(
        self,
        config: str | None = None,
        *,
        wordlists: Path | None = None,
        extra_args: Sequence[str] = (),
        socket: str | None = None,
        wait_ready: bool = True,
    ) -> Daemon:
        home = self.directory / f"daemon{len(self.started)}"
        home.mkdir(parents=True)
        config_file = home / "menshen.yml"
        config_file.write_text(_config_text(config, wordlists), encoding="utf-8")
        socket = socket or f"unix:{home / 'menshen.sock'}"
        pid_file = home / "menshen.pid"
        log_file = home / "menshen.log"
        command = [
            *menshen_command(),
            "serve",
            "-c",
            str(config_file),
            "--socket",
            socket,
            "--pid-file",
            str(pid_file),
            # These tests look inside the one process (its spool files, its signals); the
            # pre-forked workers have tests of their own that ask for them.
            *(() if "--workers" in extra_args or "workers:" in (config or "") else SINGLE),
            *extra_args,
        ]
        with log_file.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=daemon_env(),
                cwd=home,
            )
        daemon = Daemon(process, socket, pid_file, config_file, log_file)
        self.started.append(daemon)
        if wait_ready:
            _wait_ready(daemon)
        return daemon

    def cleanup(self) -> None:
        for daemon in self.started:
            self.reaper.stop_later(daemon)


def _config_text(config: str | None, wordlists: Path | None) -> str:
    if wordlists is None:
        return config if config is not None else "mode: enforce\n"
    data = yaml.safe_load(config or "") or {}
    section = data.setdefault("wordlists", {})
    section["directory"] = str(wordlists)
    section["categories"] = {**SHIPPED_CATEGORIES, **(section.get("categories") or {})}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _wait_ready(daemon: Daemon) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while True:
        if not daemon.running():
            raise AssertionError(
                f"menshen exited with {daemon.process.returncode} before listening; log:\n"
                + tail(daemon.log())
            )
        # The log line comes after the socket's owner and mode are set; the probe proves
        # that libmilter accepts connections.
        if " listening on " in daemon.log() and socket_accepts(daemon.socket):
            return
        if time.monotonic() > deadline:
            daemon.process.kill()
            daemon.process.wait()
            raise AssertionError(
                f"menshen not ready within {READY_SECONDS:g}s; log:\n" + tail(daemon.log())
            )
        time.sleep(POLL_SECONDS)  # a short poll inside the deadline loop, not a readiness sleep


@pytest.fixture(scope="session")
def _reaper() -> Iterator[Reaper]:
    reaper = Reaper()
    yield reaper
    reaper.finish()


@pytest.fixture
def start_daemon(tmp_path: Path, _reaper: Reaper) -> Iterator[StartDaemon]:
    factory = DaemonFactory(tmp_path / "daemons", _reaper)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture(scope="module")
def start_module_daemon(
    tmp_path_factory: pytest.TempPathFactory, _reaper: Reaper
) -> Iterator[StartDaemon]:
    factory = DaemonFactory(tmp_path_factory.mktemp("module-daemons"), _reaper)
    try:
        yield factory
    finally:
        factory.cleanup()


class RunMenshen(Protocol):
    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def run_menshen() -> RunMenshen:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*menshen_command(), *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=daemon_env(),
        )

    return run
