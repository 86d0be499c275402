"""The milter adapter: the only module that speaks pymilter.

In:  libmilter callbacks for one SMTP connection (connect, helo, MAIL, RCPT, headers,
     body chunks, end of message, abort, close) and an injected `current_engine()`.
Out: milter replies. At end of message the adapter calls the engine once with the
     envelope and the byte-exact message (headers as Postfix sends them, CRLF line ends,
     then the body), then carries out the verdict:
       ACCEPT      add the verdict's headers, accept
       QUARANTINE  add the headers, quarantine(reason) (Postfix's hold queue), accept
       REJECT      setreply(5xx), reject
       TEMPFAIL    setreply(4xx), tempfail
     Copies of menshen's own headers that arrive with the message are deleted first, so a
     sender cannot forge a verdict.
Fails: any exception in a callback answers 451 4.3.0 and logs one line with the queue id;
     `listen()` also sets pymilter's exception policy to TEMPFAIL as a backstop. A spool that
     cannot be written (disk full) is a tempfail too.
Thread safety: libmilter runs each connection in its own thread with its own GuardMilter
     instance; the shared parts (engine, connection counter) are immutable or locked.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import Milter

from menshen.engine import Engine
from menshen.model import Action, Envelope, Verdict
from menshen.printable import printable
from menshen.spool import Spool

PROGRESS_INTERVAL = 1.0  # seconds between progress reports to the MTA
REPLY_INTERNAL = ("451", "4.3.0", "Internal error while checking the message, try again later")


VerdictObserver = Callable[[Envelope, Verdict, int], None]  # envelope, verdict, bytes


class ConnectionCounter:
    """Connections in flight, so that shutdown can wait for them to finish."""

    def __init__(self, on_change: Callable[[int], None] | None = None) -> None:
        self._active = 0
        self._changed = threading.Condition()
        self._on_change = on_change  # told the new count (the metrics gauge)

    @property
    def active(self) -> int:
        return self._active

    def opened(self) -> None:
        with self._changed:
            self._active += 1
            if self._on_change is not None:
                self._on_change(self._active)

    def closed(self) -> None:
        with self._changed:
            self._active -= 1
            self._changed.notify_all()
            if self._on_change is not None:
                self._on_change(self._active)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no connection is in flight; False when the timeout passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: self._active <= 0, timeout=timeout)


@dataclass(frozen=True, slots=True)
class SpoolSettings:
    memory_bytes: int  # past this a message goes to a temporary file
    cap_bytes: int  # bytes kept per message; the engine looks at no more
    directory: Path | None


@Milter.header_leading_space
class GuardMilter(Milter.Base):  # type: ignore[misc]
    """One instance per SMTP connection (created by libmilter through the factory)."""

    def __init__(
        self,
        current_engine: Callable[[], Engine],
        spool: SpoolSettings,
        counter: ConnectionCounter,
        logger: logging.Logger,
        observe: VerdictObserver | None = None,
    ) -> None:
        super().__init__()
        self._current_engine = current_engine
        self._spool_settings = spool
        self._counter = counter
        self._log = logger
        self._observe = observe  # metrics and audit trail; never changes the verdict
        self._client_ip = ""
        self._client_name = ""
        self._helo = ""
        # Counted from negotiation on (the MTA waits for that answer), so a session whose
        # later no-reply commands are still queued is already counted when a stop begins.
        self._counter.opened()
        self._counted = True
        self._reset_message()

    def setsymlist(self, stage: int, *macros: str) -> Any:
        """Ask for these macros at this stage (called by negotiate for @symlist callbacks).

        pymilter 1.0.5 passes the C layer bytes where it needs str; its negotiate() then
        swallows the TypeError and falls back to ALL_OPTS, silently dropping every no-reply
        step and macro list this class declares. Without the SETSYMLIST action the MTA's
        default macros still arrive, so the lists are skipped rather than failing.
        """
        if not self._actions & Milter.SETSYMLIST:
            return Milter.CONTINUE
        names = " ".join(name for group in macros for name in group.split())
        if len(names.split()) > 5:
            raise ValueError("the MTA takes at most 5 macros per stage")
        return self._ctx.setsymlist(stage, names)

    # --- per-message state -------------------------------------------------------------

    def _reset_message(self) -> None:
        self._engine: Engine | None = None
        self._sender = ""
        self._recipients: list[str] = []
        self._auth_user = ""
        self._queue_id = ""
        self._spool: Spool | None = None
        self._own_headers: dict[str, int] = {}  # our header names seen inbound -> count
        self._in_body = False
        self._last_progress = time.monotonic()

    def _drop_spool(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _qid(self) -> str:
        return self._queue_id or "NOQUEUE"

    def _macro(self, name: str) -> str:
        value = self.getsymval(name)
        return value if isinstance(value, str) else ""

    # --- callbacks ---------------------------------------------------------------------

    # Every step before end of message is a no-reply step: Postfix sends it without waiting
    # for an answer, saving a round trip per command, and every decision (failures included)
    # is made once, at end of message.

    @Milter.noreply
    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        self._client_name = hostname or ""
        # AF_INET/AF_INET6 give (address, port, ...); a unix-socket or local client has none.
        if isinstance(hostaddr, tuple) and hostaddr:
            self._client_ip = str(hostaddr[0])
        elif isinstance(hostaddr, str):
            self._client_ip = hostaddr
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def hello(self, heloname: str) -> int:
        self._helo = heloname or ""
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    @Milter.symlist("i", "{auth_authen}")
    def envfrom(self, mailfrom: str, *params: str) -> int:
        try:
            self._drop_spool()
            self._reset_message()
            self._engine = self._current_engine()  # a reload never changes a message mid-way
            self._sender = mailfrom.strip().removeprefix("<").removesuffix(">")
            self._auth_user = self._macro("{auth_authen}")
            self._queue_id = self._macro("i")
            settings = self._spool_settings
            self._spool = Spool(settings.memory_bytes, settings.cap_bytes, settings.directory)
        except Exception:
            # No reply is possible here; without a spool, end of message answers 4xx.
            self._log.exception("%s: internal error at MAIL FROM", self._qid())
            self._drop_spool()
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    @Milter.symlist("i")
    def envrcpt(self, to: str, *params: str) -> int:
        self._recipients.append(to.strip().removeprefix("<").removesuffix(">"))
        # Postfix defines the queue id only once the first recipient is accepted.
        self._queue_id = self._macro("i") or self._queue_id
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    @Milter.decode("bytes")
    def header(self, field: str, value: bytes) -> int:
        if self._spool is None:
            return Milter.CONTINUE  # type: ignore[no-any-return]
        name = field if isinstance(field, str) else bytes(field).decode("latin-1")
        own = self._engine.own_header_names.get(name.lower()) if self._engine else None
        if own is not None:
            self._own_headers[own] = self._own_headers.get(own, 0) + 1
        try:
            if b"\n" in value:  # folded: Postfix joins continuation lines with a bare LF
                value = value.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            self._spool.write(name.encode("utf-8", "surrogateescape") + b":" + value + b"\r\n")
        except OSError:
            self._spool_failed()
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.nocallback
    def eoh(self) -> int:
        # Not asked for: the blank line ending the headers is written with the first body
        # chunk (or at end of message), which saves Postfix a command per message.
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def body(self, chunk: bytes) -> int:
        if self._spool is not None:
            try:
                self._end_headers()
                self._spool.write(chunk)
            except OSError:
                self._spool_failed()
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def _end_headers(self) -> None:
        if not self._in_body and self._spool is not None:
            self._in_body = True
            self._spool.write(b"\r\n")

    @Milter.symlist("i")
    def eom(self) -> int:
        try:
            return self._end_of_message()
        except Exception:
            return self._internal_error("end of message")
        finally:
            self._drop_spool()

    def abort(self) -> int:
        self._drop_spool()
        self._reset_message()
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def close(self) -> int:
        self._drop_spool()
        if self._counted:
            self._counted = False
            self._counter.closed()
        return Milter.CONTINUE  # type: ignore[no-any-return]

    # --- end of message ----------------------------------------------------------------

    def _end_of_message(self) -> int:
        self._queue_id = self._macro("i") or self._queue_id
        if self._spool is None or self._engine is None:
            # A spool that failed to write (disk full) was dropped: we cannot decide.
            self._log.warning("%s: message was not spooled completely; tempfail", self._qid())
            return self._reply(*REPLY_INTERNAL, action=Milter.TEMPFAIL)
        self._end_headers()  # a message without a body still ends its headers
        raw = self._spool.read()
        envelope = self._envelope(tuple(self._recipients))
        verdict = self._engine.evaluate(envelope, raw, heartbeat=self._heartbeat)
        self._log_verdict(envelope, verdict, self._spool.size)
        if self._observe is not None:
            try:
                self._observe(envelope, verdict, self._spool.size)
            except Exception:
                self._log.exception("%s: cannot record the verdict", self._qid())
        return self._carry_out(verdict)

    def _envelope(self, recipients: tuple[str, ...]) -> Envelope:
        return Envelope(
            client_ip=self._client_ip,
            client_name=self._client_name,
            helo=self._helo,
            sender=self._sender,
            recipients=recipients,
            auth_user=self._auth_user,
            queue_id=self._queue_id,
        )

    def _heartbeat(self) -> None:
        """Tell Postfix we are alive, at most once a second.

        Postfix restarts its milter_content_timeout on each progress report; each report is
        a write to the MTA, too costly to send between every stage of a millisecond scan.
        """
        now = time.monotonic()
        if now - self._last_progress >= PROGRESS_INTERVAL:
            self._last_progress = now
            self.progress()

    def _carry_out(self, verdict: Verdict) -> int:
        if verdict.action is Action.REJECT or verdict.action is Action.TEMPFAIL:
            reply = verdict.reply
            if reply is None:  # the policy always sets one; never fall back to a 5xx
                return self._reply(*REPLY_INTERNAL, action=Milter.TEMPFAIL)
            action = Milter.REJECT if verdict.action is Action.REJECT else Milter.TEMPFAIL
            return self._reply(reply.code, reply.xcode, reply.text, action=action)
        # Delete forged copies of our headers (index counts from 1 per header name).
        for name, count in self._own_headers.items():
            for index in range(count, 0, -1):
                self.chgheader(name, index, "")
        # With leading spaces negotiated, the MTA writes "Name:" + value exactly as given.
        space = " " if self._protocol & Milter.P_HDR_LEADSPC else ""
        for name, value in verdict.headers:
            self.addheader(name, space + value)
        if verdict.action is Action.QUARANTINE:
            self.quarantine(verdict.reason)
        return Milter.ACCEPT  # type: ignore[no-any-return]

    def _reply(self, code: str, xcode: str, text: str, action: int) -> int:
        # libmilter drops a reply containing an unpaired '%'; our texts never need one.
        self.setreply(code, xcode, text.replace("%", ""))
        return action

    def _spool_failed(self) -> None:
        self._log.warning("%s: cannot spool the message (disk full?); tempfail", self._qid())
        self._drop_spool()

    def _internal_error(self, stage: str) -> int:
        self._log.exception("%s: internal error at %s; tempfail", self._qid(), stage)
        try:
            return self._reply(*REPLY_INTERNAL, action=Milter.TEMPFAIL)
        except Exception:
            return Milter.TEMPFAIL  # type: ignore[no-any-return]

    def _log_verdict(self, envelope: Envelope, verdict: Verdict, size: int) -> None:
        codes = sorted(
            {f"{f.code}:{f.category}" if f.category else f.code for f in verdict.findings}
        )
        total = dict(verdict.timings).get("total", 0.0)
        monitored = f" monitor={verdict.monitored_action.value}" if verdict.monitored_action else ""
        self._log.info(
            "%s: %s%s from=<%s> rcpts=%d size=%d score=%g reason=%s findings=%s time=%.3f",
            self._qid(),
            verdict.action.value,
            monitored,
            printable(envelope.sender),
            len(envelope.recipients),
            size,
            verdict.score,
            verdict.reason,
            ",".join(codes) or "-",
            total,
        )


RcptRefusalObserver = Callable[[Envelope, Verdict], None]


class QuotaCheckingMilter(GuardMilter):
    """A GuardMilter that answers RCPT, so a sender whose quota is used up is refused there.

    Used only when the engine checks quotas at RCPT: Postfix then waits for an answer to
    every recipient, and the message body of an over-quota sender is never sent.
    """

    _protocol_mask = GuardMilter.protocol_mask() | Milter.P_NR_RCPT  # RCPT gets a reply

    def __init__(
        self,
        current_engine: Callable[[], Engine],
        spool: SpoolSettings,
        counter: ConnectionCounter,
        logger: logging.Logger,
        observe: VerdictObserver | None = None,
        refused: RcptRefusalObserver | None = None,
    ) -> None:
        super().__init__(current_engine, spool, counter, logger, observe)
        self._refused = refused

    @Milter.symlist("i")
    def envrcpt(self, to: str, *params: str) -> int:
        recipient = to.strip().removeprefix("<").removesuffix(">")
        self._queue_id = self._macro("i") or self._queue_id
        engine = self._engine
        try:
            envelope = self._envelope((*self._recipients, recipient))
            verdict = engine.quota_precheck(envelope) if engine is not None else None
        except Exception:
            # End of message decides instead, with the quota checked once more.
            self._log.exception("%s: internal error at RCPT", self._qid())
            verdict = None
        if verdict is None or verdict.reply is None:
            self._recipients.append(recipient)
            return Milter.CONTINUE  # type: ignore[no-any-return]
        self._log.info(
            "%s: %s at RCPT to=<%s> from=<%s>: %s",
            self._qid(),
            verdict.action.value,
            printable(recipient),
            printable(self._sender),
            verdict.reason,
        )
        if self._refused is not None:
            try:
                self._refused(envelope, verdict)
            except Exception:
                self._log.exception("%s: cannot record the refusal", self._qid())
        reply = verdict.reply
        action = Milter.REJECT if verdict.action is Action.REJECT else Milter.TEMPFAIL
        return self._reply(reply.code, reply.xcode, reply.text, action=action)


def stop() -> None:
    """Tell libmilter to stop accepting and return from serve()."""
    Milter.milter.stop()


def listen(name: str, socket: str, timeout: int) -> None:
    """Register the callbacks and open the listening socket, accepting nothing yet.

    A process that forks after this hands the socket to its children, each of which then
    calls serve(): libmilter keeps the socket in a static variable and serve() reuses it.
    """
    Milter.set_exception_policy(Milter.TEMPFAIL)
    milter = Milter.milter
    milter.set_connect_callback(Milter.connect_callback)
    milter.set_helo_callback(lambda ctx, host: ctx.getpriv().hello(host))
    milter.set_envfrom_callback(lambda ctx, *b: ctx.getpriv().envfrom_bytes(*b))
    milter.set_envrcpt_callback(lambda ctx, *b: ctx.getpriv().envrcpt_bytes(*b))
    milter.set_header_callback(lambda ctx, f, v: ctx.getpriv().header_bytes(f, v))
    milter.set_eoh_callback(lambda ctx: ctx.getpriv().eoh())
    milter.set_body_callback(lambda ctx, chunk: ctx.getpriv().body(chunk))
    milter.set_eom_callback(lambda ctx: ctx.getpriv().eom())
    milter.set_abort_callback(lambda ctx: ctx.getpriv().abort())
    milter.set_close_callback(Milter.close_callback)
    milter.setconn(socket)
    milter.settimeout(timeout)
    milter.register(
        name,
        data=lambda ctx: ctx.getpriv().data(),
        unknown=lambda ctx, cmd: ctx.getpriv().unknown(cmd),
        negotiate=Milter.negotiate_callback,
    )
    milter.opensocket(True)


def serve(factory: Callable[[], GuardMilter]) -> None:
    """Accept connections on the socket listen() opened, until stop()."""
    Milter.factory = factory  # pymilter's one global: the per-connection constructor
    Milter.milter.main()
