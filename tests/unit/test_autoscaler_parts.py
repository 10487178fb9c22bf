"""The autoscaler loop's pure parts: per-worker service rate, the override rules,
the folded decision log, the status document and the CLI's duration parser."""

from __future__ import annotations

import pytest
import typer

from gamead_cli.commands.scale import parse_duration
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.scaling.apply import tick_calls_seconds
from gamead_core.scaling.lease import Lease
from gamead_core.scaling.status import status_document
from gamead_core.scaling.store import (
    Override,
    active_override,
    clamp_override,
    record_decision,
)
from gamead_core.stats.rates import WorkerLoad, per_worker_rate

# --- per-worker rate ---------------------------------------------------------------------------------------


def test_saturated_workers_are_measured_by_their_completions() -> None:
    workers = [WorkerLoad(4, 50.0, started_at=0.0), WorkerLoad(4, 50.0, started_at=0.0)]
    rate = per_worker_rate(workers, completion_rate=120.0, saturated=True, since=10.0)
    assert rate == pytest.approx(60.0)  # not the 80/s Little's law would promise


def test_workers_started_during_the_interval_do_not_dilute_the_measurement() -> None:
    workers = [WorkerLoad(4, 50.0, started_at=0.0), WorkerLoad(4, 50.0, started_at=12.0)]
    assert per_worker_rate(workers, completion_rate=60.0, saturated=True, since=10.0) == pytest.approx(60.0)


def test_draining_workers_do_not_count() -> None:
    workers = [WorkerLoad(4, 50.0, 0.0), WorkerLoad(4, 50.0, 0.0, draining=True)]
    assert per_worker_rate(workers, completion_rate=60.0, saturated=True, since=10.0) == pytest.approx(60.0)


def test_idle_workers_are_estimated_by_littles_law() -> None:
    # not saturated: completions only show the arrivals, so use concurrency / p50
    workers = [WorkerLoad(4, 50.0, 0.0), WorkerLoad(8, 200.0, 0.0)]
    rate = per_worker_rate(workers, completion_rate=3.0, saturated=False, since=10.0)
    assert rate == pytest.approx((80.0 + 40.0) / 2)


def test_without_registry_entries_the_backend_count_is_the_denominator() -> None:
    assert per_worker_rate(None, completion_rate=90.0, saturated=True, since=0.0, replicas_before=3) == 30.0
    assert per_worker_rate([], completion_rate=90.0, saturated=True, since=0.0, replicas_before=3) == 30.0


@pytest.mark.parametrize(
    ("workers", "completion", "saturated", "before"),
    [
        (None, None, False, 2),  # nothing known
        (None, 50.0, False, 2),  # completions while idle say nothing about capacity
        (None, 0.0, True, 2),  # nothing completed
        (None, 50.0, True, 0),  # no workers to divide by
        ([WorkerLoad(4, None, 0.0)], None, False, 1),  # no processing samples yet
        ([WorkerLoad(4, 0.0, 0.0)], None, False, 1),
        ([WorkerLoad(0, 10.0, 0.0)], None, False, 1),
    ],
)
def test_unknown_rates_are_none(workers: list[WorkerLoad] | None, completion: float | None, saturated: bool,
                                before: int) -> None:
    assert per_worker_rate(workers, completion_rate=completion, saturated=saturated, since=10.0,
                           replicas_before=before) is None


# --- override --------------------------------------------------------------------------------------------


def test_an_override_is_active_until_it_expires() -> None:
    ov = Override(3, until=100.0, set_at=40.0)
    assert active_override(ov, 99.9) is ov
    assert active_override(ov, 100.0) is None
    assert active_override(None, 0.0) is None


def test_an_override_is_clamped_to_the_bounds_and_says_so() -> None:
    assert clamp_override(3, 1, 4) == (3, None)
    assert clamp_override(9, 1, 4) == (4, "override 9 clamped to 4 (max_replicas)")
    assert clamp_override(0, 1, 4) == (1, "override 0 clamped to 1 (min_replicas)")


