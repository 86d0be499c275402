"""`menshen serve` in one process: the daemon's composition root (menshen.supervisor runs
it, or forks workers that run it).

In:  a config file (or the built-in default), an optional socket and pid-file override.
Out: a milter listening on the configured socket until SIGTERM, SIGINT or SIGHUP (all three
     stop, as in every libmilter daemon); then no new connection is taken, the connections
     in flight finish their messages (up to milter.drain_seconds) and the process exits 0.
     SIGUSR1 (or `menshen reload`) rebuilds the engine from the files and swaps it in; a
     broken config or wordlist is refused and logged, and the running engine stays.
Fails: exit 2 when the configuration or a wordlist cannot be loaded at start; exit 1 when
     the socket cannot be opened. Errors name the file and line.
Thread safety: signals are blocked before any thread starts and taken by the main thread,
     which only waits for them; libmilter's accept loop and reloads run in their own
     threads. The engine is
     swapped by replacing one reference, which connections read once per message.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import pwd
import signal
import socket as socketlib
import stat
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from menshen import __version__, adapter
from menshen.audit import AuditError
from menshen.composition import assemble
from menshen.config import Config, ConfigError, load_config
from menshen.engine import Engine
from menshen.keywords.wordlist import Wordlist, WordlistError
from menshen.operations import start_operations
from menshen.quota import QuotaStoreError

MILTER_NAME = "menshen"
DEFAULT_USER = "menshen"
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
RELOAD_SIGNAL = signal.SIGUSR1
ENDED_SIGNAL = signal.SIGUSR2  # sent by the milter thread to the process when it ends


class EngineSlot:
    """The engine every new message uses. Swapping is one reference assignment."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self) -> Engine:
        return self._engine

    def swap(self, engine: Engine) -> None:
        self._engine = engine


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config_file: Path | None
    socket: str | None = None  # overrides milter.socket
    pid_file: Path | None = None  # overrides milter.pid_file
    workers: int | None = None  # overrides milter.workers


class _Formatter(logging.Formatter):
    """Postfix style: "text" for information, "warning: text" and "error: text" otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text


def make_logger() -> logging.Logger:
    """Log to stderr: systemd hands it to journald, which adds time and identifier."""
    # The lines carry only the message, so the records need no thread, process or caller.
    # Looking up the thread would also build a threading object for every libmilter
    # connection thread (one per SMTP session), each a few locks and a system call.
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logger = logging.getLogger("menshen")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


QuotaBackendObserver = Callable[[bool], None]


def build_engine(
    config_file: Path | None,
    logger: logging.Logger | None = None,
    on_quota_backend: QuotaBackendObserver | None = None,
) -> tuple[Config, Engine]:
    """Load the configuration and build a complete engine, or raise with every problem."""
    config = load_config(config_file)
    assembly = assemble(config, logger=logger, on_quota_backend=on_quota_backend)
    return config, assembly.engine


class Reloader:
    """Rebuilds the engine from the files and swaps it in, or refuses and keeps the old one."""

    def __init__(
        self,
        options: ServeOptions,
        slot: EngineSlot,
        logger: logging.Logger,
        on_reload: Callable[[bool], None] | None = None,
        on_quota_backend: QuotaBackendObserver | None = None,
    ) -> None:
        self._options = options
        self._slot = slot
        self._log = logger
        self._on_reload = on_reload  # told every outcome (metrics, audit log reopening)
        self._on_quota_backend = on_quota_backend

    def reload(self) -> bool:
        ok = self._reload()
        if self._on_reload is not None:
            self._on_reload(ok)
        return ok

    def _reload(self) -> bool:
        try:
            config, engine = build_engine(
                self._options.config_file, self._log, self._on_quota_backend
            )
        except (ConfigError, WordlistError) as exc:
            self._log.error(
                "reload refused, the running configuration stays: %s", "; ".join(exc.problems)
            )
            return False
        except QuotaStoreError as exc:
            self._log.error("reload refused, the running configuration stays: %s", exc)
            return False
        except Exception:
            self._log.exception("reload refused, the running configuration stays")
            return False
        self._slot.swap(engine)
        self._log.info("reloaded %s", config.source)
        return True


class _MilterThread(threading.Thread):
    """Runs libmilter's accept loop, so the main thread stays free to take signals."""

    def __init__(self, run: Callable[[], None]) -> None:
        super().__init__(name="menshen-milter", daemon=True)
        self._run = run
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the main thread, which decides the exit
            self.error = exc
        finally:
            # Wake the main thread, which waits for nothing but signals.
            os.kill(os.getpid(), ENDED_SIGNAL)


