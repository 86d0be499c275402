"""Prometheus metrics: every menshen_* metric is created here, on a registry given to us.

In:  a CollectorRegistry (never prometheus-client's global default), then events: a decided
     message (Envelope, Verdict, size), connections in flight, a reload outcome, and the
     quota events quota_warning(rule), quota_limit_hit(rule), quota_backend_up(up).
Out: the metrics below, served over HTTP by MetricsServer. Names follow Prometheus'
     conventions: one prefix, base units (seconds, bytes), counters end in _total.
     Label values come only from closed sets in this module or from names the operator
     configures (wordlist categories, quota rule names), and even those are capped at
     MAX_LABEL_VALUES distinct values per label, past which they count as "other".
     Addresses, terms, queue ids and virus names are never labels (they go to the audit log).
Fails: recording never raises for any verdict. MetricsServer.start raises OSError when the
     address cannot be bound; the daemon logs it and serves mail without metrics.
Thread safety: prometheus-client's metrics are thread-safe; the label guards lock.
Several processes: every metric is created in Metrics.__init__ and gauges declare how they
     combine, so pre-forked workers can each build a Metrics on their own registry with
     PROMETHEUS_MULTIPROC_DIR set (before prometheus_client is first imported), the process
     that serves HTTP exposes exposition_registry(that directory) (prometheus-client's
     multiprocess mode) and calls worker_exited(pid, directory) when a worker ends. The two
     per-client gauges are computed at scrape time and are not merged across processes.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from menshen import __version__
from menshen.model import (
    AV_ERROR,
    AV_INFECTED,
    AV_SKIPPED,
    AV_UNSCANNABLE,
    INTERNAL_ERROR,
    KEYWORD_HIT,
    QUOTA_EXCEEDED,
    QUOTA_WARNING,
    Action,
    Envelope,
    Verdict,
)

PREFIX = "menshen"
MAX_LABEL_VALUES = 64  # distinct operator-named values per label; more count as "other"
OTHER = "other"
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
SIZE_BUCKETS = (1e3, 1e4, 1e5, 1e6, 1e7, 5e7)

ACTIONS = tuple(action.value for action in Action)
MODES = ("enforce", "monitor")
STAGES = ("extract", "structure", "keywords", "attachments", "antivirus", "quota", "policy")
CLAMD_RESULTS = ("clean", "infected", "unscannable", "error", "skipped")
RELOAD_RESULTS = ("ok", "failed")

# Modes that exist in prometheus-client 0.16 too: how worker processes' values combine.
_GaugeMode = Literal["min", "max", "livesum"]

# The antivirus finding that decides a scan's outcome, strongest first.
_CLAMD_OUTCOME = (
    (AV_INFECTED, "infected"),
    (AV_ERROR, "error"),
    (AV_UNSCANNABLE, "unscannable"),
    (AV_SKIPPED, "skipped"),
)


CLIENTS_OVER = (
    "clients_over_failure_ratio",
    "Client addresses whose rejected + tempfailed share of messages is above the "
    "configured ratio over the sliding window (the log names them).",
)
CLIENT_RATIO_MAX = (
    "client_failure_ratio_max",
    "Highest rejected + tempfailed share of messages of any client address with "
    "enough messages in the sliding window (0 to 1).",
)


class ClientRatesCollector:
    """The two per-client gauges, computed at scrape time, for a multi-process server."""

    def __init__(self, snapshot: Callable[[], tuple[int, float]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[GaugeMetricFamily]:
        over, highest = self._snapshot()
        yield GaugeMetricFamily(f"{PREFIX}_{CLIENTS_OVER[0]}", CLIENTS_OVER[1], value=over)
        yield GaugeMetricFamily(
            f"{PREFIX}_{CLIENT_RATIO_MAX[0]}", CLIENT_RATIO_MAX[1], value=highest
        )


class BoundedLabel:
    """Admits at most `limit` distinct values (or only `allowed`); the rest become "other"."""

    def __init__(self, limit: int = MAX_LABEL_VALUES, allowed: Iterable[str] = ()) -> None:
        self._allowed = frozenset(allowed)
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if self._allowed:
            return value if value in self._allowed else OTHER
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) < self._limit:
                self._seen.add(value)
                return value
        return OTHER


class Metrics:
    """All of menshen's metrics on one registry, with one method per event."""

    def __init__(
        self,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
        client_gauges: bool = True,
    ) -> None:
        """client_gauges=False: a pre-forked worker, whose parent serves those two gauges
        (ClientRatesCollector) from the one window that sees every worker's traffic."""
        self._clock = clock

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"{PREFIX}_{name}", doc, labels, registry=registry)

        def gauge(name: str, doc: str, mode: _GaugeMode, labels: tuple[str, ...] = ()) -> Gauge:
            # multiprocess_mode is how worker processes' values combine; ignored otherwise.
            return Gauge(f"{PREFIX}_{name}", doc, labels, registry=registry, multiprocess_mode=mode)

        def histogram(
            name: str, doc: str, buckets: tuple[float, ...], labels: tuple[str, ...] = ()
        ) -> Histogram:
            return Histogram(f"{PREFIX}_{name}", doc, labels, registry=registry, buckets=buckets)

        self.build_info = gauge(
            "build_info",
            "Always 1; the labels say what is running.",
            "max",
            ("version", "python", "pymilter"),
        )
        self.messages = counter(
            "messages_total",
            "Messages decided, by the policy's action; mode=monitor counts what enforce mode "
            "would have done (the message was accepted).",
            ("action", "mode"),
        )
        self.findings = counter(
            "findings_total",
            "Findings reported by the scanners (one message can have several).",
            ("scanner", "code", "category"),
        )
        self.category_messages = counter(
            "keyword_messages_total",
            "Messages with at least one keyword hit in the category.",
            ("category",),
        )
        self.message_bytes = histogram(
            "message_size_bytes", "Size of the messages decided.", SIZE_BUCKETS
        )
        self.scanned_bytes = counter("scanned_bytes_total", "Bytes of the messages decided.")
        self.scan_seconds = histogram(
            "message_scan_seconds",
            "Time from end of message to verdict, all stages.",
            DURATION_BUCKETS,
        )
        self.stage_seconds = histogram(
            "stage_duration_seconds",
            "Time spent per stage of the engine.",
            DURATION_BUCKETS,
            ("stage",),
        )
        self.clamd_scans = counter(
            "clamd_scans_total",
            "Messages handed to the antivirus stage, by outcome (error: clamd down, slow "
            "or garbled; skipped: not scanned by configuration).",
            ("result",),
        )
        self.quota_warnings = counter(
            "quota_warnings_total",
            "Messages that crossed a quota's warning level.",
            ("rule",),
        )
        self.quota_limits = counter(
            "quota_limits_hit_total",
            "Messages refused (tempfail) because a quota was exhausted.",
            ("rule",),
        )
        self.quota_backend = gauge(
            "quota_backend_up",
            "1 when the shared quota store (Redis) answers, 0 while counting locally.",
            "min",
        )
        self.reloads = counter("reloads_total", "Configuration reloads, by result.", ("result",))
        self.last_reload_ok = gauge(
            "config_last_reload_successful",
            "1 when the last reload (or the start) loaded the configuration, 0 when refused.",
            "min",
        )
        self.last_reload_time = gauge(
            "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful configuration load.",
            "max",
        )
        self.connections = gauge(
            "milter_connections_active", "Milter connections from Postfix in flight.", "livesum"
        )
        self.clients_over: Gauge | None = None
        self.client_ratio_max: Gauge | None = None
        if client_gauges:
            self.clients_over = gauge(CLIENTS_OVER[0], CLIENTS_OVER[1], "livesum")
            self.client_ratio_max = gauge(CLIENT_RATIO_MAX[0], CLIENT_RATIO_MAX[1], "max")
        self.audit_errors = counter("audit_errors_total", "Audit lines that could not be written.")

        self._category = BoundedLabel()
        self._rule = BoundedLabel()
        self._scanner = BoundedLabel()
        self._code = BoundedLabel()
        self._stage = BoundedLabel(allowed=STAGES)
        # Children that always exist, so a scrape shows zeros rather than nothing and
        # rate() sees the first event of each kind.
        for action in ACTIONS:
            for mode in MODES:
                self.messages.labels(action=action, mode=mode)
        for result in CLAMD_RESULTS:
            self.clamd_scans.labels(result=result)
        for result in RELOAD_RESULTS:
            self.reloads.labels(result=result)
        # Looked up once: a labels() call per stage per message would cost more than the
        # observation itself.
        self._stage_children = {stage: self.stage_seconds.labels(stage=stage) for stage in STAGES}
        self._message_children = {
            (action, mode): self.messages.labels(action=action, mode=mode)
            for action in ACTIONS
            for mode in MODES
        }
        self.build_info.labels(
            version=__version__, python=platform.python_version(), pymilter=_version("pymilter")
        ).set(1)
        self.quota_backend.set(1)
        self.loaded()

    # --- events ---------------------------------------------------------------------------

    def message(self, envelope: Envelope, verdict: Verdict, size: int) -> None:
        """One decided message. `envelope` is accepted for symmetry and never labels."""
        del envelope  # addresses are never labels
        decided = verdict.monitored_action or verdict.action
        mode = "monitor" if verdict.monitored_action is not None else "enforce"
        self._message_children[(decided.value, mode)].inc()  # every action and mode exists
        self.message_bytes.observe(size)
        self.scanned_bytes.inc(size)
        categories: set[str] = set()
        for finding in verdict.findings:
            # A quota finding's category is its rule, counted by the quota metrics instead.
            keyword_like = finding.category and not finding.code.startswith("QUOTA_")
            category = self._category(finding.category) if keyword_like else ""
            self.findings.labels(
                scanner=self._scanner(finding.scanner),
                code=self._code(finding.code),
                category=category,
            ).inc()
            if finding.code == KEYWORD_HIT and category:
                categories.add(category)
            elif finding.code == QUOTA_WARNING:
                self.quota_warning(finding.category)
            elif finding.code == QUOTA_EXCEEDED:
                self.quota_limit_hit(finding.category)
        for category in categories:
            self.category_messages.labels(category=category).inc()
        timings = dict(verdict.timings)
        for stage, seconds in verdict.timings:
            if stage != "total":
                child = self._stage_children.get(stage)
                if child is None:
                    child = self.stage_seconds.labels(stage=self._stage(stage))
                child.observe(seconds)
        if "total" in timings:
            self.scan_seconds.observe(timings["total"])
        if "antivirus" in timings:
            self.clamd_scans.labels(result=_clamd_result(verdict)).inc()

    def refused_at_rcpt(self, verdict: Verdict) -> None:
        """A recipient refused at RCPT; the message itself is never sent, so not counted."""
        for finding in verdict.findings:
            if finding.code == QUOTA_EXCEEDED:
                self.quota_limit_hit(finding.category)

    def connections_in_flight(self, active: int) -> None:
        self.connections.set(active)

    def reload(self, ok: bool) -> None:
        self.reloads.labels(result="ok" if ok else "failed").inc()
        if ok:
            self.loaded()
        else:
            self.last_reload_ok.set(0)

    def loaded(self) -> None:
        """The configuration in use was loaded just now (start or reload)."""
        self.last_reload_ok.set(1)
        self.last_reload_time.set(self._clock())

    def quota_warning(self, rule: str = "") -> None:
        """A message crossed the warning level of quota `rule` (an operator-named rule)."""
        self.quota_warnings.labels(rule=self._rule(rule)).inc()

    def quota_limit_hit(self, rule: str = "") -> None:
        """A message was refused because quota `rule` is exhausted."""
        self.quota_limits.labels(rule=self._rule(rule)).inc()

    def quota_backend_up(self, up: bool) -> None:
        """The shared quota store answered (True) or is being bypassed (False)."""
        self.quota_backend.set(1 if up else 0)

    def watch_clients(self, snapshot: Callable[[], tuple[int, float]]) -> None:
        """Read (clients over the ratio, highest ratio) at every scrape.

        Computed when scraped so the gauges fall back as the window slides on, even when no
        mail arrives; a multi-process server has each worker report its own window.
        """
        if self.clients_over is not None and self.client_ratio_max is not None:
            self.clients_over.set_function(lambda: float(snapshot()[0]))
            self.client_ratio_max.set_function(lambda: snapshot()[1])

    def audit_failed(self) -> None:
        self.audit_errors.inc()


