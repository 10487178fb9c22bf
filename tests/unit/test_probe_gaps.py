"""gamead up's liveness probe of its workers and API counts only the silence it saw (attack32a F10): after gamead up
itself was not run for longer than its interval plus LATE s (an overloaded or suspended machine), the first reading
names a child whose beat is old only because of that gap and leaves it running; counted silence past the bound
still kills. Pure: clocked by the caller."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gamead_cli.commands.up_liveness import late_line, silent_line
from gamead_core.proc import CpuSample
from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.gaps import LATE
from gamead_core.scaling.probe import (
    HeartbeatProbe,
    Silent,
    Verdict,
    Watched,
    judge,
    run_probe,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
W = [Watched("worker-1", "local-1", 100, started_at=0.0)]


def entry(beat: float) -> dict[str, NodeInfo]:
    return {"local-1": NodeInfo(id="local-1", role="worker", host="h", pid=100, version="1", started_at=T0,
                                heartbeat_at=T0 + timedelta(seconds=beat))}


def test_the_first_reading_after_a_gap_of_the_probe_names_the_worker_and_kills_nothing() -> None:
    """Readings each second, a beat each second up to 10 s; then the probe is not run until 91 s (the drill's 81 s
    gap): the worker's beat is 81 s old, but the probe saw only 1 + LATE s of it. It is handed over once in
    ``late`` (both figures) and not as silent; it is silent past the 10 s bound once 10 s of it are counted."""
    probe = HeartbeatProbe(ttl=10, start_grace=30, every=1.0)
    for t in range(1, 11):
        assert probe.observe(W, entry(t), now=float(t)) == []
    assert probe.observe(W, entry(10), now=91.0) == []  # before: silent for 81 s, killed at once
    [late] = probe.late
    assert (late.real, late.silent_for, late.gap) == (81.0, 1.0 + LATE, 81.0)
    for t in range(92, 96):  # counted silence 7 … 10 s: at the bound, not past it; said only once
        assert probe.observe(W, entry(10), now=float(t)) == [] and probe.late == []
    [silent] = probe.observe(W, entry(10), now=96.5)
    assert (silent.silent_for, silent.real, silent.gap) == (11.5, 86.5, 81.0)
    assert probe.unhealthy("worker-1", 100, 96.5)


def test_counted_silence_past_the_bound_still_kills_across_a_gap_and_a_beat_starts_afresh() -> None:
    probe = HeartbeatProbe(ttl=10, start_grace=30, every=1.0)
    for t in range(1, 12):  # on time: all counted
        probe.observe(W, entry(1), now=float(t))
    assert [s.silent_for for s in probe.observe(W, entry(1), now=12.0)] == [11.0]
    [silent] = probe.observe(W, entry(1), now=40.0)  # a 28 s gap: silent 39 s, 11 + 6 counted, still past the bound
    assert (silent.silent_for, silent.real) == (17.0, 39.0) and probe.late == []
    for t in range(41, 52):  # it beats: its next silence is counted afresh
        assert probe.observe(W, entry(40), now=float(t)) == []
    assert [(s.silent_for, s.real) for s in probe.observe(W, entry(40), now=51.5)] == [(10.5, None)]


def test_without_an_interval_every_gap_counts() -> None:
    """gamead up's start (up_ready) reads irregularly and gives no interval: its probe counts all silence."""
    probe = HeartbeatProbe(ttl=10, start_grace=30)
    probe.observe(W, entry(1), now=1.0)
    assert [s.silent_for for s in probe.observe(W, entry(1), now=91.0)] == [90.0]


def test_run_probe_says_the_gap_and_kills_a_stopped_worker_only_on_counted_silence() -> None:
    """run_probe with stand-ins for the registry and /proc: a stopped (state T) worker's readings at 1 s, then 81 s
    (gamead up not run), then each second: ``on_late`` once at 81 s, no verdict before its counted silence passes
    the 10 s bound (at 86 s), then killed as stopped."""
    times = [1.0, 81.0, 82.0, 83.0, 84.0, 85.0, 86.0, 87.0]  # the read at 87 s begins the stop: not observed
    n = {"i": -1}
    verdicts: list[tuple[float, str, bool]] = []
    lates: list[Silent] = []
    stop = asyncio.Event()

    async def read() -> list[NodeInfo]:
        n["i"] += 1
        if n["i"] >= len(times) - 1:
            stop.set()
        return list(entry(1).values())

    probe = HeartbeatProbe(ttl=10, start_grace=30, every=1.0)
    asyncio.run(run_probe(probe, read, lambda: W, lambda s, v: verdicts.append((s.silent_for, v.why, v.kill)), stop,
                          0, sample=lambda pid: CpuSample("T", 1.0), clock=lambda: times[n["i"]], host="h",
                          on_late=lates.append))
    assert [(s.real, s.silent_for) for s in lates] == [(80.0, 1.0 + LATE)]
    assert verdicts == [(11.0, "stopped", True)]  # 86 s: 6 + 5 s counted; before: killed at 81 s


def test_the_console_lines_give_the_real_silence_and_the_part_counted() -> None:
    probe = HeartbeatProbe(ttl=10, start_grace=30, every=1.0)
    late = Silent("worker-1", "local-1", 100, 6.0, True, real=81.0, gap=81.0)
    line = late_line(late, probe)
    assert "has not renewed its registry heartbeat for 81.0s" in line
    assert "did not run for 81.0s" in line and "all but 6s of that is not counted" in line
    assert "about 4.0s more; left running" in line
    silent = Silent("worker-1", "local-1", 100, 10.5, True, real=86.5, gap=81.0)
    verdict = judge(silent, 10, CpuSample("T", 1.0), CpuSample("T", 1.0), 1.0)
    killed = silent_line(silent, verdict, 10, every=1.0)
    assert "for 86.5s, 10.5s of it counted (this watch itself did not run for 81.0s, of which 6s count" in killed
    assert "killing it (SIGKILL)" in killed
    stopped = Verdict(True, "stopped", 30.0, 0.0, 1.0, "T")
    plain = silent_line(Silent("worker-1", "local-1", 100, 11.0, True), stopped, 10)
    assert "for 11.0s (registry.ttl 10s)" in plain and "counted" not in plain
