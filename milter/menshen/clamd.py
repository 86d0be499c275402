"""menshen's own clamd client: FILDES and INSTREAM scans, PING and VERSION over stdlib sockets.

In:  `ClamdSettings`: one or more clamd addresses (`unix:/path` or `tcp:host:port`, IPv6 hosts
     in brackets: `tcp:[::1]:3310`), connect and read timeouts, menshen's own stream cap
     (`max_stream_bytes`, kept below clamd's StreamMaxLength) and the INSTREAM chunk size.
     `ClamdClient.scan(data)` takes the bytes to scan (bytes or a memoryview). On a unix:
     address (with `pass_descriptor`) the data is copied into a sealed memfd whose
     descriptor clamd receives (FILDES) and scans in place; over tcp:, or when clamd
     answers FILDES with an error, it is streamed (INSTREAM) in `chunk_bytes` pieces.
Out: `ScanResult(outcome, signature, detail, address)`, where outcome is
     - CLEAN        only for the exact reply `stream: OK` (FILDES: `fd[N]: OK`);
     - INFECTED     for `stream: <name> FOUND` (name as clamd gave it, custom databases add
                    `.UNOFFICIAL`);
     - UNSCANNABLE  when clamd cannot give a verdict and a retry would fail the same way:
                    `Heuristics.Encrypted.*` and `Heuristics.Limits.Exceeded.*` detections,
                    clamd's "size limit exceeded" / "Limits Exceeded" errors, and data above
                    `max_stream_bytes` (refused here, before any byte is sent);
     - ERROR        for everything else: connection refused, missing socket, timeout, reset,
                    broken pipe, EOF before the reply, an over-long, garbled or unknown reply.
     ERROR never means clean: the policy turns it into a tempfail.
     `ping()` is True when clamd answers `PONG`; `version()` returns clamd's version line.
Fails: `scan`, `ping` and `version` never raise: every failure is an ERROR result, False or
     "". `ClamdSettings(...)` raises ValueError for a malformed address or a non-positive limit,
     so a bad configuration is refused when it is loaded, not at the first message.
Failover: the addresses are tried in order. A result of ERROR from one moves on to the next;
     the first CLEAN, INFECTED or UNSCANNABLE answer wins (UNSCANNABLE is a property of the data,
     another clamd would say the same). When every address fails, the ERROR's detail lists why
     each one failed and `address` names the last one tried.
Timeouts: `connect_timeout` bounds connecting; `read_timeout` bounds the whole exchange after
     the connection is made (sending the stream and waiting for the reply), so one address
     costs at most connect_timeout + read_timeout.
Thread safety: a client holds only immutable settings and opens a new socket per call, so one
     client may be shared by any number of threads.
"""

from __future__ import annotations

import enum
import fcntl
import os
import re
import socket
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# clamd's replies are one short line; anything longer is not clamd talking.
MAX_REPLY_BYTES = 4096
# Longest signature name accepted in a FOUND reply (real names are well under 100 bytes).
MAX_SIGNATURE_CHARS = 256
# INSTREAM chunk lengths are 32-bit big-endian unsigned integers.
_MAX_CHUNK = 0xFFFFFFFF
_LENGTH = struct.Struct("!L")

_FD = struct.Struct("i")
# What a reply is about: the stream (INSTREAM) or the descriptor clamd received (FILDES).
_SUBJECT_RE = re.compile(r"(?:stream|fd\[[0-9]{1,10}\]): ")
# A signature name is printable ASCII without spaces; clamd's extended detection info adds a
# parenthesised hash and size, which is printable as well.
_FOUND_RE = re.compile(rf"([!-~]{{1,{MAX_SIGNATURE_CHARS}}}) FOUND")
_CLAMD_ERROR = "clamd error: "
_ENCRYPTED_PREFIX = "Heuristics.Encrypted"
_LIMITS_PREFIX = "Heuristics.Limits.Exceeded"
_LIMIT_PHRASES = ("size limit exceeded", "limits exceeded")