def _clamd_result(verdict: Verdict) -> str:
    codes = {f.code for f in verdict.findings if f.scanner == "antivirus"}
    if INTERNAL_ERROR in codes:
        return "error"
    for code, result in _CLAMD_OUTCOME:
        if code in codes:
            return result
    return "clean"


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


Registry = CollectorRegistry  # for modules that may not import prometheus_client themselves


def new_registry() -> CollectorRegistry:
    """A fresh registry (never prometheus-client's global one)."""
    return CollectorRegistry(auto_describe=True)


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(sample name, labels, value) of every sample in Prometheus text format.

    Raises ValueError for text that is not in that format.
    """
    return [
        (sample.name, dict(sample.labels), float(sample.value))
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    ]


def enable_multiprocess(directory: Path) -> None:
    """Record every metric created from now on in `directory`, one file set per process.

    For pre-forked workers: the parent calls this before any Metrics exists, and each
    process (parent and workers, forked or restarted) then writes its own files, which
    exposition_registry(directory) merges. prometheus-client picks its value class when it
    is first imported, from PROMETHEUS_MULTIPROC_DIR; setting both here makes the choice
    independent of import order.
    """
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue(  # type: ignore[no-untyped-call]
        process_identifier=_ProcessId()
    )


class _ProcessId:
    """os.getpid(), read again only after a fork.

    prometheus-client asks for the process id on every update, to notice a fork and open
    the new process's own files. os.getpid() is a system call, and a message makes about
    twenty updates; a fork hook keeps the answer current instead.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self._pid = os.getpid()

    def __call__(self) -> int:
        return self._pid