def test_override_values_round_trip_and_garbage_is_none() -> None:
    ov = Override(5, 200.5, 100.0, "api-x-1")
    assert Override.from_json(ov.to_json()) == ov
    for junk in (None, b"", b"{", b'{"replicas": -1, "until": 5}', b'{"until": 5}', b'"x"'):
        assert Override.from_json(junk) is None
    assert ov.wire(150.0)["remainingSeconds"] == 50.5


# --- decision log ----------------------------------------------------------------------------------------


def entry(at: str, current: int | None, desired: int | None, reason: str = "r", **kw: object) -> dict[str, object]:
    return {"at": at, "current": current, "desired": desired, "reason": reason, "applied": True, "error": None,
            "override": False, "leader": "a", **kw}


def test_repeated_decisions_fold_into_one_line_with_a_count() -> None:
    a, b = (f"backlog {n} at 1.0 ads/s per worker needs 1 worker → hold 1 worker" for n in (1, 2))
    log = record_decision([], entry("t1", 1, 1, a))
    log = record_decision(log, entry("t2", 1, 1, b))
    log = record_decision(log, entry("t3", 1, 3, "scale"))
    log = record_decision(log, entry("t4", 3, 3, "hold c"))
    assert [(d["at"], d["firstReason"], d["repeats"], d["lastAt"], d["reason"]) for d in log] == [
        ("t4", "hold c", 1, "t4", "hold c"),
        ("t3", "scale", 1, "t3", "scale"),
        ("t1", a, 2, "t2", b),  # each end of the folded run with its own reason
    ]


def test_errors_leader_changes_and_overrides_start_new_lines() -> None:
    log = record_decision([], entry("t1", 1, 1))
    for other in (entry("t2", 1, 1, error="boom", applied=False), entry("t3", 1, 1, leader="b"),
                  entry("t4", 1, 1, override=True)):
        log = record_decision(log, other)
    assert [d["at"] for d in log] == ["t4", "t3", "t2", "t1"]


def test_the_log_keeps_the_newest_entries() -> None:
    log: list[dict[str, object]] = []
    for i in range(30):
        log = record_decision(log, entry(f"t{i}", i, i + 1), keep=20)
    assert len(log) == 20 and log[0]["at"] == "t29" and log[-1]["at"] == "t10"


def test_folding_does_not_touch_the_callers_list() -> None:
    first = [dict(entry("t1", 1, 1), repeats=1, lastAt="t1")]
    record_decision(first, entry("t2", 1, 1))
    assert first[0]["repeats"] == 1


# --- status document -------------------------------------------------------------------------------------


def test_status_without_any_state_says_so() -> None:
    doc = status_document(None, None, None, now=100.0, settings=AutoscalerSettings(backend="none"))
    assert doc["backend"] == "none" and doc["leader"] is None and doc["current"] is None
    assert doc["stale"] is True and doc["decisions"] == [] and doc["override"] is None
    assert doc["leaseTtlSeconds"] == 15.0


def test_a_state_document_gamead_did_not_write_reads_as_absent_not_a_500() -> None:
    """attack31b F5's kind: numbers of the shared state that are not numbers (a hand edit) made `float()` raise, so
    every `GET /v1/scale` was a 500; an override or lease naming a time past year 9999 made `iso()` raise. Each
    now reads as absent."""
    state = {"backend": "local", "t": "yesterday", "intervalSeconds": [5], "nextInSeconds": {"a": 1}, "current": 2}
    doc = status_document(state, None, None, now=100.0, settings=AutoscalerSettings(backend="local"))
    assert (doc["ageSeconds"], doc["stale"], doc["intervalSeconds"], doc["current"]) == (None, True, 5.0, 2)
    far = b'{"replicas": 3, "until": 1e300, "setAt": 1.0}'
    assert Override.from_json(far) is None
    assert Lease.from_json(b'{"holder": "h", "acquiredAt": 1, "renewedAt": 1, "expiresAt": 1e300}') is None


