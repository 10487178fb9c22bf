"""The idle worker's linger decision (gamead_core.worker.linger): wait for more ads only at a steady flow."""

from __future__ import annotations

from gamead_core.worker.linger import Linger


def _wakes(linger: Linger, *, every: float, ads: int, count: int, start: float = 100.0) -> list[float]:
    """``count`` wake-ups ``every`` seconds apart, each followed by pulls that took ``ads`` ads; the waits."""
    waits = []
    for i in range(count):
        waits.append(linger.after_wake(start + i * every))
        linger.took(ads)
    return waits


def test_a_trickle_starts_at_once_and_a_steady_flow_waits_the_linger() -> None:
    """5 ms linger: one ad every 100 ms (10/s) never waits; 5 ads every 10 ms (500/s: 2.5 expected within
    5 ms) waits 5 ms from the second wake-up on: the first has no rate measured yet."""
    trickle = Linger(0.005)
    assert _wakes(trickle, every=0.1, ads=1, count=20) == [0.0] * 20
    flow = Linger(0.005)
    assert _wakes(flow, every=0.01, ads=5, count=5) == [0.0, 0.005, 0.005, 0.005, 0.005]
    assert 400.0 < flow.rate <= 500.0  # smoothed: half the new reading, half the old


def test_a_flow_that_stops_stops_the_waits_within_a_few_wake_ups() -> None:
    """After a flow at 500/s, a wake-up 10 s later (one ad) halves the smoothed rate per reading: the waits
    stop once fewer than 1 ad per 5 ms is expected (rate < 200/s)."""
    linger = Linger(0.005)
    _wakes(linger, every=0.01, ads=5, count=10)
    waits = _wakes(linger, every=10.0, ads=1, count=3, start=200.0)
    assert waits[-1] == 0.0
    assert linger.rate < 200.0


def test_linger_zero_never_waits() -> None:
    """worker.linger_ms 0: no wait, whatever the rate."""
    assert _wakes(Linger(0.0), every=0.001, ads=50, count=10) == [0.0] * 10
