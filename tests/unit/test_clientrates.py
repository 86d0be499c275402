"""The per-client failure window: crossing once, sliding, bounded memory."""

from __future__ import annotations

from menshen.clientrates import ClientFailureWindow


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