def test_status_shows_the_live_leader_the_active_override_and_staleness() -> None:
    settings = AutoscalerSettings(backend="kubernetes", interval=2.0)
    state = {"backend": "local", "t": 95.0, "intervalSeconds": 2.0, "current": 2, "desired": 3,
             "decisions": [{"at": "x"}], "minReplicas": 1, "maxReplicas": 4}
    lease = Lease("up-host-1", 10.0, 96.0, 102.0)
    doc = status_document(state, lease, Override(3, 160.0, 90.0), now=100.0, settings=settings)
    assert doc["backend"] == "local"  # the leader's backend, not this node's setting
    assert doc["leader"]["id"] == "up-host-1" and doc["leader"]["expiresInSeconds"] == 2.0
    assert doc["override"]["replicas"] == 3 and doc["override"]["remainingSeconds"] == 60.0
    assert doc["ageSeconds"] == 5.0 and doc["stale"] is False and doc["maxReplicas"] == 4
    later = status_document(state, lease, Override(3, 160.0, 90.0), now=170.0, settings=settings)
    assert later["leader"] is None and later["override"] is None and later["stale"] is True


def test_a_leader_backing_off_after_failures_is_not_shown_stale_before_its_next_try() -> None:
    """A leader whose scale calls fail retries after a growing back-off (up to 30 s) and writes when it will
    record next (``nextInSeconds``): 20 s after its last record with a 30 s back-off it is on schedule, not
    'stale: no leader is recording' (3 × a 5 s interval was the only allowance); two intervals late, it is."""
    settings = AutoscalerSettings(interval=5.0)
    state = {"t": 100.0, "intervalSeconds": 5.0, "nextInSeconds": 30.0, "decisions": []}
    assert status_document(state, None, None, now=120.0, settings=settings)["stale"] is False
    assert status_document(state, None, None, now=141.0, settings=settings)["stale"] is True
    on_time = {"t": 100.0, "intervalSeconds": 5.0, "nextInSeconds": 5.0, "decisions": []}
    assert [status_document(on_time, None, None, now=n, settings=settings)["stale"] for n in (114.0, 116.0)] == [
        False, True]  # a leader on its interval: stale after 3 intervals, as before


def test_a_kubernetes_leader_whose_calls_time_out_is_not_stale_and_a_stale_one_with_a_lease_is_not_called_gone(
) -> None:
    """attack30b F3: a leader whose every Kubernetes call timed out (``request_timeout`` 5 s, interval 1 s) records
    after each, so its state was always older than its back-off + 2 intervals: ``gamead scale status`` named the live
    leader and said "stale: no leader is recording". The call's own time is allowed now; and a state stale while a
    leader holds the lease says the leader has not recorded, not that none is."""
    from rich.console import Console

    from gamead_cli.commands.scale import status_view

    settings = AutoscalerSettings(interval=1.0, backend="kubernetes", kubernetes={"request_timeout": 5.0})
    state = {"t": 100.0, "backend": "kubernetes", "intervalSeconds": 1.0, "nextInSeconds": 1.0, "decisions": []}
    assert status_document(state, None, None, now=106.5, settings=settings)["stale"] is False  # 1 + 5 + 2 × 1 s
    assert status_document(state, None, None, now=108.5, settings=settings)["stale"] is True
    lease = Lease("api-1", 90.0, 217.0, 222.0)  # a leader past what its tick's calls may take (review30 F12, below)

    def said(doc: dict) -> str:
        console = Console(width=200, record=True, color_system=None)
        console.print(status_view(doc))
        return console.export_text()

    assert "stale: its leader has not recorded for 119s: its tick may hang" in said(
        status_document(state, lease, None, now=219.0, settings=settings))
    assert "stale: no leader is recording" in said(status_document(state, None, None, now=109.0, settings=settings))


