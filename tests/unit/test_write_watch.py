"""The write timeout's decision (:mod:`gamead_core.api.write_watch`), without servers: an answer is aborted after
``api.write_timeout`` seconds of the server's own running time in which its client acknowledged no byte
(attack34a F1: a client that never read a 3.3 MB answer held it for ever)."""

from __future__ import annotations

from gamead_core.api.http_sweep import sweep_interval
from gamead_core.api.write_watch import RUNNING_SLACK, WriteWatch, running_time, to_cut

INTERVAL = 1.0  #: the sweep's period, s
TIMEOUT = 30.0  #: api.write_timeout's default, s


def checks(watch: WriteWatch, acked: list[int], gap: float = INTERVAL) -> list[float]:
    """The stalled seconds after each check, ``gap`` seconds apart, at which the client had acknowledged ``acked``."""
    return [watch.observe(bytes_, running_time(gap, INTERVAL)) for bytes_ in acked]


def test_an_answer_nobody_reads_times_out_after_the_write_timeout_of_running_time() -> None:
    watch = WriteWatch(acked=4096)
    stalled = checks(watch, [4096] * 30)  # 30 sweeps 1 s apart, no byte acknowledged: 30 s
    assert stalled[:3] == [1.0, 2.0, 3.0]
    assert not WriteWatch(4096).timed_out(TIMEOUT)
    assert watch.timed_out(TIMEOUT)  # before: nothing timed an answer out, it was held for ever


def test_any_byte_read_starts_the_timeout_again() -> None:
    watch = WriteWatch(acked=0)
    checks(watch, [0] * 29)
    assert watch.observe(1, INTERVAL) == 0.0  # a slow reader: one byte is progress
    assert not watch.timed_out(TIMEOUT)
    checks(watch, [1] * 29)
    assert not watch.timed_out(TIMEOUT)


def test_a_server_that_stood_still_does_not_abort_its_own_clients() -> None:
    """Figure: the API's loop blocked 40 s (> the 30 s timeout) while its client could not be written to: the gap
    counts as :data:`RUNNING_SLACK` sweeps, not 40 s."""
    watch = WriteWatch(acked=100)
    assert checks(watch, [100], gap=40.0) == [RUNNING_SLACK * INTERVAL]
    assert not watch.timed_out(TIMEOUT)
    assert running_time(0.9, INTERVAL) == 0.9 and running_time(-1.0, INTERVAL) == 0.0


def test_the_sweep_comes_often_enough_for_a_short_write_timeout() -> None:
    assert sweep_interval(15.0, 2.0) == 0.5 and sweep_interval(15.0, 30.0) == 1.0 and sweep_interval(2.0) == 0.5


def test_past_the_byte_budget_the_longest_stalled_answers_are_cut_never_a_moving_one() -> None:
    writers = [(5.0, 3_000_000), (0.0, 3_000_000), (9.0, 2_000_000), (1.0, 1_000_000)]  # (stalled s, bytes)
    assert to_cut(writers, budget=8_000_000) == [2]  # 9 MB: the one stalled 9 s brings it to 7 MB
    assert to_cut(writers, budget=2_000_000) == [2, 0, 3]  # still 3 MB: the moving one stays
    assert to_cut(writers, budget=9_000_000) == []
