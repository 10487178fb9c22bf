"""The liveness probe of ``gamead up``'s workers (gamead_core.scaling.probe), pure: silent past the registry's
bound (``registry.ttl``) on the observer's clock; a blind spell is no evidence; a new process starts afresh; a
silent one still using CPU (busy, starved) is left running up to 3 × ttl, a stopped or idle one is killed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gamead_core.proc import CpuSample
from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.answers import Answer, heartbeat_error
from gamead_core.scaling.probe import (
    BUSY_FACTOR,
    HeartbeatProbe,
    Silent,
    Verdict,
    Watched,
    api_key,
    judge,
    run_probe,
)

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


# --- stack14 item 2: a busy worker starved of CPU is not killed as frozen ------------------------------------


def _silent(silent_for: float, beat_before: bool = True) -> Silent:
    return Silent("worker-1", "local-1", 100, silent_for, beat_before)


def test_a_stopped_or_idle_silent_worker_is_killed_at_once() -> None:
    stopped = judge(_silent(3.5), 3, CpuSample("T", 1.0), CpuSample("T", 1.0), 0.5)
    assert (stopped.kill, stopped.why, stopped.state) == (True, "stopped", "T")
    traced = judge(_silent(3.5), 3, CpuSample("R", 1.0), CpuSample("t", 1.2), 0.5)
    assert (traced.kill, traced.why) == (True, "stopped")  # stopped now, whatever it used before
    idle = judge(_silent(3.5), 3, CpuSample("S", 1.0), CpuSample("S", 1.0), 0.5)  # hung: waits, no CPU
    assert (idle.kill, idle.why, idle.cpu_used, idle.over) == (True, "idle", 0.0, 0.5)
    stuck = judge(_silent(3.5), 3, CpuSample("D", 1.0), CpuSample("D", 1.0), 0.5)
    assert (stuck.kill, stuck.why) == (True, "idle")
    for before, now in ((None, CpuSample("R", 1.0)), (CpuSample("R", 1.0), None), (None, None)):
        unknown = judge(_silent(3.5), 3, before, now, None)  # no evidence that it runs: the old rule
        assert (unknown.kill, unknown.why) == (True, "unknown")


def test_a_silent_worker_that_uses_cpu_waits_up_to_three_ttls_then_is_killed_as_wedged() -> None:
    busy = judge(_silent(10.2), 10, CpuSample("R", 5.0), CpuSample("R", 5.06), 2.0)
    assert (busy.kill, busy.why, busy.limit, busy.cpu_used, busy.state) == (False, "busy", 30.0, 0.06, "R")
    assert not judge(_silent(30.0), 10, CpuSample("S", 5.0), CpuSample("R", 5.01), 2.0).kill  # at the bound
    waiting = judge(_silent(12.0), 10, CpuSample("R", 5.0), CpuSample("R", 5.0), 0.5)  # runnable, no CPU given
    assert (waiting.kill, waiting.why) == (False, "busy")  # starved: waits for a CPU, not hung
    wedged = judge(_silent(30.5), 10, CpuSample("R", 5.0), CpuSample("R", 7.0), 2.0)
    assert (wedged.kill, wedged.why, wedged.limit) == (True, "wedged", 30.0)
    assert BUSY_FACTOR == 3
    starting = judge(_silent(45.0, beat_before=False), 10, CpuSample("R", 1.0), CpuSample("R", 2.0), 2.0,
                     start_grace=30)  # before its first beat it has the start grace too
    assert (starting.kill, starting.limit) == (False, 60.0)


def test_run_probe_hands_over_the_verdict_and_says_when_a_waiting_worker_beats_again() -> None:
    """run_probe with stand-ins for the registry and /proc: a worker silent for 3 readings while its CPU time
    advances is left running (verdict ``busy`` each time), then beats: ``on_back`` once; then it stops
    (state T) and is handed over to be killed."""
    beats = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0]
    states = ["R"] * 9 + ["T"] * 3
    clock = {"n": -1}
    seen: list[tuple[str, bool]] = []
    back: list[float] = []

    async def read() -> list[NodeInfo]:
        clock["n"] += 1
        if clock["n"] >= len(beats):  # a read past the last begins the stop: not observed (fix35d)
            stop.set()
        return list(entry(100, beats[min(clock["n"], len(beats) - 1)]).values())

    def sample(pid: int) -> CpuSample:
        n = min(clock["n"], len(states) - 1)
        return CpuSample(states[n], n * 0.1 if states[n] == "R" else 0.8)

    stop = asyncio.Event()
    probe = HeartbeatProbe(ttl=2.5, start_grace=30)  # one reading per second of its clock (the reading's number)
    w = [Watched("worker-1", "local-1", 100, started_at=0.0)]
    asyncio.run(run_probe(probe, read, lambda: w, lambda s, v: seen.append((v.why, v.kill)), stop, 0,
                          sample=sample, on_back=lambda worker, silent_for: back.append(silent_for),
                          clock=lambda: float(clock["n"]), host="h"))
    assert seen == [("busy", False)] * 3 + [("stopped", True)] * 3  # readings 3-5 silent and busy; 9-11 stopped
    assert back == [5.0]  # it beat at reading 6, after 5 s of silence


def test_a_worker_silent_past_the_bound_at_the_probes_first_reading_is_judged_on_cpu_it_saw_not_killed_blind() -> None:
    """flakes52C: ``gamead up``'s probe begins once the stack's start is over (at load 40, 38 s after a worker's
    start); its first reading found the worker (busy on CPU, state R) silent past ``registry.ttl`` +
    ``START_GRACE`` and, with no earlier reading of its process, SIGKILLed it as "frozen or hung" (verdict
    ``unknown``, kill). Now it is judged at the next reading, on the CPU the probe saw: busy, left running."""
    clock = {"n": 39.0}
    seen: list[tuple[float, str, bool]] = []
    stop = asyncio.Event()

    async def read() -> list[NodeInfo]:
        clock["n"] += 1
        if clock["n"] >= 43:
            stop.set()
        return []  # its entry is gone (expired), or was never seen by this probe

    w = [Watched("worker-1", "local-1", 100, started_at=0.0)]
    asyncio.run(run_probe(HeartbeatProbe(ttl=4, start_grace=30), read, lambda: w,
                          lambda s, v: seen.append((clock["n"], v.why, v.kill)), stop, 0,
                          sample=lambda pid: CpuSample("R", clock["n"] * 0.5), clock=lambda: clock["n"], host="h"))
    assert seen == [(41.0, "busy", False), (42.0, "busy", False)]  # never ("unknown", True) at 40


# --- review26 F7: silence alone never kills; the API's entry is matched by host and pid ----------------------


def test_a_silent_child_that_answers_its_liveness_endpoint_is_never_killed() -> None:
    live = Answer(True, "/healthz answered 200")
    for before, now in ((CpuSample("S", 1.0), CpuSample("S", 1.0)), (CpuSample("T", 1.0), CpuSample("T", 1.0)),
                        (None, None), (CpuSample("R", 1.0), CpuSample("R", 9.0))):
        verdict = judge(_silent(99.0), 3, before, now, 0.5, answer=live)  # idle, stopped?, unknown, wedged
        assert (verdict.kill, verdict.why, verdict.answer) == (False, "answering", "/healthz answered 200")
    dead = Answer(False, "/healthz: no answer in 2s (ReadTimeout)")
    idle = judge(_silent(3.5), 3, CpuSample("S", 1.0), CpuSample("S", 1.0), 0.5, answer=dead)
    assert (idle.kill, idle.why, idle.answer) == (True, "idle", dead.said)  # no answer: judged as before


async def _run(entries: list[list[NodeInfo]], check: object = None) -> tuple[list[Verdict], list[float]]:
    """run_probe over one reading of ``entries`` per second of its clock; the verdicts handed over, the
    silences ``on_back`` was told of."""
    clock = {"n": -1}
    seen: list[Verdict] = []
    back: list[float] = []
    stop = asyncio.Event()

    async def read() -> list[NodeInfo]:
        clock["n"] += 1
        if clock["n"] >= len(entries):  # a read past the last begins the stop: not observed (fix35d)
            stop.set()
        return entries[min(clock["n"], len(entries) - 1)]

    w = [Watched("api", api_key(100, "here"), 100, started_at=0.0)]
    await run_probe(HeartbeatProbe(ttl=2.5, start_grace=30), read, lambda: w, lambda s, v: seen.append(v), stop, 0,
                    sample=lambda pid: CpuSample("S", 1.0), on_back=lambda _, silent_for: back.append(silent_for),
                    clock=lambda: float(clock["n"]), check=check, host="here")  # type: ignore[arg-type]
    return seen, back


def _api(host: str, beat: float, pid: int = 100) -> NodeInfo:
    return NodeInfo(id=f"api-{host}-{pid}", role="api", host=host, pid=pid, version="1", started_at=T0,
                    heartbeat_at=T0 + timedelta(seconds=beat))


def test_another_hosts_api_with_the_same_pid_never_stands_in_for_ours() -> None:
    """Our API (pid 100 on ``here``) beats once, then falls silent while an API of another machine sharing the
    NATS, also pid 100, keeps beating: ours is still found silent and killed (idle, no endpoint answering)."""
    readings = [[_api("here", 0.0)]] + [[_api("here", 0.0), _api("elsewhere", float(t))] for t in range(1, 7)]
    seen, _ = asyncio.run(_run(readings))
    assert [(v.why, v.kill) for v in seen] == [("idle", True)] * 4  # readings 3-6: silent past 2.5 s


def test_a_silent_child_answering_is_left_running_each_reading_until_it_beats_again() -> None:
    asked: list[str] = []

    async def check(worker: Watched) -> Answer:
        asked.append(worker.name)
        return Answer(True, "/healthz answered 200")

    readings = [[_api("here", 0.0)]] * 6 + [[_api("here", 6.0)]] * 2
    seen, back = asyncio.run(_run(readings, check))
    assert [(v.why, v.kill) for v in seen] == [("answering", False)] * 3  # readings 3-5; it beat at 6
    assert asked == ["api"] * 3  # asked only while silent
    assert back == [5.0]


def test_the_heartbeat_error_said_is_the_logs_last_of_this_outage(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    failed = ('{"ts": "%s", "level": "WARNING", "logger": "gamead_core.registry.beat", "message": "heartbeat failed '
              '(retrying every 0.5s): %s"}\n')
    since = datetime(2026, 12, 3, 8, 0, 10, tzinfo=UTC).timestamp()
    log.write_text(failed % ("2026-12-03T08:00:01+0000", "an old outage") + '{"message": "heartbeat restored"}\n'
                   + failed % ("2026-12-03T08:00:09+0000", "insufficient resources (code 10023)"))
    assert heartbeat_error(log, since) == "insufficient resources (code 10023)"
    assert heartbeat_error(log, since + 60) is None  # an earlier outage's line
    log.write_text(log.read_text() + '{"message": "heartbeat restored"}\n')
    assert heartbeat_error(log, since) is None
    assert heartbeat_error(tmp_path / "missing.log", since) is None


def test_a_dead_predecessors_entry_with_the_same_pid_is_no_first_beat_of_a_new_process() -> None:
    """review28 L1: a container restarted within registry.ttl (same hostname, same fork order, so the same pid)
    left local-1's entry of the killed process in the registry (nats.url). The new worker-1, spawned 0.5 s ago
    and not yet connected, counted it as its first heartbeat: `gamead up` took its start as over, and its start
    refusal (exit 5) was retried for ever instead of ending the stack. Its own entry, started after its spawn,
    counts; so does a change of the old-looking entry's heartbeat (its own, if the clock stepped back)."""
    spawned = T0.timestamp() + 300.0
    stale = {"local-1": NodeInfo(id="local-1", role="worker", host="h", pid=4242, version="1", started_at=T0,
                                 heartbeat_at=T0 + timedelta(seconds=292))}
    probe = HeartbeatProbe(ttl=10, start_grace=30)
    w = [Watched("worker-1", "local-1", 4242, started_at=100.0, started_wall=spawned)]
    assert probe.observe(w, stale, now=100.5) == []
    assert not probe.beaten("worker-1", 4242)  # not its beat: its start is not over
    assert probe.observe(w, stale, now=101.5) == [] and not probe.beaten("worker-1", 4242)
    own = {"local-1": stale["local-1"].model_copy(update={"started_at": T0 + timedelta(seconds=300.2),
                                                          "heartbeat_at": T0 + timedelta(seconds=301)})}
    probe.observe(w, own, now=102.0)
    assert probe.beaten("worker-1", 4242)  # its own entry: started after its spawn
    # the wall clock stepped back: its entry looks older than its spawn, but its heartbeat changes after the first
    probe = HeartbeatProbe(ttl=10, start_grace=30)
    probe.observe(w, stale, now=100.5)
    moved = {"local-1": stale["local-1"].model_copy(update={"heartbeat_at": T0 + timedelta(seconds=293)})}
    probe.observe(w, moved, now=101.5)
    assert probe.beaten("worker-1", 4242)