def test_a_kubernetes_leader_in_a_slow_tick_is_not_stale_while_its_calls_may_still_run() -> None:
    """review30 F12: one tick may make 11 Kubernetes calls (the GET of the count, a scale-down's pod marks (one call's
    time in all, left49), 3 PATCHes with a read again after each 409, a read-back after a doubt and one more after
    each of 3 waits), each given up on at 2 × request_timeout;
    one request_timeout was allowed, so a live leader in a slow tick (a GET and 3 PATCHes answered 409 at 10 s each:
    60 s without a record) showed "stale". While a leader holds the lease its calls' bound is allowed (1 s interval +
    113.5 s + 2 intervals); with no leader, one request_timeout as before."""
    settings = AutoscalerSettings(interval=1.0, backend="kubernetes", kubernetes={"request_timeout": 5.0})
    state = {"t": 100.0, "backend": "kubernetes", "intervalSeconds": 1.0, "nextInSeconds": 1.0, "decisions": []}

    def stale(now: float, leading: bool = True) -> bool:  # the leader renews its lease in a task of its own
        lease = Lease("api-1", 90.0, now - 1.0, now + 2.0) if leading else None
        return status_document(state, lease, None, now=now, settings=settings)["stale"]

    assert tick_calls_seconds(5.0) == 113.5
    assert [stale(160.0), stale(216.0), stale(217.0)] == [False, False, True]
    assert [stale(106.5, leading=False), stale(108.5, leading=False)] == [False, True]


# --- CLI durations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400),
                                               ("90", 90), ("1.5m", 90), (" 5 m ", 300)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "-5m", "0s", "8d", "1e3"])
def test_bad_durations_are_refused_with_a_hint(text: str) -> None:
    # a usage error: exit 2; a duration past the bounds in the one sentence of a number out of range (range46)
    with pytest.raises(typer.BadParameter, match=r"duration|^--for must be more than 0 and at most 7d, not "):
        parse_duration(text)


def test_the_attempt_counts_per_kind_the_wait_grows_with_the_failures_in_a_row_until_a_reset() -> None:
    from gamead_core.scaling.retry import Backoff

    b = Backoff()
    assert [b.failed(("scale", 5)) for _ in range(7)][-1] == (7, 30.0)
    assert b.failed(("cannot read the replica count",)) == (1, 30.0)  # its own attempt 1 (before: attempt 8)
    b.reset()  # a tick succeeded, or an operator's override changed
    # an outage whose calls fail in turn (the read, then the PATCH of a desired count that keeps changing)
    # backs off to the cap: per-kind waits retried every 0.5-1 s for ever (review)
    waits = [b.failed(kind)[1] for kind in [("cannot read the replica count",), ("scale", 6), ("scale", 7)] * 3]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert b.failed(("scale", 7)) == (2, 30.0)
    b.reset()
    assert b.failed(("scale", 7)) == (1, 0.5)


def test_a_back_off_wait_ends_when_asked_what_changed_or_on_an_event() -> None:
    import asyncio

    from gamead_core.scaling.retry import wait_backoff

    async def go() -> tuple[int, int]:
        asked = 0

        async def changed() -> bool:
            nonlocal asked
            asked += 1
            return asked == 2

        await wait_backoff(60.0, 0.01, [asyncio.Event()], changed)  # ends at the second look, not after 60 s
        event = asyncio.Event()
        event.set()
        before = asked
        await wait_backoff(60.0, 0.01, [event], changed)
        return asked, before

    asked, before = asyncio.run(go())
    assert asked == before == 2


# --- how the count changed between ticks (drill attack24b F1, F3) ------------------------------------------