class _ReloadThread:
    """Reloads off the main thread, so the main thread is back waiting for signals at once.

    A SIGUSR1 that arrives during a reload queues exactly one more reload.
    """

    def __init__(self, reloader: Reloader) -> None:
        self._reloader = reloader
        self._lock = threading.Lock()
        self._pending = threading.Semaphore(0)
        self._queued = False
        self._thread = threading.Thread(target=self._loop, name="menshen-reload", daemon=True)
        self._thread.start()

    def request(self) -> None:
        with self._lock:
            if self._queued:
                return
            self._queued = True
        self._pending.release()

    def _loop(self) -> None:
        while True:
            self._pending.acquire()
            with self._lock:
                self._queued = False
            self._reloader.reload()


SIGNALS_TAKEN = STOP_SIGNALS | {RELOAD_SIGNAL, ENDED_SIGNAL, signal.SIGCHLD}


def block_signals() -> None:
    """Before any thread exists: every thread inherits the mask, so the signals reach only
    threads that wait for them.

    The main thread waits for all of them; Linux gives a signal sent to the process to its
    main thread when that thread is waiting for it, so libmilter's own signal thread (which
    also waits for TERM, INT and HUP) does not see them and stop the sessions in flight. A
    Python thread started earlier would make SIGTERM kill the process outright.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS_TAKEN)


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """A pre-forked worker: the parent opened the socket and owns its name and pid file."""

    number: int
    client_reports: socketlib.socket | None = None  # per-client outcomes, to the parent
    # The wordlists the parent validated: the first engine is built from these rather than
    # from the files, which may have changed since (a reload reads the files again).
    wordlists: tuple[Wordlist, ...] | None = None


def serve_process(
    options: ServeOptions, config: Config, logger: logging.Logger, worker: WorkerRole | None
) -> int:
    """Serve mail in this process until a stop signal; returns the exit status.

    A single process opens the socket itself, then drops to milter.user when started as
    root, and only then opens its state (audit trail, quota store). A worker (forked after
    its parent opened the socket and dropped privileges) only serves the socket; on a stop
    it drains and leaves, and the parent removes the socket.
    """
    socket = options.socket or config.milter.socket
    pid_file = options.pid_file or config.milter.pid_file
    if worker is not None:
        return _serve_open_socket(options, config, logger, worker, socket)
    opened = open_listener(socket, config, pid_file, logger)
    if opened != 0:
        return opened
    ours = socket_identity(socket)
    try:
        return _serve_open_socket(options, config, logger, worker, socket)
    finally:
        if pid_file is not None:
            remove_pid_file(pid_file)
        remove_socket_name(socket, ours)


def socket_identity(socket: str) -> tuple[int, int] | None:
    """(device, inode) of a unix socket's name, to remove only our own later."""
    path = unix_path(socket)
    try:
        info = os.stat(path) if path is not None else None
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if info is not None else None


def remove_socket_name(socket: str, ours: tuple[int, int] | None) -> None:
    """Remove the socket's name if it is still ours (not a successor daemon's)."""
    path = unix_path(socket)
    if path is None or ours is None or socket_identity(socket) != ours:
        return
    with contextlib.suppress(OSError):
        path.unlink()


def open_listener(
    socket: str, config: Config, pid_file: Path | None, logger: logging.Logger
) -> int:
    """Open and secure the listening socket, write the pid file, drop privileges.

    Returns 0, or the exit status when the socket cannot be opened (1) or the configured
    user cannot be taken (2).
    """
    settings = config.milter
    try:
        created_directory = prepare_socket_directory(socket)
    except OSError as exc:
        logger.error("cannot create the directory of %s: %s", socket, exc.strerror or exc)
        return 1
    restore = socket_creation_context(socket, settings.socket_group)
    try:
        adapter.listen(MILTER_NAME, socket, settings.timeout_seconds)
    except Exception as exc:
        logger.error("cannot listen on %s: %s", socket, exc)
        return 1
    finally:
        restore()
    secure_socket(socket, settings.socket_group, created_directory, logger)
    if pid_file is not None:
        write_pid_file(pid_file)
    try:
        drop_privileges(settings.user, logger)
    except PrivilegeError as exc:
        logger.error("%s", exc)
        return 2
    return 0


class PrivilegeError(Exception):
    """The configured user cannot be taken."""


def drop_privileges(user: str, logger: logging.Logger) -> None:
    """Started as root: become `user` (its group and supplementary groups) for good.

    The socket is already open, so nothing later needs root; the state the daemon opens
    afterwards (audit trail, quota store, spool files) belongs to that user. A missing user
    is an error, except for the default, which a hand-started test rig may lack.
    """
    if os.geteuid() != 0 or user in ("", "root"):
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        if user == DEFAULT_USER:
            logger.warning("running as root: there is no user %s to drop to", user)
            return
        raise PrivilegeError(f"milter.user: no such user {user!r}") from None
    try:
        os.initgroups(user, entry.pw_gid)
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    except OSError as exc:
        raise PrivilegeError(f"cannot become user {user}: {exc.strerror or exc}") from exc
    logger.info("running as user %s (uid %d)", user, entry.pw_uid)


