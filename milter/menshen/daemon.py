"""`menshen serve`: the daemon's composition root.

In:  a config file (or the built-in default), an optional socket and pid-file override.
Out: a milter listening on the configured socket until SIGTERM, SIGINT or SIGHUP (libmilter
     treats all three as "stop"); then in-flight connections are drained and the process
     exits 0. SIGUSR1 (or `menshen reload`) rebuilds the engine from the files and swaps it
     in; a broken config or wordlist is refused and logged, and the running engine stays.
Fails: exit 2 when the configuration or a wordlist cannot be loaded at start; exit 1 when
     the socket cannot be opened. Errors name the file and line.
Thread safety: signals are blocked before any thread starts, so libmilter's signal thread
     (and our reload thread for SIGUSR1) receive them; the engine is swapped by replacing
     one reference, which connections read once per message.
"""

from __future__ import annotations

import grp
import logging
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from menshen import __version__, adapter
from menshen.composition import assemble
from menshen.config import Config, ConfigError, load_config
from menshen.engine import Engine
from menshen.keywords.wordlist import WordlistError

MILTER_NAME = "menshen"
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
RELOAD_SIGNAL = signal.SIGUSR1


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


class _Formatter(logging.Formatter):
    """Postfix style: "text" for information, "warning: text" and "error: text" otherwise."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text


def make_logger() -> logging.Logger:
    """Log to stderr: systemd hands it to journald, which adds time and identifier."""
    logger = logging.getLogger("menshen")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger


def build_engine(config_file: Path | None) -> tuple[Config, Engine]:
    """Load the configuration and build a complete engine, or raise with every problem."""
    config = load_config(config_file)
    assembly = assemble(config)
    return config, assembly.engine


class Reloader:
    """Waits for SIGUSR1 in its own thread and swaps in a freshly built engine."""

    def __init__(self, options: ServeOptions, slot: EngineSlot, logger: logging.Logger) -> None:
        self._options = options
        self._slot = slot
        self._log = logger
        self._thread = threading.Thread(target=self._wait, name="menshen-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _wait(self) -> None:
        while True:
            signal.sigwait({RELOAD_SIGNAL})
            self.reload()

    def reload(self) -> bool:
        try:
            config, engine = build_engine(self._options.config_file)
        except (ConfigError, WordlistError) as exc:
            self._log.error(
                "reload refused, the running configuration stays: %s", "; ".join(exc.problems)
            )
            return False
        except Exception:
            self._log.exception("reload refused, the running configuration stays")
            return False
        self._slot.swap(engine)
        self._log.info("reloaded %s", config.source)
        return True


def serve(options: ServeOptions) -> int:
    # Before any thread exists: threads inherit the mask, libmilter's signal thread then
    # sigwaits for the stop signals and ours for SIGUSR1. A Python thread started earlier
    # would make SIGTERM kill the process outright instead of stopping it cleanly.
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS | {RELOAD_SIGNAL})
    logger = make_logger()
    try:
        config, engine = build_engine(options.config_file)
    except (ConfigError, WordlistError) as exc:
        for problem in exc.problems:
            logger.error("%s", problem)
        return 2
    socket = options.socket or config.milter.socket
    pid_file = options.pid_file or config.milter.pid_file
    settings = config.milter
    slot = EngineSlot(engine)
    counter = adapter.ConnectionCounter()
    spool = adapter.SpoolSettings(
        memory_bytes=settings.spool_memory_bytes,
        cap_bytes=config.limits.max_message_bytes + 1,  # one more byte: the limit shows
        directory=settings.spool_directory,
    )
    try:
        created_directory = _prepare_socket_directory(socket)
    except OSError as exc:
        logger.error("cannot create the directory of %s: %s", socket, exc.strerror or exc)
        return 1
    Reloader(options, slot, logger).start()

    def factory() -> adapter.GuardMilter:
        return adapter.GuardMilter(slot.get, spool, counter, logger)

    def after_open() -> None:
        os.umask(previous_umask)
        _secure_socket(socket, settings.socket_group, created_directory, logger)
        if pid_file is not None:
            _write_pid_file(pid_file)
        logger.info(
            "menshen %s listening on %s (%s, mode %s)",
            __version__,
            socket,
            config.source,
            config.policy.mode.value,
        )

    # libmilter creates a unix socket with the process umask: 0660 at most, never world.
    previous_umask = os.umask(0o117)
    try:
        adapter.run(MILTER_NAME, socket, factory, settings.timeout_seconds, after_open)
    except Exception as exc:
        logger.error("cannot serve on %s: %s", socket, exc)
        return 1
    finally:
        if pid_file is not None:
            _remove_pid_file(pid_file)
    logger.info("stopping: waiting for %d connection(s) to finish", counter.active)
    if not counter.wait_idle(settings.drain_seconds):
        logger.warning(
            "stopped with %d connection(s) still open after %gs; their clients retry",
            counter.active,
            settings.drain_seconds,
        )
    logger.info("stopped")
    return 0


def _unix_path(socket: str) -> Path | None:
    return Path(socket.removeprefix("unix:")) if socket.startswith("unix:") else None


def _prepare_socket_directory(socket: str) -> bool:
    """Create the socket's directory when missing; True when we created it."""
    path = _unix_path(socket)
    if path is None or path.parent.is_dir():
        return False
    path.parent.mkdir(mode=0o750, parents=True)
    return True


def _secure_socket(
    socket: str, group: str, created_directory: bool, logger: logging.Logger
) -> None:
    path = _unix_path(socket)
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


def _write_pid_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(f"{os.getpid()}\n", encoding="ascii")
    temporary.replace(path)


def _remove_pid_file(path: Path) -> None:
    try:
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
    except OSError:
        pass


def read_pid_file(path: Path) -> int:
    """The pid of a running daemon, for `menshen reload`. Raises OSError or ValueError."""
    pid = int(path.read_text(encoding="ascii").strip())
    os.kill(pid, 0)  # exists and we may signal it
    return pid