def test_a_call_in_doubt_seen_landed_is_named_and_counted_and_forgotten_after_the_api_servers_timeout() -> None:
    """A PATCH 1→2 with no sure answer, read back at 1: in doubt. Seen at 2 by the next tick: named as landed late
    (not as an outside change) and its step counted by the policy; past 60 s the same count is an outside change."""
    from gamead_core.config.autoscaler import AutoscalerSettings
    from gamead_core.scaling.apply import Outcome
    from gamead_core.scaling.changes import CountWatch
    from gamead_core.scaling.policy import ScalingPolicy

    policy = ScalingPolicy(AutoscalerSettings(scale_up_max_step=1, scale_up_max_percent=0, period_seconds=60))
    watch = CountWatch()
    watch.called(1, 2, Outcome(False, 1, "HTTP 500", in_doubt=True), at=10.0, wall=0.0, by_policy=True)
    assert watch.seen(1, 11.0, policy) == ""  # not landed yet
    assert watch.seen(2, 12.0, policy) == "the scale call 1→2 of 1970-01-01T00:00:00.000Z landed late"
    assert list(policy._events) == [(10.0, 1)]  # its step, from when it was sent
    late = CountWatch()
    late.called(1, 2, Outcome(False, 1, "HTTP 500", in_doubt=True), at=10.0, wall=0.0, by_policy=True)
    assert late.seen(1, 71.0, None) == ""  # read past its window and not landed: it will not land now
    assert late.seen(2, 72.0, None) == "replicas changed outside the autoscaler (1→2)"


def test_a_call_in_doubt_outlives_its_window_while_the_count_cannot_be_read() -> None:
    """A PATCH 1→2 in doubt at 10 s (monotonic), then every read of the count fails until 200 s (no ``seen``): the
    first count read, 2, is the call landed late — named so and its step counted — not an outside change (before:
    the record lapsed 60 s after the call whether or not the count was read meanwhile). Also after one read in the
    window that did not show it yet; and a new call refused outright (409, nothing done) leaves it in doubt."""
    from gamead_core.config.autoscaler import AutoscalerSettings
    from gamead_core.scaling.apply import Outcome
    from gamead_core.scaling.changes import CountWatch
    from gamead_core.scaling.policy import ScalingPolicy

    doubt = Outcome(False, 1, "HTTP 500", in_doubt=True)
    landed = "the scale call 1→2 of 1970-01-01T00:00:00.000Z landed late"
    for reads_in_window in ([], [30.0]):
        policy = ScalingPolicy(AutoscalerSettings(scale_up_max_step=1, scale_up_max_percent=0, period_seconds=60))
        watch = CountWatch()
        watch.called(1, 2, doubt, at=10.0, wall=0.0, by_policy=True)
        for at in reads_in_window:
            assert watch.seen(1, at, policy) == ""
        assert watch.seen(2, 200.0, policy) == landed, reads_in_window
        assert list(policy._events) == [(10.0, 1)]
    refused = CountWatch()
    refused.called(1, 2, doubt, at=10.0, wall=0.0, by_policy=True)
    refused.called(1, 3, Outcome(False, 1, "409 Conflict"), at=12.0, wall=2.0, by_policy=True)
    assert refused.seen(2, 13.0, None) == landed


def test_a_new_leader_counts_its_predecessors_steps_and_names_a_count_no_record_explains() -> None:
    """attack31c F1: the leader that PATCHed 0→1 died before recording it; its successor, with a fresh policy,
    scaled 1→2 six seconds later in the same 10 s period (scale_up_max_step 1): two scale-ups in one period and the
    first in no record. A new leader now counts the steps its predecessor recorded within the period, and a count
    read at its first tick that the newest record does not explain is named and counted as well."""
    from gamead_core.scaling.changes import CountWatch
    from gamead_core.scaling.policy import ScalingPolicy
    from gamead_core.scaling.store import iso

    def line(at: float, current: int, desired: int, applied: bool | None = True, override: bool = False) -> dict:
        return {"at": iso(at), "current": current, "desired": desired, "applied": applied, "override": override}

    settings = AutoscalerSettings(scale_up_max_step=1, scale_up_max_percent=0, period_seconds=10)
    wall, mono = 1_000.0, 500.0
    recorded = [line(996.0, 2, 2), line(995.0, 1, 2), line(993.0, 5, 1, override=True), line(980.0, 0, 1)]
    policy = ScalingPolicy(settings)
    watch = CountWatch.after(recorded, policy, wall, mono)
    assert list(policy._events) == [(495.0, 1)]  # the policy's 1→2 4 s ago; not the override, nor one 20 s ago
    assert watch.seen(2, mono, policy) == ""  # the count the newest line left
    unrecorded = ScalingPolicy(settings)
    watch = CountWatch.after([line(998.0, 0, 0)], unrecorded, wall, mono)
    assert watch.seen(1, mono, unrecorded) == ("replicas changed since the last recorded decision (0→1: a call of "
                                               "the previous leader that landed unrecorded, or a change made while "
                                               "none led)")
    assert list(unrecorded._events) == [(500.0, 1)]  # its step counted now
    doubt = ScalingPolicy(settings)  # review31 R9 (c): the predecessor's last call went unanswered, then it died
    unknown = CountWatch.after([line(998.0, 1, 2, applied=None)], doubt, wall, mono)
    assert unknown.seen(2, mono, doubt) == "the scale call 1→2 of 1970-01-01T00:16:38.000Z landed late"
    assert list(doubt._events) == [(498.0, 1)]  # its step, from when it was sent


