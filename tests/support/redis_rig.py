"""A real Redis for tests: Debian's redis-server on 127.0.0.1, a free port, nothing on disk.

In:  `RedisServer(directory)` runs `redis-server` (found by `find_redis_server()`: PATH, then
     /usr/bin and the sbin directories) in the foreground (`--daemonize no`) with
     `--port N --bind 127.0.0.1 --save "" --appendonly no --dir DIRECTORY`, so it never
     writes a snapshot and a restart starts empty; its output goes to `redis.log` there.
     The port is picked free on the first `start()` (a port taken between the pick and
     the bind is detected and another one tried) and kept for every later `start()`, so a
     client configured with `.url` reaches the restarted server.
Out: a server ready when a raw-socket `PING` answers `+PONG` (probed with a deadline,
     never a bare sleep), with `.url` (redis://127.0.0.1:N/0), `.port`, `.start()`,
     `.stop()` (SIGTERM, then wait; SIGKILL past the deadline), `.kill()` (SIGKILL),
     `.running()` and `.log()`. `stop()` and `kill()` tolerate a server that is not running.
Fails: a missing redis-server binary, or a server that exits or never answers, raises
     `RedisRigError` with instructions and the log tail: the tests fail, they never skip.
Thread safety: one RedisServer is driven by one thread (the test's).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from net import LOOPBACK, free_port

BIN_DIRS = ("/usr/bin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/local/sbin")
READY_SECONDS = 20.0  # an empty server answers in milliseconds; this is the failure bound
STOP_SECONDS = 10.0
POLL_SECONDS = 0.01  # redis-server has no readiness notification other than answering
PORT_ATTEMPTS = 5  # free ports tried when another process takes the picked one first


class RedisRigError(Exception):
    """redis-server is missing or would not start; the message says what to do."""


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    for directory in BIN_DIRS:
        candidate = Path(directory) / "redis-server"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RedisRigError(
        "redis-server not found on PATH or in /usr/bin: install Debian's redis-server "
        "(`make deps`); these tests need a real Redis and are never skipped"
    )


def redis_answers_pong(port: int, host: str = LOOPBACK) -> bool:
    """Probe with a raw socket and RESP, independent of the client under test."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as probe:
            probe.sendall(b"*1\r\n$4\r\nPING\r\n")
            answer = b""
            while not answer.endswith(b"\r\n"):
                chunk = probe.recv(64)
                if not chunk:
                    return False
                answer += chunk
            return answer == b"+PONG\r\n"
    except OSError:
        return False


class RedisServer:
    def __init__(self, directory: Path, executable: str | None = None) -> None:
        self.directory = directory
        self.executable = executable or find_redis_server()
        self.process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        assert self._port is not None, "redis-server was never started"
        return self._port

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.directory / "redis.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until PING answers."""
        if self.running():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._port is not None:
            self._launch(self._port)
            return
        for attempt in range(PORT_ATTEMPTS):
            port = free_port()
            try:
                self._launch(port)
            except RedisRigError:
                if attempt + 1 == PORT_ATTEMPTS or "Address already in use" not in self.log():
                    raise
                continue
            self._port = port
            return

    def _launch(self, port: int) -> None:
        argv = [
            self.executable,
            "--port",
            str(port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
        ]
        with self.log_path.open("ab") as out:
            try:
                self.process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
                )
            except OSError as exc:
                raise RedisRigError(
                    f"cannot run {self.executable}: {exc}; install Debian's redis-server "
                    "(`make deps`)"
                ) from exc
        deadline = time.monotonic() + READY_SECONDS
        while not redis_answers_pong(port):
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RedisRigError(
                    f"redis-server exited with status {code} at start on port {port}:\n"
                    + self.log()
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RedisRigError(
                    f"redis-server did not answer PING within {READY_SECONDS:g} s on port "
                    f"{port}:\n{self.log()}"
                )
            time.sleep(POLL_SECONDS)  # a short poll inside the deadline, not a readiness sleep

    def stop(self) -> None:
        """SIGTERM and wait (SIGKILL past the deadline); the port is free afterwards."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
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

    def log(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return f"--- {self.log_path}\n" + "\n".join(text.splitlines()[-lines:])
