"""Per-client failure rates over a sliding window, without putting addresses in metrics.

The alarm "rejections and tempfails of one client IP above 30 %" needs a rate per address,
and an address must never be a metric label (one series per client would be unbounded).
So the rate is kept here, in the process, and only two numbers leave it: how many clients
are above the threshold now, and the highest ratio among the clients with enough mail to
judge. The address of a client that crosses the threshold goes to the log, once per
crossing, where a person can act on it.

In:  (client address, failed) for every decided message; failed means menshen answered
     reject or tempfail.
Out: crossed(): True the first time a client is over the threshold within the window
     (log it); snapshot(): (clients over the threshold, highest ratio) for the gauges.
Bounds: counts live in buckets of window/BUCKETS seconds; at most max_clients addresses are
     tracked, the least recently seen forgotten first, so memory is O(max_clients * BUCKETS)
     whatever the traffic.
Fails: never raises.
Workers: with pre-forked workers, each worker's ClientReporter sends its outcomes to the
     parent (ClientReportReader), which keeps the one window and serves the gauges.
Thread safety: every method takes one lock; record() is O(BUCKETS), snapshot() O(clients)
     (called once per scrape).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

BUCKETS = 10
_MAX_DATAGRAM = 65536  # a report batch: at most 64 lines of at most 66 bytes each


class _Client:
    __slots__ = ("alerted", "buckets")

    def __init__(self) -> None:
        self.buckets: dict[int, list[int]] = {}  # bucket number -> [messages, failed]
        self.alerted = False

    def totals(self, oldest: int) -> tuple[int, int]:
        for number in [n for n in self.buckets if n < oldest]:
            del self.buckets[number]
        messages = sum(counts[0] for counts in self.buckets.values())
        failed = sum(counts[1] for counts in self.buckets.values())
        return messages, failed


class ClientFailureWindow:
    def __init__(
        self,
        window_seconds: float = 300.0,
        threshold: float = 0.30,
        min_messages: int = 10,
        max_clients: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_seconds = window_seconds
        self._bucket_seconds = window_seconds / BUCKETS
        self._threshold = threshold
        self._min_messages = min_messages
        self._max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()

    def _now(self) -> tuple[int, int]:
        number = int(self._clock() // self._bucket_seconds)
        return number, number - BUCKETS + 1

    def _over(self, messages: int, failed: int) -> bool:
        return messages >= self._min_messages and failed > self._threshold * messages

    def record(self, client: str, failed: bool) -> bool:
        """Count one message; True when this client has just gone over the threshold."""
        if not client:
            return False
        with self._lock:
            number, oldest = self._now()
            entry = self._clients.get(client)
            if entry is None:
                entry = _Client()
                self._clients[client] = entry
                if len(self._clients) > self._max_clients:
                    self._clients.popitem(last=False)
            else:
                self._clients.move_to_end(client)
            counts = entry.buckets.setdefault(number, [0, 0])
            counts[0] += 1
            counts[1] += int(failed)
            over = self._over(*entry.totals(oldest))
            crossed = over and not entry.alerted
            entry.alerted = over
            return crossed

    def counts(self, client: str) -> tuple[int, int]:
        """(messages, failed) of this client within the window."""
        with self._lock:
            entry = self._clients.get(client)
            return entry.totals(self._now()[1]) if entry is not None else (0, 0)

    def ratio(self, client: str) -> float:
        messages, failed = self.counts(client)
        return failed / messages if messages else 0.0

    def snapshot(self) -> tuple[int, float]:
        """(clients over the threshold, highest ratio among clients with min_messages)."""
        with self._lock:
            oldest = self._now()[1]
            over = 0
            highest = 0.0
            for name in list(self._clients):
                messages, failed = self._clients[name].totals(oldest)
                if messages == 0:
                    del self._clients[name]
                    continue
                if messages >= self._min_messages:
                    highest = max(highest, failed / messages)
                    over += self._over(messages, failed)
            return over, highest


class ClientReporter:
    """A pre-forked worker's side: the outcomes go to the parent, which keeps the window.

    Over a socket pair made before the fork, in batches: one datagram carries up to
    `max_batch` lines ("1 192.0.2.1"), sent by the reporter's own thread once the batch is
    full or `flush_seconds` after its first line. One datagram per message woke the parent
    for every message, which cost it more CPU than the counting. The socket is non-blocking:
    a datagram that does not fit is dropped (its lines counted in `dropped`), so a busy
    parent can never slow mail down. One window in the parent sees every worker's traffic,
    so a client's ratio does not depend on which worker served it. close() sends what is
    pending and stops the thread.
    """

    def __init__(
        self, channel: socket.socket, flush_seconds: float = 0.5, max_batch: int = 64
    ) -> None:
        channel.setblocking(False)
        self._channel = channel
        self._flush_seconds = flush_seconds
        self._max_batch = max_batch
        self._pending: list[bytes] = []
        self._changed = threading.Condition()
        self._closed = False
        self.dropped = 0
        self._thread = threading.Thread(
            target=self._run, name="menshen-client-reports", daemon=True
        )
        self._thread.start()

    def __call__(self, client: str, failed: bool) -> None:
        if not client:
            return
        name = client.encode("ascii", "replace")[:64].replace(b"\n", b"?")  # one per line
        line = b"%d %s" % (failed, name)
        with self._changed:
            self._pending.append(line)
            # The thread waits for a first line, then for a full batch or the time limit.
            if len(self._pending) in (1, self._max_batch):
                self._changed.notify()

    def close(self, timeout: float = 5.0) -> None:
        with self._changed:
            self._closed = True
            self._changed.notify()
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending or self._closed)
                self._changed.wait_for(
                    lambda: len(self._pending) >= self._max_batch or self._closed,
                    timeout=self._flush_seconds,
                )
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                done = self._closed and not self._pending
            if batch:
                self._send(batch)
            if done:
                return

    def _send(self, batch: list[bytes]) -> None:
        try:
            self._channel.send(b"\n".join(batch))
        except OSError:
            self.dropped += len(batch)


class ClientReportReader:
    """The parent's side: records the workers' reports and logs a client that crosses."""

    def __init__(
        self, channel: socket.socket, window: ClientFailureWindow, logger: logging.Logger
    ) -> None:
        self._channel = channel
        self._window = window
        self._log = logger
        self._thread = threading.Thread(target=self._read, name="menshen-clients", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                reports = self._channel.recv(_MAX_DATAGRAM)
            except OSError:
                return
            if not reports:
                return
            for report in reports.decode("ascii", "replace").split("\n"):
                self._record(report)

    def _record(self, report: str) -> None:
        flag, _, client = report.partition(" ")
        if self._window.record(client, flag == "1"):
            self._log.warning(
                "client %s: %.0f%% of its messages rejected or tempfailed in the last %gs",
                client,
                100 * self._window.ratio(client),
                self._window.window_seconds,
            )