class ScanOutcome(enum.Enum):
    """What a scan established about the data."""

    CLEAN = "clean"
    INFECTED = "infected"
    UNSCANNABLE = "unscannable"  # no verdict, and a retry would not give one either
    ERROR = "error"  # no verdict because of the scanner; a retry later may succeed


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The outcome of one scan. `signature` is set for INFECTED (and for heuristic
    UNSCANNABLE detections); `detail` says why for UNSCANNABLE and ERROR; `address` is the
    clamd that answered (for ERROR: the last one tried, "" when none was)."""

    outcome: ScanOutcome
    signature: str = ""
    detail: str = ""
    address: str = ""


@dataclass(frozen=True, slots=True)
class ClamdSettings:
    """Where clamd listens and how long and how much menshen is prepared to give it."""

    addresses: tuple[str, ...]
    connect_timeout: float = 2.0
    read_timeout: float = 30.0
    # menshen's own cap, below clamd's StreamMaxLength: above it clamd answers with an error
    # and drops the connection mid-stream, which is slower and less clear than refusing here.
    max_stream_bytes: int = 25 * 1024 * 1024
    chunk_bytes: int = 65536
    # On a unix: address, hand clamd a descriptor of an in-memory copy (FILDES) instead of
    # streaming the bytes: clamd then scans it in place rather than spooling a copy.
    pass_descriptor: bool = True

    def __post_init__(self) -> None:
        for address in self.addresses:
            parse_address(address)
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("clamd timeouts must be positive")
        if self.max_stream_bytes < 0:
            raise ValueError("clamd max_stream_bytes must not be negative")
        if not 0 < self.chunk_bytes <= _MAX_CHUNK:
            raise ValueError(f"clamd chunk_bytes must be between 1 and {_MAX_CHUNK}")


@dataclass(frozen=True, slots=True)
class _Address:
    text: str  # as configured, for results and messages
    family: socket.AddressFamily
    path: str = ""  # unix
    host: str = ""  # tcp
    port: int = 0  # tcp


def parse_address(text: str) -> _Address:
    """Parse `unix:/path` or `tcp:host:port` (`tcp:[v6addr]:port`); ValueError when malformed."""
    kind, sep, rest = text.partition(":")
    if sep and kind == "unix":
        if not rest.startswith("/"):
            raise ValueError(f"clamd address {text!r}: a unix socket path must be absolute")
        return _Address(text, socket.AF_UNIX, path=rest)
    if sep and kind == "tcp":
        host, sep, port_text = rest.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"clamd address {text!r}: expected tcp:host:port")
        return _Address(text, socket.AF_INET, host=host, port=int(port_text))
    raise ValueError(f"clamd address {text!r}: expected unix:/path or tcp:host:port")


class _ExchangeError(Exception):
    """One address could not give an answer (internal: becomes an ERROR result)."""


class ClamdClient:
    """Scans data with clamd's INSTREAM command, failing over between addresses."""

    def __init__(self, settings: ClamdSettings) -> None:
        self._settings = settings
        self._addresses = tuple(parse_address(a) for a in settings.addresses)

    @property
    def settings(self) -> ClamdSettings:
        return self._settings

    def scan(self, data: bytes | memoryview) -> ScanResult:
        """Scan `data`; never raises (see the module docstring for the outcomes)."""
        try:
            view = memoryview(data).cast("B")
        except (TypeError, ValueError) as exc:
            return ScanResult(ScanOutcome.ERROR, detail=f"cannot read the data to scan: {exc}")
        if len(view) > self._settings.max_stream_bytes:
            return ScanResult(
                ScanOutcome.UNSCANNABLE,
                detail=(
                    f"too large to scan: {len(view)} bytes > "
                    f"max_stream_bytes {self._settings.max_stream_bytes}"
                ),
            )
        if not self._addresses:
            return ScanResult(ScanOutcome.ERROR, detail="no clamd address configured")
        reasons: list[str] = []
        for address in self._addresses:
            try:
                result = self._scan_one(address, view)
            except Exception as exc:  # a bug here must still end as "no verdict", never raise
                result = ScanResult(
                    ScanOutcome.ERROR,
                    detail=f"internal error: {type(exc).__name__}: {exc}",
                    address=address.text,
                )
            if result.outcome is not ScanOutcome.ERROR:
                return result
            reasons.append(f"{address.text}: {result.detail}")
        return ScanResult(
            ScanOutcome.ERROR, detail="; ".join(reasons), address=self._addresses[-1].text
        )

    def ping(self, address: str | None = None) -> bool:
        """True when clamd (the given address, or any configured one) answers PONG."""
        for target in self._targets(address):
            try:
                if self._command(target, b"zPING\0") == "PONG":
                    return True
            except _ExchangeError:
                continue
        return False

    def version(self, address: str | None = None) -> str:
        """clamd's version line (e.g. `ClamAV 1.4.6/27000/...`) from the given address or the
        first configured one that answers; "" when none does."""
        for target in self._targets(address):
            try:
                reply = self._command(target, b"zVERSION\0")
            except _ExchangeError:
                continue
            if reply.startswith("ClamAV "):
                return reply
        return ""

    # -- internals ---------------------------------------------------------------------

    def _targets(self, address: str | None) -> tuple[_Address, ...]:
        if address is None:
            return self._addresses
        try:
            return (parse_address(address),)
        except ValueError:
            return ()

    def _scan_one(self, address: _Address, view: memoryview) -> ScanResult:
        if address.family == socket.AF_UNIX and self._settings.pass_descriptor:
            result = self._scan_descriptor(address, view)
            if result.outcome is not ScanOutcome.ERROR or not result.detail.startswith(
                _CLAMD_ERROR
            ):
                return result
            # clamd answered but refused the descriptor (a confinement that will not let it
            # read the file, say): the stream still works, at the cost of its copy.
        return self._scan_stream(address, view)

    def _scan_descriptor(self, address: _Address, view: memoryview) -> ScanResult:
        try:
            scratch = _scratch_copy(view)
        except OSError as exc:
            return ScanResult(
                ScanOutcome.ERROR,
                detail=f"cannot copy the data for clamd: {_describe(exc)}",
                address=address.text,
            )

        def send(sock: socket.socket, deadline: float) -> None:
            _settimeout(sock, deadline)
            sock.sendall(b"zFILDES\0")
            # clamd takes the descriptor from the next message, which needs a byte.
            sock.sendmsg([b"\0"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _FD.pack(scratch))])

        try:
            return self._exchange(address, "the descriptor", send)
        finally:
            os.close(scratch)  # clamd holds its own copy once the message is sent

    def _scan_stream(self, address: _Address, view: memoryview) -> ScanResult:
        def send(sock: socket.socket, deadline: float) -> None:
            for piece in self._instream(view):
                _settimeout(sock, deadline)
                sock.sendall(piece)

        return self._exchange(address, "the stream", send)

    def _exchange(
        self, address: _Address, what: str, send: Callable[[socket.socket, float], None]
    ) -> ScanResult:
        """Connect, `send` the scan request, then read and classify clamd's one reply.

        A failed send still reads the reply: clamd writes its reason (e.g. "INSTREAM size
        limit exceeded. ERROR") and closes before taking everything, and that answer, not
        the broken pipe, says what happened.
        """
        try:
            sock = self._connect(address)
        except _ExchangeError as exc:
            return ScanResult(ScanOutcome.ERROR, detail=str(exc), address=address.text)
        deadline = time.monotonic() + self._settings.read_timeout
        with sock:
            try:
                send_error: str | None = None
                try:
                    send(sock, deadline)
                except TimeoutError:
                    raise _ExchangeError(f"timed out sending {what}") from None
                except OSError as exc:
                    send_error = f"sending {what} failed: {_describe(exc)}"
                try:
                    reply = _read_reply(sock, deadline)
                except _ExchangeError as exc:
                    raise _ExchangeError(send_error or str(exc)) from None
            except _ExchangeError as exc:
                return ScanResult(ScanOutcome.ERROR, detail=str(exc), address=address.text)
        return _classify(reply, address.text)

    def _instream(self, view: memoryview) -> Iterator[bytes | memoryview]:
        yield b"zINSTREAM\0"
        step = self._settings.chunk_bytes
        for start in range(0, len(view), step):
            chunk = view[start : start + step]
            yield _LENGTH.pack(len(chunk))
            yield chunk
        yield _LENGTH.pack(0)

    def _command(self, address: _Address, command: bytes) -> str:
        sock = self._connect(address)
        deadline = time.monotonic() + self._settings.read_timeout
        with sock:
            try:
                _settimeout(sock, deadline)
                sock.sendall(command)
            except OSError as exc:
                raise _ExchangeError(f"sending the command failed: {_describe(exc)}") from None
            return _read_reply(sock, deadline)

    def _connect(self, address: _Address) -> socket.socket:
        timeout = self._settings.connect_timeout
        try:
            if address.family == socket.AF_UNIX:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(timeout)
                    sock.connect(address.path)
                except BaseException:
                    sock.close()
                    raise
                return sock
            return socket.create_connection((address.host, address.port), timeout=timeout)
        except TimeoutError:
            raise _ExchangeError(f"connect timed out after {timeout:g} s") from None
        except OSError as exc:
            raise _ExchangeError(f"connect failed: {_describe(exc)}") from None
        except UnicodeError:  # a host name the IDNA codec refuses, raised by getaddrinfo
            raise _ExchangeError(f"connect failed: invalid host name {address.host!r}") from None


