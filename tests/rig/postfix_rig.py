"""A private Postfix instance on loopback, delivering to smtp-sink: the shared test/bench rig.

What: `PostfixRig` builds a Postfix configuration of its own under a base directory (its own
config_directory, queue_directory, data_directory and maillog_file; the system's
/etc/postfix/main.cf and /var/spool/postfix are never read or written), listens only on
127.0.0.1:<free port>, relays every message to an `smtp-sink` on another free loopback port,
and optionally hands each SMTP session to a milter on a unix socket. `Sink` is that smtp-sink,
either dumping each delivered message to one file (`-d`) or only counting them (`-c`).
Used by tests/integration/conftest.py and bench/bench_e2e.py (both insert tests/rig into
sys.path; this is a plain module, not a package).

Inputs: a base directory (created if needed; must be reachable by the `postfix` user, so the
rig makes it mode 0755), an optional milter socket path, optional extra main.cf settings.
Outputs: `send()` -> the final SMTP reply as (code, text); `delivered()` -> the bytes of the
messages smtp-sink received; `queue()` / `hold_queue()` -> `postqueue -j` records;
`log_text()` -> Postfix's own log file.

Failures: every problem raises `RigError` with what was tried, what happened, and the tail
of the relevant log: a missing Postfix tool, `postfix check`/`start` failing, a port that
never answers within its deadline. `stop()` tolerates a rig that is already stopped or only
half started, and kills (by recorded pid) any Postfix process that outlives `postfix stop`.

Postfix quirks this module works around (each is explained where it is handled):
- Postfix's admin commands print their errors only when stderr is a terminal; otherwise
  they go to syslog, which a container does not have. Admin commands run with a pty as stderr.
- maillog_file must start with one of maillog_file_prefixes (default /var, /dev/stdout).
- smtpd and smtp-sink run as `postfix` and open absolute paths (milter socket, dump files),
  so every directory on those paths must be traversable by that user.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import pwd
import re
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
REQUIRED_TOOLS = ("postfix", "postconf", "postqueue", "postsuper", "smtp-sink")
SBIN_DIRS = ("/usr/sbin", "/sbin", "/usr/local/sbin")
# The polling interval inside every deadline loop: short enough that a ready service is seen
# within a few milliseconds, long enough not to spin a CPU while a daemon starts.
POLL_SECONDS = 0.02
# Reply code `send()` reports when the connection broke before a final reply: the client still
# owns the message (like after a 4xx), nothing was accepted.
NO_REPLY = 0


class RigError(RuntimeError):
    """The rig could not be set up, driven or observed; the message says what to do."""


def find_tool(name: str) -> str:
    """Absolute path of a Postfix tool; RigError (never a skip) when it is not installed."""
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise RigError(
        f"{name} not found on PATH or in {', '.join(SBIN_DIRS)}: install the Debian package "
        "'postfix' (it also provides smtp-sink and smtp-source), e.g. with `make deps`"
    )


def require_tools(names: Iterable[str] = REQUIRED_TOOLS) -> dict[str, str]:
    """Paths of all the named tools, or one RigError listing every missing one."""
    paths: dict[str, str] = {}
    missing: list[str] = []
    for name in names:
        try:
            paths[name] = find_tool(name)
        except RigError:
            missing.append(name)
    if missing:
        raise RigError(
            f"missing {', '.join(missing)}: install the Debian package 'postfix' "
            "(smtp-sink and smtp-source are part of it), e.g. with `make deps`"
        )
    return paths


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None],
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = lambda: "",
) -> T:
    """Call `probe` until it returns something other than None, within one deadline.

    RigError when the deadline passes, naming `what` and appending `diagnostics()` (a log
    tail, usually) so the failure says why.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            detail = diagnostics()
            raise RigError(f"timed out after {timeout:.1f}s waiting for {what}\n{detail}".rstrip())
        time.sleep(POLL_SECONDS)


def smtp_banner(port: int, host: str = LOOPBACK) -> str | None:
    """The 220 greeting of an SMTP server, or None when it does not answer (yet)."""
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.settimeout(2)
            data = s.recv(512)
    except OSError:
        return None
    text = data.decode("ascii", "replace")
    return text if text.startswith("220") else None


