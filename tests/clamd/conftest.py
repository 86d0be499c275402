"""Fixtures for the clamd client tests: a real clamd with a generated database, and a fake.

What:
- `signature_db` (session): a directory holding a tiny signature database generated here:
  `menshen-test.hdb` (MD5 hash signatures, sigtool's `md5:size:name` format, computed with
  hashlib because sigtool ships in Debian's `clamav` package, not in `clamav-daemon`) and
  `menshen-test.ndb` (a body signature of EICAR's hex). Names are `Menshen.Test.*`; clamd
  reports them with the suffix `.UNOFFICIAL` because they are not from a signed database.
- `clamd` (session): Debian's clamd started in the foreground with a generated config (unix
  socket in a temp dir, no TCP, StreamMaxLength 25M, MaxThreads 4, archives and mail
  scanned, AlertEncryptedArchive and AlertExceedsMax on, so encrypted and over-limit content
  is reported instead of passing as OK). Ready when `zPING` answers `PONG`. The yielded
  `ClamdServer` has `.address` (`unix:/path`), `.stop()`, `.start()`, `.pause()` /
  `.resume()` (SIGSTOP/SIGCONT, a hung clamd), `.log()`. A test that stops or pauses it
  must start or resume it again (in a `finally`); teardown kills it in any state.
- `fake_clamd` (function, factory): `fake_clamd(mode, *, reply=b"", tcp=False)` starts a
  threaded socketserver on a unix socket in tmp_path (or 127.0.0.1:<free port>) and returns
  a `FakeClamd` with `.address` and `.connections`. Modes: "hang" (accepts, never reads or
  answers), "close" (reads the command, closes), "garbage" (reads the stream, answers
  `\\xff\\xfe nonsense\\0`), "ok", "found NAME", "size-limit" (reads the command, answers
  `INSTREAM size limit exceeded. ERROR\\0` and closes, as clamd does above StreamMaxLength),
  "raw" (reads the stream, sends `reply` verbatim, closes), "refuse-descriptor" (answers
  FILDES with clamd's error for a file it may not read, INSTREAM with OK). FILDES takes
  the descriptor and keeps its content in `.descriptors`; its replies read `fd[9]: ...`.
  PING and VERSION are answered in the "ok" and "found" modes. Every fake is shut down at
  the end of its test.

Failures: a missing clamd binary is a test failure with instructions, with or without
CI=true, never a skip; a clamd that exits or never answers PONG fails with its log tail.
"""

from __future__ import annotations

import os
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# -- the fake clamd --------------------------------------------------------------------

GARBAGE_REPLY = b"\xff\xfe nonsense\0"
SIZE_LIMIT_REPLY = b"INSTREAM size limit exceeded. ERROR\0"
MAX_COMMAND = 64


