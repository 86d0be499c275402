"""What the daemon reports about its work: metrics and the audit trail, built from a Config.

In:  a validated Config, a logger and, optionally, the registry to record on (tests and a
     multi-process server pass their own; otherwise a fresh one, never the global default).
Out: an Operations bundle whose observe(envelope, verdict, size) the milter calls once per
     decided message, reloaded(ok) after every reload attempt, and connections(n) whenever
     the number of connections in flight changes; plus the HTTP metrics endpoint, and the
     per-client failure window behind menshen_clients_over_failure_ratio (a client that
     crosses the ratio is named in the log, never in a metric).
Fails: start_operations raises AuditError when the audit trail cannot be opened (the daemon
     then refuses to start). A metrics port that cannot be bound is logged as an error and
     the daemon serves mail without an endpoint. observe() never raises: an audit line that
     cannot be written is logged and counted (menshen_audit_errors_total); mail keeps
     flowing, because a full log disk must not stop the mail system.
Thread safety: observe() is called from every connection's thread at once; the metrics are
     thread-safe and the audit sink locks.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass

from menshen.audit import AuditRecorder, open_audit_log
from menshen.clientrates import ClientFailureWindow, ClientReporter
from menshen.config import Config
from menshen.metrics import Metrics, MetricsServer, Registry, new_registry
from menshen.model import Action, Envelope, Verdict

_FAILED = (Action.REJECT, Action.TEMPFAIL)


@dataclass
class Operations:
    metrics: Metrics
    audit: AuditRecorder | None
    server: MetricsServer | None
    logger: logging.Logger
    clients: ClientFailureWindow | None  # None in a pre-forked worker: it reports instead
    report_client: ClientReporter | None = None  # the worker's line to its parent's window

    def observe(self, envelope: Envelope, verdict: Verdict, size: int) -> None:
        queue_id = envelope.queue_id or "NOQUEUE"
        try:
            self.metrics.message(envelope, verdict, size)
            failed = verdict.action in _FAILED
            if self.report_client is not None:
                self.report_client(envelope.client_ip, failed)
            elif self.clients is not None and self.clients.record(envelope.client_ip, failed):
                self.logger.warning(
                    "%s: client %s: %.0f%% of its messages rejected or tempfailed in the last %gs",
                    queue_id,
                    envelope.client_ip,
                    100 * self.clients.ratio(envelope.client_ip),
                    self.clients.window_seconds,
                )
        except Exception:
            self.logger.exception("%s: cannot count the message", queue_id)
        if self.audit is None:
            return
        try:
            self.audit.record(envelope, verdict, size)
        except Exception as exc:
            self.metrics.audit_failed()
            self.logger.error(
                "%s: cannot write the audit line: %s", envelope.queue_id or "NOQUEUE", exc
            )

    def refused_at_rcpt(self, envelope: Envelope, verdict: Verdict) -> None:
        """A recipient refused before the message was sent (a quota already used up)."""
        del envelope  # addresses are never labels
        try:
            self.metrics.refused_at_rcpt(verdict)
        except Exception:
            self.logger.exception("cannot count a refusal at RCPT")

    def quota_backend(self, up: bool) -> None:
        self.metrics.quota_backend_up(up)

    def connections(self, active: int) -> None:
        self.metrics.connections_in_flight(active)

    def reloaded(self, ok: bool, counted: bool = True) -> None:
        """After a reload attempt; a worker passes counted=False (its parent counts it)."""
        if counted:
            self.metrics.reload(ok)
        if ok and self.audit is not None:
            try:
                self.audit.reopen()  # also a manual way to follow a moved log file
            except OSError as exc:
                self.logger.error("cannot reopen the audit log: %s", exc)

    def close(self) -> None:
        if self.report_client is not None:
            self.report_client.close()  # sends the reports still pending
        if self.server is not None:
            self.server.stop()
        if self.audit is not None:
            self.audit.close()


def start_operations(
    config: Config,
    logger: logging.Logger,
    registry: Registry | None = None,
    serve_http: bool = True,
    client_reports: socket.socket | None = None,
) -> Operations:
    """Open the audit trail, create the metrics and start the endpoint. Raises AuditError.

    serve_http=False is for a pre-forked worker: it records (into PROMETHEUS_MULTIPROC_DIR)
    and the parent serves exposition_registry() of that directory instead; its per-client
    outcomes go to the parent over `client_reports`, whose window the parent serves.
    """
    audit = open_audit_log(config.audit)
    registry = registry if registry is not None else new_registry()
    metrics = Metrics(registry, client_gauges=client_reports is None)
    clients: ClientFailureWindow | None = None
    reporter: ClientReporter | None = None
    if client_reports is None:
        clients = client_window(config)
        metrics.watch_clients(clients.snapshot)
    else:
        reporter = ClientReporter(client_reports)
    server: MetricsServer | None = None
    settings = config.metrics
    if settings.enabled and serve_http:
        server = MetricsServer(registry, settings.address, settings.port)
        try:
            host, port = server.start()
        except OSError as exc:
            logger.error(
                "metrics: cannot listen on %s port %d (%s); serving mail without metrics",
                settings.address,
                settings.port,
                exc.strerror or exc,
            )
            server = None
        else:
            logger.info("metrics on http://%s/metrics", _host_port(host, port))
    return Operations(
        metrics=metrics,
        audit=audit,
        server=server,
        logger=logger,
        clients=clients,
        report_client=reporter,
    )


def client_window(config: Config) -> ClientFailureWindow:
    """The sliding window behind the per-client failure gauges, as configured."""
    return ClientFailureWindow(
        window_seconds=config.metrics.client_failure_window_seconds,
        threshold=config.metrics.client_failure_ratio,
        min_messages=config.metrics.client_failure_min_messages,
    )


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