def _serve_open_socket(
    options: ServeOptions,
    config: Config,
    logger: logging.Logger,
    worker: WorkerRole | None,
    socket: str,
) -> int:
    try:
        # Threads start here (the metrics endpoint): after the signal mask is set.
        operations = start_operations(
            config,
            logger,
            serve_http=worker is None,
            client_reports=worker.client_reports if worker is not None else None,
        )
    except AuditError as exc:
        logger.error("%s", exc)
        return 2
    try:
        engine = assemble(
            config,
            logger=logger,
            on_quota_backend=operations.quota_backend,
            wordlists=worker.wordlists if worker is not None else None,
        ).engine
    except WordlistError as exc:
        for problem in exc.problems:
            logger.error("%s", problem)
        operations.close()
        return 2
    except QuotaStoreError as exc:
        logger.error("cannot open the quota store: %s", exc)
        operations.close()
        return 2
    except (OSError, ImportError) as exc:
        # After dropping privileges: a wordlist or the package itself unreadable to the user.
        logger.error("cannot build the engine as uid %d: %s", os.getuid(), exc)
        operations.close()
        return 2
    settings = config.milter
    slot = EngineSlot(engine)
    counter = adapter.ConnectionCounter(on_change=operations.connections)
    spool = adapter.SpoolSettings(
        memory_bytes=settings.spool_memory_bytes,
        cap_bytes=config.limits.max_message_bytes + 1,  # one more byte: the limit shows
        directory=settings.spool_directory,
    )
    reloader = Reloader(
        options,
        slot,
        logger,
        # A worker's parent validated the files and counts the reload, once for all.
        on_reload=operations.reloaded
        if worker is None
        else lambda ok: operations.reloaded(ok, counted=False),
        on_quota_backend=operations.quota_backend,
    )

    def factory() -> adapter.GuardMilter:
        # Replying at RCPT costs Postfix a round trip per recipient: only when a quota
        # can refuse there.
        if slot.get().checks_quota_at_rcpt:
            return adapter.QuotaCheckingMilter(
                slot.get, spool, counter, logger, operations.observe, operations.refused_at_rcpt
            )
        return adapter.GuardMilter(slot.get, spool, counter, logger, operations.observe)

    milter = _MilterThread(lambda: adapter.serve(factory))
    milter.start()
    if worker is not None:
        logger.info("worker %d (pid %d) serving %s", worker.number, os.getpid(), socket)
    else:
        logger.info(
            "menshen %s listening on %s (%s, mode %s)",
            __version__,
            socket,
            config.source,
            config.policy.mode.value,
        )
    try:
        # A worker leaves the socket's name to its parent.
        drain_socket = socket if worker is None else None
        _wait_for_signals(milter, reloader, drain_socket, counter, settings.drain_seconds, logger)
        if worker is None and milter.is_alive():
            adapter.stop()
            milter.join(timeout=30)
    finally:
        operations.close()
    if milter.error is not None:
        logger.error("cannot serve on %s: %s", socket, milter.error)
        return 1
    if worker is None:
        logger.info("stopped")
    # A worker returns without libmilter's own stop: on its way out that removes the
    # socket's name, which the parent and the other workers still serve.
    return 0


def socket_creation_context(socket: str, group: str) -> Callable[[], None]:
    """Make the socket libmilter is about to create 0660 and in `group`; returns the undo.

    libmilter creates a unix socket with the process umask and group: 0660 at most, never
    world, and already in Postfix's group, so smtpd can never find it unusable.
    """
    previous_umask = os.umask(0o117)
    previous_group = _use_group_for_new_files(socket, group)

    def restore() -> None:
        os.umask(previous_umask)
        if previous_group is not None:
            os.setegid(previous_group)

    return restore


def _wait_for_signals(
    milter: _MilterThread,
    reloader: Reloader,
    socket: str | None,
    counter: adapter.ConnectionCounter,
    drain_seconds: float,
    logger: logging.Logger,
) -> None:
    """Reload on SIGUSR1; on a stop signal drain. Returns when drained or libmilter ended.

    `socket` is the unix socket whose name the drain removes (None: somebody else does).

    The main thread does nothing but wait here, so that a stop signal always finds it
    waiting: libmilter's signal thread waits for the same signals and would otherwise stop
    at once, abandoning the messages in flight.
    """
    reloads = _ReloadThread(reloader)
    waited = STOP_SIGNALS | {RELOAD_SIGNAL, ENDED_SIGNAL}
    while milter.is_alive():
        received = signal.sigwait(waited)
        if received == ENDED_SIGNAL:
            continue  # the accept loop ended by itself (a socket error): is_alive says so
        if received == RELOAD_SIGNAL:
            reloads.request()
            continue
        _drain(socket, counter, drain_seconds, logger)
        return