class _Handler(socketserver.StreamRequestHandler):
    server: _UnixServer | _TcpServer

    def handle(self) -> None:
        fake = self.server.fake
        fake.count_connection()
        try:
            if fake.mode == "hang":
                fake.stopping.wait()
                return
            command = self._read_command()
            if command is None:
                return
            if fake.mode == "close":
                # Close our side, then read out what the client still sends, so that it sees
                # an end of file rather than a reset for unread data.
                self.request.shutdown(socket.SHUT_WR)
                while self.request.recv(65536):
                    pass
                return
            if fake.mode == "size-limit":
                self.wfile.write(SIZE_LIMIT_REPLY)
                return
            if command == b"zINSTREAM":
                if not self._drain_stream():
                    return
                self.wfile.write(fake.stream_reply())
            elif command == b"zFILDES":
                if not self._receive_descriptor():
                    return
                self.wfile.write(fake.descriptor_reply())
            elif command == b"zPING" and fake.answers_commands():
                self.wfile.write(b"PONG\0")
            elif command == b"zVERSION" and fake.answers_commands():
                self.wfile.write(b"ClamAV 0.0.0-fake\0")
            else:
                self.wfile.write(fake.stream_reply())
        except OSError:
            return  # the client gave up (timeout, close): nothing left to answer

    def _read_command(self) -> bytes | None:
        # From the socket itself: a buffered read would also swallow the byte that carries
        # a FILDES descriptor, and with it the descriptor.
        command = bytearray()
        while len(command) < MAX_COMMAND:
            byte = self.request.recv(1)
            if not byte:
                return None
            if byte == b"\0":
                return bytes(command)
            command += byte
        return None

    def _receive_descriptor(self) -> bool:
        """Take the descriptor clamd would scan and keep what it holds."""
        _data, ancillary, _flags, _address = self.request.recvmsg(1, socket.CMSG_SPACE(4))
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                (descriptor,) = struct.unpack("i", payload[:4])
                with os.fdopen(descriptor, "rb") as scanned:
                    self.server.fake.record_descriptor(scanned.read())
                return True
        return False

    def _drain_stream(self) -> bool:
        while True:
            header = self.rfile.read(4)
            if len(header) < 4:
                return False
            (length,) = struct.unpack("!L", header)
            if length == 0:
                return True
            if len(self.rfile.read(length)) < length:
                return False


class _UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeClamd

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # handler errors are client disconnects; the tests assert on the client side


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    fake: FakeClamd

    def handle_error(self, request: object, client_address: object) -> None:
        pass


@dataclass
class FakeClamd:
    mode: str
    reply: bytes = b""
    address: str = ""
    stopping: threading.Event = field(default_factory=threading.Event)
    _connections: int = 0
    descriptors: list[bytes] = field(default_factory=list)  # contents of FILDES descriptors
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def count_connection(self) -> None:
        with self._lock:
            self._connections += 1

    def answers_commands(self) -> bool:
        return self.mode == "ok" or self.mode.startswith("found ")

    def record_descriptor(self, content: bytes) -> None:
        with self._lock:
            self.descriptors.append(content)

    def descriptor_reply(self) -> bytes:
        if self.mode == "refuse-descriptor":
            return b"fd[9]: lstat() failed: Permission denied. ERROR\0"
        return self.stream_reply().replace(b"stream: ", b"fd[9]: ", 1)

    def stream_reply(self) -> bytes:
        if self.mode == "refuse-descriptor":
            return b"stream: OK\0"
        if self.mode == "ok":
            return b"stream: OK\0"
        if self.mode.startswith("found "):
            return f"stream: {self.mode.removeprefix('found ')} FOUND\0".encode()
        if self.mode == "raw":
            return self.reply
        return GARBAGE_REPLY


FAKE_MODES = ("hang", "close", "garbage", "ok", "size-limit", "raw", "refuse-descriptor")


@pytest.fixture
def fake_clamd(tmp_path: Path) -> Iterator[Callable[..., FakeClamd]]:
    started: list[tuple[FakeClamd, _UnixServer | _TcpServer, threading.Thread]] = []

    def start(mode: str, *, reply: bytes = b"", tcp: bool = False) -> FakeClamd:
        if mode not in FAKE_MODES and not mode.startswith("found "):
            raise ValueError(f"unknown fake clamd mode {mode!r}")
        fake = FakeClamd(mode, reply)
        server: _UnixServer | _TcpServer
        if tcp:
            server = _TcpServer(("127.0.0.1", 0), _Handler)
            port = server.socket.getsockname()[1]
            fake.address = f"tcp:127.0.0.1:{port}"
        else:
            path = tmp_path / f"fake-{len(started)}.sock"
            server = _UnixServer(str(path), _Handler)
            fake.address = f"unix:{path}"
        server.fake = fake
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        started.append((fake, server, thread))
        return fake

    yield start
    for fake, server, thread in started:
        fake.stopping.set()  # releases "hang" handlers
        server.shutdown()
        server.server_close()
        thread.join(5)
