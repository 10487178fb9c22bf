"""The idle worker's linger decision (gamead_core.worker.linger): wait for more ads only at a steady flow, and
never more than the linger past an ad's arrival."""

from __future__ import annotations

from gamead_core.worker.linger import Linger


def _wakes(linger: Linger, *, every: float, ads: int, count: int, start: float = 100.0) -> list[float]:
    """``count`` wake-ups ``every`` seconds apart, each by an ad that just arrived and followed by pulls that
    took ``ads`` ads; the waits."""
    waits = []
    for i in range(count):
        waits.append(linger.after_wake(start + i * every))
        linger.took(ads)
    return waits


def test_a_trickle_starts_at_once_and_a_steady_flow_waits_the_linger() -> None:
    """5 ms linger: one ad every 100 ms (10/s) never waits; 5 ads every 10 ms (500/s: 2.5 expected within
    5 ms) waits 5 ms once a few wake-ups have measured the flow (none before: no rate yet)."""
    trickle = Linger(0.005)
    assert _wakes(trickle, every=0.1, ads=1, count=20) == [0.0] * 20
    flow = Linger(0.005)
    waits = _wakes(flow, every=0.01, ads=5, count=10)
    assert waits[0] == 0.0
    assert waits[-3:] == [0.005] * 3
    assert 200.0 <= flow.rate <= 500.0


def test_an_urgent_ad_after_a_quiet_spell_starts_at_once_whatever_the_linger() -> None:
    """The drill's case: after a flow at 500/s, isolated ads 5 s and 30 s apart waited the whole 100 ms linger
    (the old rate was only halved per wake-up). A silence of 10 lingers or more forgets the flow: no wait."""
    for linger_s in (0.005, 0.1):
        linger = Linger(linger_s)
        waits = _wakes(linger, every=linger_s, ads=round(500 * linger_s), count=30)
        assert waits[-1] == linger_s  # the flow was measured
        after = _wakes(linger, every=5.0, ads=1, count=3, start=1_000.0)
        assert after == [0.0, 0.0, 0.0], (linger_s, after)


def test_the_wait_ends_one_linger_after_the_oldest_ads_arrival_not_after_the_wake_up() -> None:
    """An ad that arrived while the worker was busy has waited already: woken 3 ms after it arrived, the worker
    waits the 2 ms left of a 5 ms linger; woken 20 ms after, not at all (the drill saw P5 ads wait up to twice a
    100 ms linger when it was counted from the wake-up)."""
    linger = Linger(0.005)
    _wakes(linger, every=0.005, ads=3, count=30)  # the last at 100.145
    assert abs(linger.after_wake(100.150, arrived=100.147) - 0.002) < 1e-9
    linger.took(3)
    assert linger.after_wake(100.175, arrived=100.155) == 0.0


def test_linger_zero_never_waits() -> None:
    """worker.linger_ms 0: no wait, whatever the rate."""
    assert _wakes(Linger(0.0), every=0.001, ads=50, count=10) == [0.0] * 10