def _scratch_copy(view: memoryview) -> int:
    """A read-only in-memory file holding `view`, positioned at its start; raises OSError."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:  # not Linux: an unlinked temporary file does the same job
        fd, name = tempfile.mkstemp(prefix="menshen-scan-")
        os.unlink(name)
    else:
        fd = memfd_create("menshen-scan", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        written = 0
        while written < len(view):  # pwrite leaves the offset at 0, where clamd reads
            written += os.pwrite(fd, view[written:], written)
        if memfd_create is not None:
            # clamd receives a read-write descriptor; sealed, the copy cannot be changed.
            fcntl.fcntl(
                fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK
            )
    except BaseException:
        os.close(fd)
        raise
    return fd


def _settimeout(sock: socket.socket, deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError
    sock.settimeout(remaining)


def _read_reply(sock: socket.socket, deadline: float) -> str:
    """Read one NUL-terminated reply of at most MAX_REPLY_BYTES, before the deadline."""
    buffer = bytearray()
    while True:
        try:
            _settimeout(sock, deadline)
            received = sock.recv(MAX_REPLY_BYTES + 1 - len(buffer))
        except TimeoutError:
            raise _ExchangeError("timed out waiting for the reply") from None
        except OSError as exc:
            raise _ExchangeError(f"reading the reply failed: {_describe(exc)}") from None
        if not received:
            if buffer:
                raise _ExchangeError(f"connection closed inside the reply {_show(bytes(buffer))}")
            raise _ExchangeError("connection closed without a reply")
        buffer += received
        end = buffer.find(b"\0")
        if end >= 0:
            if end != len(buffer) - 1:
                # Without sessions clamd sends exactly one reply; more is not clamd talking.
                raise _ExchangeError(f"unexpected data after the reply {_show(bytes(buffer))}")
            break
        if len(buffer) > MAX_REPLY_BYTES:
            raise _ExchangeError(f"reply longer than {MAX_REPLY_BYTES} bytes")
    try:
        text = bytes(buffer[:-1]).decode("ascii")
    except UnicodeDecodeError:
        raise _ExchangeError(f"garbled reply {_show(bytes(buffer))}") from None
    if not text.isprintable():
        raise _ExchangeError(f"garbled reply {_show(bytes(buffer))}")
    return text


def _classify(reply: str, address: str) -> ScanResult:
    """Parse strictly: only `<subject>: OK` is clean, only `<subject>: NAME FOUND` is a
    detection, where the subject is `stream` (INSTREAM) or `fd[N]` (FILDES)."""
    subject = _SUBJECT_RE.match(reply)
    answer = reply[subject.end() :] if subject else ""
    if answer == "OK":
        return ScanResult(ScanOutcome.CLEAN, address=address)
    found = _FOUND_RE.fullmatch(answer) if subject else None
    if found:
        name = found.group(1)
        if name.startswith(_ENCRYPTED_PREFIX):
            return ScanResult(
                ScanOutcome.UNSCANNABLE, signature=name, detail="encrypted", address=address
            )
        if name.startswith(_LIMITS_PREFIX):
            return ScanResult(
                ScanOutcome.UNSCANNABLE,
                signature=name,
                detail="clamd scan limits exceeded",
                address=address,
            )
        return ScanResult(ScanOutcome.INFECTED, signature=name, address=address)
    lowered = reply.lower()
    if lowered.endswith("error") and any(phrase in lowered for phrase in _LIMIT_PHRASES):
        return ScanResult(ScanOutcome.UNSCANNABLE, detail=f"clamd: {_show(reply)}", address=address)
    if reply.endswith(" ERROR"):
        return ScanResult(
            ScanOutcome.ERROR, detail=f"{_CLAMD_ERROR}{_show(reply)}", address=address
        )
    return ScanResult(ScanOutcome.ERROR, detail=f"unexpected reply {_show(reply)}", address=address)


def _show(value: str | bytes, limit: int = 120) -> str:
    """A reply quoted for logs: repr() escapes control bytes, the cut bounds the length."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _describe(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
