"""`menshen serve` on every core: a supervising parent and pre-forked workers on one socket.

In:  the serve options and milter.workers (auto: one per core). With one worker the daemon
     runs as a single process (menshen.daemon.serve_process); with more, this module's
     parent:
       - opens the listening socket once (libmilter's opensocket), secures it (0660, group
         postfix) and makes it non-blocking, writes the pid file, and drops to
         milter.user when started as root;
       - validates the configuration by building an engine (then lets it go, keeping the
         wordlists it read: workers build their first engine from those, so a file that
         changes or breaks after validation cannot make them fail to start);
       - forks the workers, each of which serves that socket with its own engine, quota
         store connections and audit file descriptor, recording metrics into a shared
         multi-process directory that the parent alone serves over HTTP;
       - restarts a worker that dies, after a back-off that grows while workers keep dying
         young (0.5 s doubling to 30 s), and logs each death with its status;
       - on SIGUSR1 builds the new configuration itself first: a broken one is refused,
         logged and counted once, and no worker is told; a good one is passed on to every
         worker (SIGUSR1), and restarted workers start from it;
       - on SIGTERM/SIGINT/SIGHUP removes the socket's name (Postfix can no longer connect
         and uses milter_default_action), tells every worker to drain, waits for them up to
         milter.drain_seconds (then SIGKILL), removes the pid file and exits 0.
Out: the exit status: 0 stopped by a signal, 1 the socket cannot be opened, 2 configuration.
Why forking after opensocket is safe: the parent starts no libmilter thread (it never calls
     smfi_main), and forks before its own metrics thread starts; a worker restarted later is
     forked while only that thread runs, and builds everything it uses itself. Each worker
     leaves by os._exit after draining, never through libmilter's stop, whose clean-up
     would unlink the socket's name under the other workers.
A parent that dies without stopping them (SIGKILL) takes its workers along: each asked the
     kernel for SIGTERM at its parent's death, and drains and leaves on it.
Thread safety: the parent is one thread waiting for signals (plus the metrics endpoint).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from menshen import __version__
from menshen.clientrates import ClientReportReader
from menshen.composition import assemble
from menshen.config import Config, ConfigError, load_config
from menshen.daemon import (
    RELOAD_SIGNAL,
    STOP_SIGNALS,
    ServeOptions,
    WorkerRole,
    block_signals,
    make_listener_nonblocking,
    make_logger,
    open_listener,
    remove_pid_file,
    remove_socket_name,
    serve_process,
    socket_identity,
)
from menshen.keywords.wordlist import Wordlist, WordlistError
from menshen.metrics import (
    ClientRatesCollector,
    Metrics,
    MetricsServer,
    enable_multiprocess,
    exposition_registry,
    new_registry,
    worker_exited,
)
from menshen.operations import client_window
from menshen.quota import QuotaStoreError

BACKOFF_FIRST = 0.5  # seconds before restarting a worker that died young
BACKOFF_MAX = 30.0
YOUNG_SECONDS = 30.0  # a worker that lived longer than this resets the back-off
KILL_GRACE = 10.0  # after drain_seconds, how long workers get before SIGKILL


def serve(options: ServeOptions) -> int:
    """The `menshen serve` entry point: one process, or a parent and its workers."""
    block_signals()
    logger = make_logger()
    try:
        config = load_config(options.config_file)
    except ConfigError as exc:
        for problem in exc.problems:
            logger.error("%s", problem)
        return 2
    count = options.workers or config.milter.worker_count()
    if count <= 1:
        return serve_process(options, config, logger, worker=None)
    return Supervisor(options, config, logger, count).run()


@dataclass
class _Worker:
    number: int
    started: float  # monotonic


class Supervisor:
    def __init__(
        self, options: ServeOptions, config: Config, logger: logging.Logger, count: int
    ) -> None:
        self._options = options
        self._config = config
        # The wordlists of the configuration last validated: a worker, restarted or not,
        # starts from these, not from files that may have changed (or broken) since.
        self._wordlists: tuple[Wordlist, ...] | None = None  # None: workers read the files
        self._log = logger
        self._count = count
        self._socket = options.socket or config.milter.socket
        self._pid_file = options.pid_file or config.milter.pid_file
        self._workers: dict[int, _Worker] = {}  # pid -> worker
        self._restart_at: dict[int, float] = {}  # worker number -> monotonic time
        self._failures: dict[int, int] = {}  # worker number -> deaths in a row while young
        self._server: MetricsServer | None = None
        self._metrics: Metrics | None = None
        self._metrics_dir: Path | None = None
        self._ours: tuple[int, int] | None = None  # the socket name's (device, inode)
        # Workers send each message's (client, failed) here; one window sees them all.
        self._reports, self._worker_reports = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._clients = client_window(config)

    # --- start and stop ----------------------------------------------------------------

    def run(self) -> int:
        opened = open_listener(self._socket, self._config, self._pid_file, self._log)
        if opened != 0:
            return opened
        self._ours = socket_identity(self._socket)
        self._metrics_dir = Path(tempfile.mkdtemp(prefix="menshen-metrics-"))
        try:
            if not make_listener_nonblocking(self._socket):
                self._log.warning("cannot find the listening socket to make it non-blocking")
            if not self._validate(self._config):
                return 2
            return self._run()
        finally:
            if self._pid_file is not None:
                remove_pid_file(self._pid_file)
            remove_socket_name(self._socket, self._ours)
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _run(self) -> int:
        assert self._metrics_dir is not None
        enable_multiprocess(self._metrics_dir)
        self._metrics = Metrics(new_registry(), client_gauges=False)  # reloads, build info
        try:
            for number in range(1, self._count + 1):
                self._spawn(number)
            # Threads only after the first forks.
            ClientReportReader(self._reports, self._clients, self._log).start()
            self._start_endpoint()
            self._log.info(
                "menshen %s listening on %s (%s, mode %s, %d workers)",
                __version__,
                self._socket,
                self._config.source,
                self._config.policy.mode.value,
                self._count,
            )
            self._supervise()
        finally:
            self._stop_workers()
            if self._server is not None:
                self._server.stop()
        self._log.info("stopped")
        return 0

    def _start_endpoint(self) -> None:
        settings = self._config.metrics
        if not settings.enabled or self._metrics_dir is None:
            return
        registry = exposition_registry(
            self._metrics_dir, ClientRatesCollector(self._clients.snapshot)
        )
        server = MetricsServer(registry, settings.address, settings.port)
        try:
            host, port = server.start()
        except OSError as exc:
            self._log.error(
                "metrics: cannot listen on %s port %d (%s); serving mail without metrics",
                settings.address,
                settings.port,
                exc.strerror or exc,
            )
            return
        self._server = server
        self._log.info("metrics on http://%s:%d/metrics", host, port)

    def _stop_workers(self) -> None:
        # Postfix can no longer connect; the sessions in flight go on.
        remove_socket_name(self._socket, self._ours)
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self._config.milter.drain_seconds + KILL_GRACE
        while self._workers and time.monotonic() < deadline:
            signal.sigtimedwait({signal.SIGCHLD}, 0.2)
            self._reap(restart=False)
        for pid in list(self._workers):
            self._log.warning("worker pid %d did not finish in time; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while self._workers:
            self._reap(restart=False, block=True)

    # --- workers -----------------------------------------------------------------------

    def _spawn(self, number: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            status = 1
            try:
                _stop_with_parent(parent)
                if self._server is not None:
                    self._server.close_in_child()
                self._reports.close()
                role = WorkerRole(
                    number, client_reports=self._worker_reports, wordlists=self._wordlists
                )
                status = serve_process(self._options, self._config, self._log, role)
            except BaseException:
                self._log.exception("worker %d failed", number)
            finally:
                logging.shutdown()
                os._exit(status)
        self._workers[pid] = _Worker(number=number, started=time.monotonic())

    def _reap(self, restart: bool, block: bool = False) -> None:
        while self._workers:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self._workers.clear()
                return
            if pid == 0:
                return
            worker = self._workers.pop(pid, None)
            if worker is None:
                continue
            if self._metrics_dir is not None:
                worker_exited(pid, self._metrics_dir)
            if not restart:
                continue
            lived = time.monotonic() - worker.started
            failures = 0 if lived > YOUNG_SECONDS else self._failures.get(worker.number, 0) + 1
            self._failures[worker.number] = failures
            delay = 0.0 if failures == 0 else min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (failures - 1))
            self._log.error(
                "worker %d (pid %d) %s after %.1fs; restarting it in %gs",
                worker.number,
                pid,
                _describe_status(status),
                lived,
                delay,
            )
            self._restart_at[worker.number] = time.monotonic() + delay
            if block:
                return

    def _restart_due(self) -> None:
        now = time.monotonic()
        for number, when in list(self._restart_at.items()):
            if when <= now:
                del self._restart_at[number]
                self._spawn(number)

    # --- signals -----------------------------------------------------------------------

    def _supervise(self) -> None:
        waited = STOP_SIGNALS | {RELOAD_SIGNAL, signal.SIGCHLD}
        while True:
            timeout = 1.0
            if self._restart_at:
                timeout = max(0.0, min(self._restart_at.values()) - time.monotonic())
            received = signal.sigtimedwait(waited, timeout)
            if received is None:
                pass
            elif received.si_signo == signal.SIGCHLD:
                self._reap(restart=True)
            elif received.si_signo == RELOAD_SIGNAL:
                self._reload()
            else:
                self._log.info(
                    "stopping: telling %d worker(s) to finish their messages", len(self._workers)
                )
                return
            self._restart_due()

    def _reload(self) -> None:
        try:
            config = load_config(self._options.config_file)
        except ConfigError as exc:
            self._refused("; ".join(exc.problems))
            return
        if not self._validate(config, reloading=True):
            return
        if self._metrics is not None:
            self._metrics.reload(True)
        self._config = config  # workers restarted from now on start from it (and its lists)
        self._log.info("reloaded %s; telling %d worker(s)", config.source, len(self._workers))
        for pid in self._workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, RELOAD_SIGNAL)

    def _validate(self, config: Config, reloading: bool = False) -> bool:
        """Build the engine once here, so that a broken file never reaches a worker."""
        try:
            assembly = assemble(config, logger=self._log)
        except (WordlistError, ConfigError) as exc:
            problems = "; ".join(exc.problems)
        except QuotaStoreError as exc:
            problems = f"cannot open the quota store: {exc}"
        else:
            assembly.engine.close()  # its store connections must not reach the workers
            self._wordlists = assembly.wordlists
            return True
        if reloading:
            self._refused(problems)
        else:
            self._log.error("%s", problems)
        return False

    def _refused(self, problems: str) -> None:
        self._log.error("reload refused, the running configuration stays: %s", problems)
        if self._metrics is not None:
            self._metrics.reload(False)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _stop_with_parent(parent: int) -> None:
    """Have the kernel send this worker SIGTERM when its parent dies (even by SIGKILL).

    Without it, workers of a killed parent would go on serving a socket nobody supervises,
    and hold the quota store and the audit file of a daemon the service manager restarts.
    The worker then drains and leaves, as on any stop.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        return  # not Linux: the parent's own stop still ends the workers
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