def test_a_new_leader_charges_no_step_for_a_change_made_while_nobody_led_and_counts_a_late_landing() -> None:
    """review31 R9 (a): ``kubectl scale`` 2→5 while no node led (the newest record 5 minutes old) is named but is no
    autoscaler step: the next scale-up is not held for it. (b): a late landing a hold line names counts its step."""
    from gamead_core.scaling.changes import CountWatch
    from gamead_core.scaling.policy import ScalingPolicy
    from gamead_core.scaling.store import iso

    settings = AutoscalerSettings(interval=5, scale_up_max_step=1, scale_up_max_percent=0, period_seconds=600)
    wall, mono = 10_000.0, 5_000.0
    gap = ScalingPolicy(settings)
    watch = CountWatch.after([{"at": iso(wall - 300), "current": 2, "desired": 2, "applied": True}], gap, wall, mono)
    assert watch.seen(5, mono, gap).startswith("replicas changed since the last recorded decision (2→5")
    assert list(gap._events) == []
    late = ScalingPolicy(settings)
    landed = {"at": iso(wall - 20), "current": 2, "desired": 2, "applied": True,
              "changed": f"the scale call 1→2 of {iso(wall - 30)} landed late"}
    assert CountWatch.after([landed], late, wall, mono).seen(2, mono, late) == ""
    assert list(late._events) == [(mono - 30, 1)]


def test_scale_status_says_what_a_gamead_up_leader_id_is() -> None:
    """newcomer56: `gamead scale status` said `leader  up-vm-10194 (since 23:07:42 UTC)`, an id that `gamead workers`
    never lists (the lease of the `gamead up` process itself); it now says whose it is, as `scale set` did."""
    from gamead_cli.commands.scale import leader_text

    leader = {"id": "up-vm-10194", "since": "2026-12-06T23:07:42.597Z", "stack": "/srv/a/.gamead", "thisStack": True}
    said = leader_text(leader).plain
    assert said.endswith("(gamead up pid 10194 on host vm, data dir /srv/a/.gamead: its autoscaler)"), said
    assert "gamead up pid" not in leader_text({"id": "api-vm-7-abc123", "since": None}).plain


def test_the_dashboards_autoscaler_line_says_what_a_gamead_up_leader_id_is() -> None:
    """newcomer56b: `gamead top` (and `top --once`) ended its autoscaler line with `leader up-vm-7509`, the id
    `gamead scale status` now explains and `gamead workers` never lists; the line says whose lease it is."""
    from gamead_cli.tui.view_header import autoscaler_text

    shown = autoscaler_text({"autoscaler": {"current": 2, "desired": 2, "leader": {"id": "up-vm-7509"}}}).plain
    assert shown.endswith("  leader gamead up pid 7509 on host vm"), shown
    api = autoscaler_text({"autoscaler": {"current": 2, "desired": 2, "leader": {"id": "api-vm-7-abc123"}}}).plain
    assert api.endswith("  leader gamead serve api-vm-7-abc123"), api