def unix_socket_accepts(path: Path) -> bool:
    """True when something accepts connections on the unix socket at `path`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(1)
            s.connect(str(path))
    except OSError:
        return False
    return True


def tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages; empty when it does not exist."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def pid_alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def child_pids(parent: int) -> list[int]:
    """Pids whose parent is `parent` (from /proc)."""
    children: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
            children.append(int(entry.name))
    return children


def cpu_seconds(pid: int, with_children: bool = False) -> float:
    """utime+stime of a process (plus its reaped children's with `with_children`), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # After the command name: fields[11] utime, [12] stime, [13] cutime, [14] cstime (clock ticks).
    ticks = int(fields[11]) + int(fields[12])
    if with_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def _is_root() -> bool:
    return os.geteuid() == 0


def _postfix_user_exists() -> bool:
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return False
    return True


class Sink:
    """smtp-sink on a loopback port: the last hop, dumping each message to a file or counting.

    `dump_dir` given: `-d DIR/msg.` writes every message (with smtp-sink's X-Client-*/X-Rcpt-*
    pseudo-headers on top) to its own file. `count=True`: `-c` prints a running counter that a
    reader thread follows, so `received` and `last_received_at` are exact without disk I/O.
    """

    def __init__(
        self,
        port: int,
        dump_dir: Path | None = None,
        count: bool = False,
        log_path: Path | None = None,
    ) -> None:
        self.port = port
        self.dump_dir = dump_dir
        self.count = count
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.received = 0
        self.last_received_at: float | None = None
        self._reader: threading.Thread | None = None
        self._stderr_file: Any = None

    def start(self, timeout: float = 10.0) -> None:
        argv = [find_tool("smtp-sink")]
        if _is_root():
            # smtp-sink refuses to run as root without -u; it drops to that user after binding,
            # which is also why the dump directory must be writable by `postfix`.
            argv += ["-u", "postfix"]
        if self.dump_dir is not None:
            self.dump_dir.mkdir(parents=True, exist_ok=True)
            if _is_root() and _postfix_user_exists():
                shutil.chown(self.dump_dir, user="postfix")
            argv += ["-d", str(self.dump_dir / "msg.")]
        if self.count:
            argv.append("-c")
        # Backlog 256: a 20-session load must never see a refused connection at the sink.
        argv += [f"{LOOPBACK}:{self.port}", "256"]
        if self.log_path is not None:
            self._stderr_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.count else subprocess.DEVNULL,
            stderr=self._stderr_file if self._stderr_file is not None else subprocess.DEVNULL,
        )
        if self.count:
            self._reader = threading.Thread(target=self._follow_counter, daemon=True)
            self._reader.start()
        wait_until(
            self._ready,
            timeout,
            f"smtp-sink on {LOOPBACK}:{self.port}",
            lambda: tail(self.log_path) if self.log_path else "",
        )

    def _ready(self) -> bool | None:
        assert self.process is not None
        if self.process.poll() is not None:
            detail = tail(self.log_path) if self.log_path else ""
            raise RigError(
                f"smtp-sink exited with status {self.process.returncode} at start "
                f"(port {self.port} taken?)\n{detail}".rstrip()
            )
        # The probe is itself a session; smtp-sink counts it as sess/quit, never as mesg.
        return True if smtp_banner(self.port) is not None else None

    def _follow_counter(self) -> None:
        # smtp-sink -c rewrites one line "sess=N quit=N mesg=N\r" after every event.
        assert self.process is not None and self.process.stdout is not None
        pattern = re.compile(rb"mesg=(\d+)")
        buffer = b""
        while True:
            chunk = os.read(self.process.stdout.fileno(), 4096)
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\r")
            for line in complete:
                match = pattern.search(line)
                if match and int(match.group(1)) != self.received:
                    self.received = int(match.group(1))
                    self.last_received_at = time.monotonic()

    def files(self) -> list[Path]:
        if self.dump_dir is None:
            return []
        return sorted(p for p in self.dump_dir.iterdir() if p.is_file())

    def clear(self) -> None:
        for path in self.files():
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        if self._reader is not None:
            self._reader.join(timeout=2)
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None


