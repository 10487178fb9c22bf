"""The one clock every node stamps and compares with (gamead_core.clock): nats-server's, as a node samples it.

attack33a: a worker 5 min behind was shown stuck, aged nothing and re-published ads as the reaper; an API 1 min
ahead took a live job. These check the pure rule: an offset measured from a bracketed stamp, the shortest round
trip anchoring, and a local wall-clock step changing nothing once anchored."""

from __future__ import annotations

import time

import pytest

from gamead_core import clock
from gamead_core.clock import KEEP, ServerClock


def test_before_any_sample_it_is_the_local_wall_clock() -> None:
    c = ServerClock()
    before = time.time()
    assert before <= c.now() <= time.time()
    assert c.offset is None and c.error is None


def test_a_host_five_minutes_behind_reads_nats_servers_time() -> None:
    c = ServerClock()
    sent = clock.local()
    server = time.time() + 300.0  # nats-server's stamp: 5 min ahead of this host
    c.note(sent, server, sent + 0.002)
    assert c.offset == pytest.approx(300.0, abs=0.05)
    assert c.now() - time.time() == pytest.approx(300.0, abs=0.05)
    assert c.error == pytest.approx(0.001)


def test_the_shortest_round_trip_anchors_the_clock() -> None:
    c = ServerClock()
    t = clock.local()
    # a slow round trip whose stamp came late in it (offset reads +0.4), then a quick exact one
    c.note(t - 1.0, time.time() - 0.1, t - 0.2)
    c.note(t - 0.001, time.time() + 10.0, t)
    assert c.offset == pytest.approx(10.0, abs=0.05)
    c.note(t - 0.5, time.time() + 10.0 - 0.25 + 0.1, t)  # slower, within its bracket: not the anchor
    assert c.offset == pytest.approx(10.0, abs=0.05) and c.error == pytest.approx(0.0005)


def test_old_samples_are_dropped_so_a_drifting_server_clock_is_followed() -> None:
    c = ServerClock()
    t = clock.local()
    c.note(t - KEEP - 5.0, time.time() + 50.0, t - KEEP - 5.0 + 0.0001)
    c.note(t - 0.01, time.time() + 20.0, t)  # slower round trip, but the older one is past KEEP
    assert c.offset == pytest.approx(20.0, abs=0.05)


def test_a_burst_of_slow_answers_keeps_the_quick_anchor() -> None:
    """regress37 F1: during a store outage every answer of `gamead submit` took 2-5 s, its Date stamped early in
    the bracket; the anchor was the quickest of the last 8 samples only, so the CLI's clock read ~2.5 s early
    ("✓ 20:22:41 … after 3.0 s" for an outage that ended after 20:22:43.69). The quickest of KEEP s anchors."""
    c = ServerClock()
    t = clock.local()
    c.note(t - 0.002, time.time(), t - 0.001)  # a quick, exact sample
    for i in range(20):  # slow answers, each stamped 0.1 s after it was sent: the middle of its bracket is 2.5 s late
        sent = t - 5.0 + i * 0.01
        c.note(sent, time.time() - (t - sent) + 0.1, sent + 5.0)
    assert c.now() - time.time() == pytest.approx(0.0, abs=0.05)  # before: -2.4 s
    assert c.error is not None and c.error < 0.01


def test_an_inverted_or_impossible_sample_is_ignored() -> None:
    c = ServerClock()
    t = clock.local()
    c.note(t, time.time(), t - 1.0)
    c.note(t, float("nan"), t)
    c.note(t, float("inf"), t)
    assert c.offset is None


def test_a_local_wall_clock_step_changes_nothing_once_anchored(monkeypatch: pytest.MonkeyPatch) -> None:
    c = ServerClock()
    t = clock.local()
    c.note(t, time.time(), t)
    before = c.now()
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 3600.0)  # the host's clock stepped back an hour
    assert c.now() - before == pytest.approx(0.0, abs=0.5)


def test_the_stamps_gamead_writes_follow_the_process_clock() -> None:
    from ulid import ULID

    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import utcnow

    t = clock.local()
    clock.CLOCK.note(t, time.time() + 600.0, t)
    try:
        assert utcnow().timestamp() - time.time() == pytest.approx(600.0, abs=1.0)
        made = ULID.from_str(new_ad_id().upper()).timestamp
        assert made - time.time() == pytest.approx(600.0, abs=1.0)
    finally:
        clock.CLOCK.forget()


def test_a_sample_that_does_not_fit_the_anchor_replaces_it_however_slow() -> None:
    """review33 R3: after a suspend (or nats-server's clock set) the old quick anchor is wrong; the newest
    reading that cannot be reconciled with it is followed at once, not after the old one ages out."""
    c = ServerClock()
    t = clock.local()
    c.note(t - 0.0001, time.time(), t)  # a quick, exact anchor
    c.note(t - 0.2, time.time() + 600.0, t)  # slow, but 600 s off: no bracket of the anchor's explains it
    assert c.offset == pytest.approx(600.0, abs=0.3)
    assert c.now() - time.time() == pytest.approx(600.0, abs=0.3)


def test_a_slow_sample_within_the_brackets_keeps_the_quick_anchor() -> None:
    c = ServerClock()
    t = clock.local()
    c.note(t - 0.0001, time.time() + 5.0, t)
    c.note(t - 0.2, time.time() + 5.0 - 0.1 + 0.08, t)  # stamped 0.08 s past its bracket's middle: agrees
    assert c.error == pytest.approx(0.00005)


def test_a_one_second_stamp_keeps_its_anchor_within_its_uncertainty() -> None:
    """The CLI's samples come from the 1-s ``Date`` header, read at its second's middle: two answers can be 0.9 s
    apart though neither clock moved. With the stamp's ± 0.5 s given, the second agrees with the anchor and the
    anchor stays (without it every such answer replaced the anchor: the clock jumped by up to a second); the error
    says the ± 0.5 s."""
    c = ServerClock()
    t = clock.local()
    c.note(t - 0.001, time.time() + 0.45, t, uncertainty=0.5)  # quick; its second's middle 0.45 s late
    c.note(t - 0.005, time.time() - 0.45, t, uncertainty=0.5)  # slower; 0.45 s early
    assert c.now() - time.time() == pytest.approx(0.45, abs=0.05)
    assert c.error is not None and c.error >= 0.5


def test_the_cli_takes_the_date_header_as_a_half_second_stamp() -> None:
    from email.utils import formatdate

    from gamead_cli import service_clock

    try:
        t = clock.local()
        service_clock.note(formatdate(time.time(), usegmt=True), t - 0.001, t)
        error = service_clock.SERVICE.error
        assert error is not None and error >= 0.5
    finally:
        service_clock.SERVICE.forget()