def exposition_registry(
    multiprocess_dir: Path | None, clients: ClientRatesCollector | None = None
) -> CollectorRegistry:
    """The registry to serve: a fresh one, or one that merges the workers' files.

    Not auto-described: describing would read the files at once, while workers may still be
    creating them.
    """
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir is not None:
        registry.register(_WorkerFiles(multiprocess_dir))
    if clients is not None:
        registry.register(clients)
    return registry


class _WorkerFiles:
    """prometheus-client's merge of the workers' files, tolerant of a file being created.

    A worker that starts (or restarts) creates its files empty and sizes them a moment
    later; a scrape in between would fail on the empty file, so it is read again.
    """

    def __init__(self, directory: Path) -> None:
        self._collector = multiprocess.MultiProcessCollector(None, path=str(directory))  # type: ignore[no-untyped-call]

    def collect(self) -> Iterable[Any]:
        for attempt in range(3):
            try:
                return list(self._collector.collect())  # type: ignore[no-untyped-call]
            except (struct.error, ValueError, OSError):
                if attempt == 2:
                    raise
                time.sleep(0.01)  # the worker is sizing its file this very moment
        return []


def worker_exited(pid: int, multiprocess_dir: Path) -> None:
    """Drop a dead worker's live gauges (connections in flight) from the merged view."""
    multiprocess.mark_process_dead(pid, path=str(multiprocess_dir))  # type: ignore[no-untyped-call]


def metric_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every sample name the registry can expose (with _total, _bucket, ... suffixes)."""
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        # A labelled metric with no child yet has no sample: name its series by type.
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
    return frozenset(names)


_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds up shutdown


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


class MetricsServer:
    """HTTP on address:port serving the registry at /metrics, from a thread of its own."""

    def __init__(self, registry: CollectorRegistry, address: str, port: int) -> None:
        self._registry = registry
        self._address = address
        self._port = port
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> tuple[str, int]:
        """Bind and serve; returns the bound (address, port). Raises OSError."""
        server_class: type[WSGIServer] = _ThreadingServer
        if ":" in self._address:
            server_class = type(
                "_ThreadingServer6", (_ThreadingServer,), {"address_family": socket.AF_INET6}
            )
        self._server = make_server(
            self._address,
            self._port,
            make_wsgi_app(self._registry),
            server_class=server_class,
            handler_class=_QuietHandler,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="menshen-metrics", daemon=True
        )
        self._thread.start()
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def close_in_child(self) -> None:
        """In a forked child: close the inherited listening socket, leave the parent's."""
        if self._server is not None:
            self._server.socket.close()
            self._server = None

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
