"""The per-client failure window: crossing once, sliding, bounded memory."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from menshen.clientrates import ClientFailureWindow, ClientReporter, ClientReportReader


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def window(clock: Clock, **options: float) -> ClientFailureWindow:
    settings = {"window_seconds": 300.0, "threshold": 0.30, "min_messages": 10} | options
    return ClientFailureWindow(clock=clock, **settings)  # type: ignore[arg-type]


def test_a_client_crosses_the_threshold_once() -> None:
    clock = Clock()
    rates = window(clock)
    crossings = [rates.record("192.0.2.1", failed=index % 2 == 0) for index in range(20)]
    # 10 messages needed before judging; at 10 the share is 50 %.
    assert crossings.index(True) == 9
    assert crossings.count(True) == 1
    assert rates.snapshot() == (1, 0.5)
    assert rates.ratio("192.0.2.1") == 0.5


def test_exactly_the_threshold_is_not_over_it() -> None:
    clock = Clock()
    rates = window(clock)
    for index in range(10):
        rates.record("192.0.2.1", failed=index < 3)
    assert rates.snapshot() == (0, 0.3)


def test_too_few_messages_are_not_judged() -> None:
    clock = Clock()
    rates = window(clock)
    for _ in range(9):
        assert rates.record("192.0.2.1", failed=True) is False
    assert rates.snapshot() == (0, 0.0)


def test_old_messages_slide_out_and_the_client_may_cross_again() -> None:
    clock = Clock()
    rates = window(clock)
    for _ in range(10):
        rates.record("192.0.2.1", failed=True)
    clock.now += 301
    assert rates.snapshot() == (0, 0.0)
    crossed = [rates.record("192.0.2.1", failed=True) for _ in range(10)]
    assert crossed[-1] is True


def test_clients_are_judged_separately() -> None:
    clock = Clock()
    rates = window(clock)
    for _ in range(10):
        rates.record("192.0.2.1", failed=True)
        rates.record("192.0.2.2", failed=False)
    assert rates.snapshot() == (1, 1.0)
    assert rates.ratio("192.0.2.2") == 0.0


def test_memory_is_bounded_by_max_clients() -> None:
    clock = Clock()
    rates = window(clock, max_clients=100)
    for index in range(1000):
        rates.record(f"10.0.{index // 256}.{index % 256}", failed=True)
    assert len(rates._clients) == 100
    assert rates.ratio("10.0.0.0") == 0.0  # forgotten, the oldest


def test_no_address_no_count() -> None:
    rates = window(Clock(), min_messages=1)
    assert rates.record("", failed=True) is False
    assert rates.snapshot() == (0, 0.0)


# -- a worker's reports reach its parent's window ------------------------------------------


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class Link:
    """A parent's window and reader, and a worker's reporter, over a real socket pair."""

    rates: ClientFailureWindow
    lines: Lines
    reporter: ClientReporter


@pytest.fixture
def link() -> Iterator[Callable[..., Link]]:
    sockets: list[socket.socket] = []
    reporters: list[ClientReporter] = []

    def make(**reporter_options: float) -> Link:
        parent_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        sockets.extend((parent_end, worker_end))
        rates = ClientFailureWindow(window_seconds=300.0, threshold=0.30, min_messages=10)
        lines = Lines()
        logger = logging.getLogger(f"test-clientrates-{id(lines)}")
        logger.addHandler(lines)
        logger.propagate = False
        ClientReportReader(parent_end, rates, logger).start()
        reporter = ClientReporter(worker_end, **reporter_options)
        reporters.append(reporter)
        return Link(rates, lines, reporter)

    yield make
    for reporter in reporters:
        reporter.close()
    for parent_end in sockets[::2]:
        parent_end.send(b"")  # an empty datagram ends the reader
    for end in sockets:
        end.close()


def until(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def counted(rates: ClientFailureWindow) -> int:
    clients = [f"192.0.2.{n}" for n in range(10)] + ["198.51.100.7"]
    return sum(rates.counts(client)[0] for client in clients)


@pytest.mark.parametrize(
    ("messages", "max_batch"),
    [
        pytest.param(1, 64, id="one-report-sent-after-the-delay"),
        pytest.param(64, 64, id="a-full-batch"),
        pytest.param(1000, 64, id="many-batches"),
        pytest.param(7, 3, id="batches-and-a-rest"),
    ],
)
def test_every_report_reaches_the_parent(
    link: Callable[..., Link], messages: int, max_batch: int
) -> None:
    pair = link(flush_seconds=0.05, max_batch=max_batch)
    for index in range(messages):
        pair.reporter(f"192.0.2.{index % 7}", failed=index % 2 == 0)
    assert until(lambda: counted(pair.rates) == messages)
    assert pair.reporter.dropped == 0


def test_close_sends_what_is_pending_at_once(link: Callable[..., Link]) -> None:
    pair = link(flush_seconds=3600)
    for _ in range(12):
        pair.reporter("192.0.2.9", failed=True)
    pair.reporter.close()  # long before the hour
    assert until(lambda: pair.rates.snapshot() == (1, 1.0))


def test_a_client_crossing_in_a_batch_is_named_once(link: Callable[..., Link]) -> None:
    pair = link(flush_seconds=0.05)
    for _ in range(30):
        pair.reporter("198.51.100.7", failed=True)
    assert until(lambda: counted(pair.rates) == 30)
    assert pair.lines.lines == [
        "client 198.51.100.7: 100% of its messages rejected or tempfailed in the last 300s"
    ]


def test_a_parent_that_does_not_read_costs_reports_never_a_wait() -> None:
    parent_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    reporter = ClientReporter(worker_end, flush_seconds=0.01, max_batch=64)
    try:
        for _ in range(200_000):
            reporter("192.0.2.1", failed=False)  # never blocks on the full socket
        reporter.close()
        assert reporter.dropped > 0
    finally:
        parent_end.close()
        worker_end.close()
