"""A milter that looks at nothing: the per-message cost of the protocol and of pymilter.

In:  `python bench/null_milter.py unix:/path/null.sock` (foreground; SIGTERM stops it).
Out: accepts every message. Its callbacks are declared exactly as menshen's adapter declares
     them (no-reply steps, no end-of-headers step), so bench_e2e can show what a pymilter
     milter costs Postfix and the CPU before any decoding or matching is done.
Fails: exits non-zero when the socket cannot be opened.
Thread safety: one instance per connection, no shared state.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import Milter


class NullMilter(Milter.Base):  # type: ignore[misc]
    @Milter.noreply
    def connect(self, hostname: str, family: int, hostaddr: Any) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def hello(self, heloname: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def envfrom(self, mailfrom: str, *params: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def envrcpt(self, to: str, *params: str) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    @Milter.decode("bytes")
    def header(self, field: str, value: bytes) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.nocallback
    def eoh(self) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    @Milter.noreply
    def body(self, chunk: bytes) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def eom(self) -> int:
        return Milter.ACCEPT  # type: ignore[no-any-return]

    def abort(self) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]

    def close(self) -> int:
        return Milter.CONTINUE  # type: ignore[no-any-return]


def main() -> int:
    # Blocked before any thread starts, so libmilter's signal thread stops us cleanly.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
    os.umask(0o000)  # the bench's Postfix (user postfix) must reach the socket
    Milter.factory = NullMilter
    Milter.runmilter("null", sys.argv[1], timeout=600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
