"""Test doubles that record what menshen writes: a libmilter context and an audit sink.

In:  `RecordingCtx()`: pymilter's TestCtx with the milter class set as Milter.factory;
     `ctx._connect(host, helo, ip)` opens a session, `ctx._feedFile(...)` sends a message.
     `ListSink()`: the audit recorder's sink interface (write, reopen, close).
Out: `ctx.added`, `ctx.changed`, `ctx.quarantined`, `ctx._reply`; `sink.lines`.
Fails: as TestCtx does. Thread safety: one test, one thread.
"""

from __future__ import annotations

import io
import socket

import Milter
from Milter import testctx


class RecordingCtx(testctx.TestCtx):  # type: ignore[misc]
    """TestCtx that records quarantine() and honours negotiated no-reply steps.

    TestCtx treats NOREPLY (what a @noreply callback answers once the MTA agreed to skip
    the reply) as "stop feeding"; libmilter and Postfix treat it as CONTINUE. The adapter
    answers only at end of message, so every earlier step is a no-reply step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.quarantined: str | None = None
        self.added: list[tuple[str, str]] = []
        self.changed: list[tuple[str, int, str]] = []

    def quarantine(self, reason: str) -> None:
        self.quarantined = reason

    def _connect(
        self, host: str = "localhost", helo: str = "spamrelay", ip: str = "1.2.3.4"
    ) -> int:
        self._negotiate()
        self._stage = Milter.M_CONNECT
        rc = _continued(Milter.connect_callback(self, host, socket.AF_INET, ip))
        self._stage = None
        if rc != Milter.CONTINUE:
            self._close()
            return rc
        return self._helo(helo)

    def _helo(self, helo: str) -> int:
        self._stage = Milter.M_HELO
        rc = _continued(self._priv.hello(helo))
        self._stage = None
        if rc != Milter.CONTINUE:
            self._close()
        return rc

    def _envfrom(self, *s: str) -> int:
        return _continued(super()._envfrom(*s))

    def _envrcpt(self, s: str) -> int:
        return _continued(super()._envrcpt(s))

    def _header(self, fld: str, val: object) -> int:
        return _continued(super()._header(fld, val))

    def _eoh(self) -> int:
        return _continued(super()._eoh())

    def _feed_body(self, bfp: io.BufferedIOBase) -> int:
        while chunk := bfp.read(8192):
            rc = _continued(self._priv.body(chunk))
            if rc != Milter.CONTINUE:
                return rc
        return int(Milter.CONTINUE)

    def addheader(self, field: str, value: str, idx: int) -> None:
        self.added.append((field, value))
        super().addheader(field, value, idx)

    def chgheader(self, field: str, idx: int, value: str) -> None:
        self.changed.append((field, idx, value))
        super().chgheader(field, idx, value)


def _continued(rc: int) -> int:
    return int(Milter.CONTINUE) if rc == Milter.NOREPLY else rc


class ListSink:
    """An audit sink that keeps each line in memory."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, line: str) -> None:
        self.lines.append(line)

    def reopen(self) -> None:
        """Nothing to reopen."""

    def close(self) -> None:
        """Nothing to close."""