def _drain(
    socket: str | None,
    counter: adapter.ConnectionCounter,
    drain_seconds: float,
    logger: logging.Logger,
) -> None:
    """Let the connections in flight finish their messages before libmilter stops.

    libmilter's own stop abandons open sessions (its worker pool stops polling them), so
    Postfix would wait for its milter timeout and then tempfail them. Instead the unix
    socket's name is removed first: Postfix can no longer connect (new sessions get
    milter_default_action, a 4xx) while the open sessions carry on.
    """
    path = unix_path(socket) if socket is not None else None
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()
    logger.info("stopping: waiting for %d connection(s) to finish", counter.active)
    deadline = time.monotonic() + drain_seconds
    while counter.active > 0:
        left = deadline - time.monotonic()
        if left <= 0:
            logger.warning(
                "stopping with %d connection(s) still open after %gs; their clients retry",
                counter.active,
                drain_seconds,
            )
            return
        # A second stop signal means "now".
        received = signal.sigtimedwait(STOP_SIGNALS, min(left, 0.1))
        if received is not None:
            logger.warning("stopping now, %d connection(s) still open", counter.active)
            return


def unix_path(socket: str) -> Path | None:
    return Path(socket.removeprefix("unix:")) if socket.startswith("unix:") else None


def prepare_socket_directory(socket: str) -> bool:
    """Create the socket's directory when missing; True when we created it."""
    path = unix_path(socket)
    if path is None or path.parent.is_dir():
        return False
    path.parent.mkdir(mode=0o750, parents=True)
    return True


def _use_group_for_new_files(socket: str, group: str) -> int | None:
    """Make new files belong to `group` (when we may); returns the group to restore."""
    if unix_path(socket) is None:
        return None
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return None
    previous = os.getegid()
    try:
        os.setegid(gid)
    except PermissionError:
        return None  # not root and not a member: secure_socket tries chown afterwards
    return previous


def secure_socket(socket: str, group: str, created_directory: bool, logger: logging.Logger) -> None:
    path = unix_path(socket)
    if path is None:
        return
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        gid = -1  # no such group here (a test rig): leave the group as it is
    try:
        if gid >= 0:
            os.chown(path, -1, gid)
            if created_directory:  # an operator's own directory keeps its group
                os.chown(path.parent, -1, gid)
        os.chmod(path, 0o660)
    except OSError as exc:
        logger.warning("cannot set owner or mode of %s: %s", path, exc.strerror or exc)


def write_pid_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(f"{os.getpid()}\n", encoding="ascii")
    temporary.replace(path)


def remove_pid_file(path: Path) -> None:
    try:
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def make_listener_nonblocking(socket: str) -> bool:
    """Set O_NONBLOCK on the listening socket libmilter opened for `socket`.

    Several processes poll the one socket: all wake for a connection, one accept() wins.
    libmilter's listener loops on EAGAIN, but on a blocking socket the losers would sleep
    in accept() until the next connection, and not notice a stop meanwhile. The flag
    belongs to the open file, so every forked worker shares it; accepted connections do not
    inherit it on Linux. pymilter does not expose the descriptor: it is found by its address.
    """
    wanted_path = unix_path(socket)
    wanted_port = (
        None if wanted_path is not None else int(socket.split(":", 1)[1].split("@", maxsplit=1)[0])
    )
    for name in os.listdir("/proc/self/fd"):
        try:
            if not stat.S_ISSOCK(os.fstat(int(name)).st_mode):
                continue
            probe = socketlib.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue
        with probe:
            try:
                if not probe.getsockopt(socketlib.SOL_SOCKET, socketlib.SO_ACCEPTCONN):
                    continue
                address = probe.getsockname()
            except OSError:
                continue
            if wanted_path is not None:
                found = address == str(wanted_path)
            else:
                found = isinstance(address, tuple) and address[1] == wanted_port
            if found:
                probe.setblocking(False)
                return True
    return False


def read_pid_file(path: Path) -> int:
    """The pid of a running daemon, for `menshen reload`. Raises OSError or ValueError."""
    pid = int(path.read_text(encoding="ascii").strip())
    os.kill(pid, 0)  # exists and we may signal it
    return pid