def _run_admin(argv: Sequence[str], timeout: float = 60.0) -> tuple[int, str, str]:
    """Run a Postfix admin command; returns (status, stdout, stderr).

    Postfix commands write their diagnostics to stderr only when it is a terminal (otherwise
    to syslog, which does not exist here), so stderr is a pty and is read back afterwards.
    """
    master_fd, slave_fd = pty.openpty()
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave_fd,
            timeout=timeout,
            check=False,
        )
    finally:
        os.close(slave_fd)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(master_fd, 4096)
        except OSError:  # EIO: the slave side is closed and everything was read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master_fd)
    err = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), err


class PostfixRig:
    """A private Postfix on 127.0.0.1 that relays to a `Sink`; see the module docstring.

    Layout under `base`: etc/ (main.cf, master.cf), queue/, data/, sink/ (dump files),
    maillog (Postfix's log), sink.log. Ports are chosen free at construction.
    """

    def __init__(
        self,
        base: Path,
        milter_socket: Path | None = None,
        *,
        dump: bool = True,
        count: bool = False,
        extra_main_cf: dict[str, str] | None = None,
        hostname: str = "mx.menshen.test",
    ) -> None:
        self.tools = require_tools()
        self.base = base
        self.milter_socket = milter_socket
        self.hostname = hostname
        self.config_dir = base / "etc"
        self.queue_dir = base / "queue"
        self.data_dir = base / "data"
        self.maillog = base / "maillog"
        self.smtp_port = free_port()
        self.sink_port = free_port()
        while self.sink_port == self.smtp_port:
            self.sink_port = free_port()
        self.sink = Sink(
            self.sink_port,
            dump_dir=base / "sink" if dump else None,
            count=count,
            log_path=base / "sink.log",
        )
        self.extra_main_cf = dict(extra_main_cf or {})
        self._master_pid: int | None = None
        self._started = False

    # ---- configuration -------------------------------------------------------------------

    def main_cf(self) -> dict[str, str]:
        """Every main.cf setting the rig writes (the rest are Postfix's compiled-in defaults)."""
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            # Postfix logs through its own postlogd into this file; there is no syslog here.
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.base),
            "myhostname": self.hostname,
            "mydomain": "menshen.test",
            "myorigin": "$myhostname",
            # Nothing is local: every recipient is relayed to the sink.
            "mydestination": "",
            "local_recipient_maps": "",
            # Debian's defaults read /etc/aliases.db and NIS; the rig has neither.
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": f"[{LOOPBACK}]:{self.sink_port}",
            "default_transport": "smtp",
            "relay_transport": "smtp",
            # No DNS at all: the next hop is an IP literal, clients are named from /etc/hosts.
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "smtpd_peername_lookup": "no",
            "biff": "no",
            "smtputf8_enable": "yes",
            # A refused or deferred test message must not bounce anywhere or linger for hours.
            "notify_classes": "",
            "bounce_queue_lifetime": "0",
            "maximal_queue_lifetime": "1h",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "non_smtpd_milters": "",
        }
        if self.milter_socket is not None:
            settings |= {
                "smtpd_milters": f"unix:{self.milter_socket}",
                "milter_default_action": "tempfail",
                "milter_protocol": "6",
                # Short timeouts: a hung milter fails a test in seconds, not Postfix's minutes.
                "milter_connect_timeout": "3s",
                "milter_command_timeout": "10s",
                "milter_content_timeout": "30s",
            }
        else:
            settings["smtpd_milters"] = ""
        settings |= self.extra_main_cf
        return settings

    def _postconf(self, *args: str) -> None:
        status, _out, err = _run_admin([self.tools["postconf"], "-c", str(self.config_dir), *args])
        if status != 0:
            raise RigError(f"postconf {' '.join(args)} failed ({status}): {err.strip()}")

    def configure(self) -> None:
        """Write etc/main.cf and etc/master.cf from scratch."""
        for directory in (self.base, self.config_dir, self.queue_dir, self.data_dir):
            directory.mkdir(parents=True, exist_ok=True)
            # smtpd (as postfix) connects to the milter socket and smtp-sink (as postfix) writes
            # dump files by absolute path: the directories on the way must be traversable.
            directory.chmod(0o755)
        if _is_root() and _postfix_user_exists():
            # Postfix wants data_directory owned by the mail owner (`postfix check` fixes the
            # queue subdirectories itself, not this one).
            shutil.chown(self.data_dir, user="postfix")
        (self.config_dir / "main.cf").write_text("")
        master_proto = Path("/etc/postfix/master.cf")
        if not master_proto.is_file():
            master_proto = Path("/usr/share/postfix/master.cf.dist")
        if not master_proto.is_file():
            raise RigError("no master.cf template (/etc/postfix/master.cf): reinstall 'postfix'")
        shutil.copyfile(master_proto, self.config_dir / "master.cf")
        self._postconf("-e", *(f"{k} = {v}" for k, v in self.main_cf().items()))
        # Drop the :25 listener and listen only on 127.0.0.1:<port>.
        self._postconf("-MX", "smtp/inet")
        service = f"{LOOPBACK}:{self.smtp_port}"
        self._postconf("-M", f"{service}/inet={service} inet n - n - - smtpd")
        # No chroot: `postfix start` (unlike Debian's init script) does not populate a jail,
        # and socket paths stay ordinary paths.
        self._postconf("-F", "*/*/chroot = n")

    def set_main_cf(self, settings: dict[str, str]) -> None:
        """Change main.cf settings of a running rig and reload Postfix."""
        self.extra_main_cf |= settings
        self._postconf("-e", *(f"{k} = {v}" for k, v in settings.items()))
        if self._started:
            self._admin("reload")

    # ---- lifecycle -----------------------------------------------------------------------

    def _admin(self, command: str, timeout: float = 60.0) -> str:
        status, out, err = _run_admin(
            [self.tools["postfix"], "-c", str(self.config_dir), command], timeout=timeout
        )
        if status != 0:
            raise RigError(
                f"`postfix -c {self.config_dir} {command}` failed with status {status}:\n"
                f"{err.strip()}\n{out.strip()}\n--- {self.maillog} ---\n{tail(self.maillog)}"
            )
        return err + out

    def start(self, timeout: float = 20.0) -> None:
        """Configure (when not yet configured), start smtp-sink and Postfix, wait for both."""
        if not _is_root():
            raise RigError("the Postfix rig needs root (postfix start); run the suite as root")
        if not (self.config_dir / "main.cf").exists():
            self.configure()
        self.sink.start(timeout=timeout)
        # No separate `postfix check`: `postfix start` runs the same checks (and creates the
        # queue directories) itself; a separate check costs ~3 s.
        self._started = True
        self._admin("start")
        self._master_pid = self._read_master_pid()
        wait_until(
            lambda: smtp_banner(self.smtp_port),
            timeout,
            f"Postfix smtpd banner on {LOOPBACK}:{self.smtp_port}",
            self._diagnostics,
        )

    def _read_master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _diagnostics(self) -> str:
        return f"--- {self.maillog} ---\n{tail(self.maillog)}"

    def master_pid(self) -> int | None:
        """Pid of Postfix's master process while it runs."""
        pid = self._master_pid or self._read_master_pid()
        return pid if pid is not None and pid_alive(pid) else None

    def stop(self, timeout: float = 20.0) -> None:
        """Stop Postfix and the sink; safe to call twice or after a failed start."""
        try:
            if self._started:
                master = self.master_pid()
                children = child_pids(master) if master else []
                with contextlib.suppress(RigError, subprocess.TimeoutExpired):
                    self._admin("stop", timeout=timeout)
                if master is not None:
                    deadline = time.monotonic() + timeout
                    while pid_alive(master) and time.monotonic() < deadline:
                        time.sleep(POLL_SECONDS)  # waiting for master to finish its shutdown
                    self._kill(master)
                # Children normally exit with master; any that linger are killed by their pid.
                for pid in children:
                    self._kill(pid)
                self._started = False
        finally:
            self.sink.stop()

    @staticmethod
    def _kill(pid: int) -> None:
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> PostfixRig:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- driving and observing -----------------------------------------------------------

    def send(
        self,
        message: bytes,
        sender: str = "alice@sender.test",
        rcpts: Sequence[str] = ("bob@example.com",),
        timeout: float = 60.0,
    ) -> tuple[int, str]:
        """Send one message over SMTP; returns the reply that decided its fate.

        That is the final reply to DATA, or the reply to the greeting, MAIL or RCPT when the
        transaction was refused there. (NO_REPLY, reason) when the connection broke first.
        """
        try:
            with smtplib.SMTP(timeout=timeout) as client:
                code, text = client.connect(LOOPBACK, self.smtp_port)
                if code != 220:
                    return code, _text(text)
                code, text = client.ehlo("client.menshen.test")
                if code != 250:
                    return code, _text(text)
                code, text = client.mail(sender)
                if code != 250:
                    return code, _text(text)
                accepted = 0
                for rcpt in rcpts:
                    code, text = client.rcpt(rcpt)
                    if code in (250, 251):
                        accepted += 1
                if accepted == 0:
                    return code, _text(text)
                code, text = client.data(message)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    client.quit()
                return code, _text(text)
        except smtplib.SMTPConnectError as exc:
            return exc.smtp_code, _text(exc.smtp_error)
        except smtplib.SMTPDataError as exc:  # DATA itself refused (no 354)
            return exc.smtp_code, _text(exc.smtp_error)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            return NO_REPLY, f"connection lost before a final reply: {exc!r}"

    def delivered(self, timeout: float = 10.0, expect: int | None = None) -> list[bytes]:
        """The messages smtp-sink has received, each as bytes.

        With `expect`: waits until at least that many arrived. Without: waits until Postfix's
        queue holds nothing but held mail, so nothing more can arrive (a "nothing delivered"
        check is then conclusive). RigError at the deadline either way.
        """
        if expect is not None:
            wait_until(
                lambda: True if len(self.sink.files()) >= expect else None,
                timeout,
                f"{expect} message(s) at smtp-sink (have {len(self.sink.files())})",
                self._diagnostics,
            )
        else:
            self.wait_drained(timeout)
        return [path.read_bytes() for path in self.sink.files()]

    def wait_drained(self, timeout: float = 10.0) -> None:
        """Wait until every queued message outside the hold queue has been delivered."""
        wait_until(
            lambda: True if not [m for m in self.queue() if m["queue_name"] != "hold"] else None,
            timeout,
            "Postfix queue to drain",
            lambda: json.dumps(self.queue(), indent=1) + "\n" + self._diagnostics(),
        )

    def queue(self) -> list[dict[str, Any]]:
        """Every queued message, one `postqueue -j` record each."""
        status, out, err = _run_admin([self.tools["postqueue"], "-c", str(self.config_dir), "-j"])
        if status != 0:
            raise RigError(f"postqueue -j failed ({status}): {err.strip()}")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def hold_queue(self) -> list[dict[str, Any]]:
        """The messages in the hold queue (quarantined by a milter)."""
        return [m for m in self.queue() if m["queue_name"] == "hold"]

    def wait_for_log(self, needle: str, timeout: float = 10.0) -> None:
        """Wait until Postfix's log holds `needle`: postlogd writes a moment after smtpd
        has answered the client, so a reply in hand does not mean its line is logged."""
        wait_until(
            lambda: True if needle in self.log_text() else None,
            timeout,
            f"{needle!r} in Postfix's log",
            self._diagnostics,
        )

    def log_text(self) -> str:
        """Postfix's log so far."""
        try:
            return self.maillog.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def flush(self) -> None:
        """Ask Postfix to attempt delivery of every deferred message now."""
        status, _out, err = _run_admin([self.tools["postqueue"], "-c", str(self.config_dir), "-f"])
        if status != 0:
            raise RigError(f"postqueue -f failed ({status}): {err.strip()}")

    def delete_queued(self) -> None:
        """Delete every queued message, held ones included."""
        status, _out, err = _run_admin(
            [self.tools["postsuper"], "-c", str(self.config_dir), "-d", "ALL"]
        )
        if status != 0:
            raise RigError(f"postsuper -d ALL failed ({status}): {err.strip()}")

    def reset(self) -> None:
        """Forget earlier traffic: empty the queue (hold included) and the sink's dump files."""
        self.delete_queued()
        self.sink.clear()


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def menshen_executable() -> str:
    """The `menshen` console script of the environment running the tests."""
    beside = Path(sys.executable).parent / "menshen"
    if beside.is_file():
        return str(beside)
    found = shutil.which("menshen")
    if found is None:
        raise RigError("menshen is not installed in this environment: run `make venv`")
    return found
