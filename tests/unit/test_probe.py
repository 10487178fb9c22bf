"""The liveness probe of ``gamead up``'s workers (gamead_core.scaling.probe), pure: silent past the registry's
bound (``registry.ttl``) on the observer's clock; a blind spell is no evidence; a new process starts afresh."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.probe import HeartbeatProbe, Watched

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(pid: int, beat: float) -> dict[str, NodeInfo]:
    return {"local-1": NodeInfo(id="local-1", role="worker", host="h", pid=pid, version="1", started_at=T0,
                                heartbeat_at=T0 + timedelta(seconds=beat))}


def test_a_worker_silent_past_the_ttl_is_reported_and_a_renewing_one_never() -> None:
    probe = HeartbeatProbe(ttl=3, start_grace=30)
    w = [Watched("worker-1", "local-1", 100, started_at=0.0)]
    for t in range(1, 20):  # beats every second: never silent
        assert probe.observe(w, entry(100, t), now=float(t)) == []
    assert not probe.unhealthy("worker-1", 100, 19.0)
    assert probe.observe(w, entry(100, 19), now=22.0) == []  # the same beat for 3 s: at the bound, not past it
    silent = probe.observe(w, entry(100, 19), now=22.5)
    assert [(s.name, s.pid, s.silent_for, s.beat_before) for s in silent] == [("worker-1", 100, 3.5, True)]
    assert probe.observe(w, {}, now=23.0)[0].silent_for == 4.0  # its entry expired: still silent
    assert probe.unhealthy("worker-1", 100, 23.0)


def test_another_process_starts_afresh_with_the_start_grace_and_an_entry_of_another_pid_is_no_renewal() -> None:
    probe = HeartbeatProbe(ttl=3, start_grace=30)
    probe.observe([Watched("worker-1", "local-1", 100, 0.0)], entry(100, 1), now=1.0)
    assert not probe.unhealthy("worker-1", 100, 2.0)
    # restarted: before the next reading it is judged on its own beats (none), not its predecessor's
    assert probe.unhealthy("worker-1", 200, 5.5)
    w = [Watched("worker-1", "local-1", 200, started_at=5.0)]  # restarted
    assert probe.observe(w, entry(100, 1), now=30.0) == []  # the old process's entry: no beat of this one
    assert probe.unhealthy("worker-1", 200, 30.0)  # not beaten yet
    silent = probe.observe(w, entry(100, 1), now=38.5)
    assert [(s.pid, s.beat_before) for s in silent] == [(200, False)]  # 3 + 30 s after its start


def test_a_blind_spell_is_no_evidence() -> None:
    probe = HeartbeatProbe(ttl=3, start_grace=30)
    w = [Watched("worker-1", "local-1", 100, started_at=0.0)]
    probe.observe(w, entry(100, 1), now=1.0)
    probe.blind()  # the registry could not be read (e.g. NATS restarting) from 1 s to 10 s
    assert probe.observe(w, {}, now=10.0) == []
    assert probe.observe(w, {}, now=13.0) == []
    assert probe.observe(w, {}, now=13.5)[0].silent_for == 3.5
