"""A nats-server that takes connections and answers nothing (its read loop stalled: attack32a F10) must not hang
the periodic NATS calls of a worker: its heartbeat times out, and the worker fences itself (takes no work) at
about ``registry.ttl``, while the server is still black-holed, not when it answers again 81 s later. And ``gamead
up``'s watch of it, not run for a while itself, says so with true figures instead of killing it at once."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from gamead_core.embedded import EmbeddedNats
from gamead_core.scaling.gaps import LATE
from tests.blackhole import BlackHole
from tests.support import (
    Proc,
    ad,
    all_threads_stopped,
    frozen,
    hangs_once,
    start_api,
    start_worker,
    up_stack,
    wait_for,
)

FENCED = "heartbeat not written for"
#: the stack's NATS clients' PING interval (s): the worker says "disconnected from NATS" once
#: ``nats.max_outstanding_pings`` (3) of them went unanswered, ~4 intervals: ~40 s at the default 10 s (the freeze of
#: ``gamead up`` below lasted that long), ~12 s at 3, still past its watch's interval plus ``gaps.LATE`` (5 s)
PING_INTERVAL = "3"


@pytest.fixture
def server(fresh_nats: Callable[[], EmbeddedNats]) -> EmbeddedNats:
    return fresh_nats()


@pytest.fixture
def black_hole(server: EmbeddedNats) -> Iterator[BlackHole]:
    """A proxy to ``server`` that the test black-holes (:class:`tests.blackhole.BlackHole`)."""
    hole = BlackHole((server.host, server.port)).start()
    yield hole
    hole.stop()


BEAT = {"GAMEAD_REGISTRY__TTL": "4", "GAMEAD_REGISTRY__HEARTBEAT_INTERVAL": "0.5", "GAMEAD_LOG__LEVEL": "INFO"}


@pytest.mark.timeout(180)
def test_a_worker_on_a_nats_server_that_answers_nothing_fences_itself_while_it_is_still_black_holed(
        black_hole: BlackHole, procs: list[Proc], tmp_path: Path) -> None:
    """attack32a F10: the workers' heartbeat calls hung while nats-server's read loop stalled, and they logged
    "heartbeat not written … taking no work" only when it answered again (83 s). Now the line comes while the
    server is still black-holed (registry.ttl 4 s here)."""
    worker = start_worker(f"nats://127.0.0.1:{black_hole.port}", tmp_path, worker_id="wedged", ready=True,
                          **BEAT)
    procs.append(worker)
    assert FENCED not in worker.output()
    black_hole.close_in()
    wait_for(lambda: FENCED in worker.output(), timeout=90,
             what="the worker to fence itself while nats-server answers nothing")
    assert black_hole.black  # still black-holed: the fence did not wait for the server to answer
    assert worker.alive()


@pytest.mark.timeout(180)
def test_a_worker_running_an_ad_when_nats_stops_answering_fences_itself_while_it_is_still_black_holed(
        server: EmbeddedNats, black_hole: BlackHole, procs: list[Proc], tmp_path: Path) -> None:
    """The same with an analysis running (its keep-alive acks, the settler and the long poll all wait on the
    server): the fence still comes while the server is black-holed."""
    api, url = start_api(server.url, tmp_path, **BEAT)  # the API reaches the server directly
    procs.append(api)
    worker = start_worker(f"nats://127.0.0.1:{black_hole.port}", tmp_path, worker_id="busy", ready=True, **BEAT,
                          **hangs_once("Busy", task_timeout=120))
    procs.append(worker)
    with httpx.Client(base_url=url, timeout=30) as http:
        http.post("/ads", json=ad("Busy", 1)).raise_for_status()
        wait_for(lambda: any(w["id"] == "busy" and w["inFlight"] == 1 for w in http.get("/v1/workers").json()["items"]),
                 timeout=30, what="the worker to run 'Busy'")
    black_hole.close_in()
    wait_for(lambda: FENCED in worker.output(), timeout=90,
             what="the busy worker to fence itself while nats-server answers nothing")
    assert black_hole.black
    assert worker.alive()


@pytest.mark.timeout(400)  # a stack's start, ~12 s of pings unanswered, a NATS restart; loaded machine
def test_a_watch_that_did_not_run_says_so_with_true_figures_before_it_kills_nats(tmp_path: Path) -> None:
    """attack32a F10: ``gamead up`` itself not run (load 15) while nats-server answered nothing: its first line came
    at 81.5 s, a kill "past the 30s a busy server gets" that no reading had seen. Here gamead up and nats-server are
    stopped together until the worker's pings to NATS go unanswered (its "disconnected from NATS"), then gamead up
    runs again, nats-server still stopped: the console first says the server's silence and the watch's own gap, and
    only then, one registry.ttl of silence it saw later, kills it, the line saying how much of the silence it saw."""
    (tmp_path / "config.yaml").write_text("registry: {ttl: 4, heartbeat_interval: 0.5}\n")
    up = up_stack(tmp_path, "--workers", "1", "--max-workers", "1", GAMEAD_WORKER__DRAIN_TIMEOUT="3",
                  GAMEAD_LOG__LEVEL="WARNING", GAMEAD_NATS__PING_INTERVAL=PING_INTERVAL).start()
    try:
        up.wait_ready()
        assert up.popen is not None
        nats = up.pid_of("nats-server")
        worker_log = up.data_dir / "logs" / "worker-1.log"

        def disconnects() -> int:
            return worker_log.read_text().count("disconnected from NATS") if worker_log.exists() else 0

        before = disconnects()  # a loaded start may have logged one already: only a new one says the stall is seen
        monitor = re.search(r'^http: "([0-9.:]+)"', (up.data_dir / "nats.conf").read_text(), re.MULTILINE)
        assert monitor is not None

        def healthz_served() -> int:  # nats-server's count of the /healthz requests it answered (its /varz)
            stats = httpx.get(f"http://{monitor[1]}/varz", timeout=5).json().get("http_req_stats") or {}
            return int(stats.get("/healthz", 0))

        # the watch must have seen the server answer (else its silence is counted from the server's start, with a
        # start grace, and a gap finds nothing late: fresh run at 129a7ff, "none since its start"): two more answered
        # /healthz requests mean the first was observed (the watch asks again only after observing an answer)
        served = healthz_served()
        wait_for(lambda: healthz_served() >= served + 2, timeout=30, interval=0.1,
                 what="gamead up's watch to see nats-server answer /healthz")
        try:
            # gamead up not scheduled from before the server's silence starts until the worker's pings to it went
            # unanswered (>= 2 ping intervals, more than the LATE s a reading may take): its watch's first reading
            # after the gap is then the first to find the server silent. Before, up was stopped after the server,
            # and a loaded machine (or an old "disconnected" line, which ended the wait at once) let the watch see
            # the silence before the gap: the kill line came without the "has not answered" line before it.
            with frozen(up.popen.pid):
                stopped_at = time.monotonic()
                os.kill(nats, signal.SIGSTOP)
                wait_for(lambda: all_threads_stopped(nats), timeout=10, interval=0.005, what="nats-server to stop")
                wait_for(lambda: disconnects() > before, timeout=120, interval=0.2,
                         what="the worker's pings to nats-server to go unanswered")
                # the premise, not an assertion on time: the watch's gap must pass LATE, or it is counted as seen
                # (fresh clone at 3a575f2: the worker left the silent server after nats.stale_after, 3 s, up was let
                # run after ~4 s, and its watch rightly saw no gap: a kill line with nothing "not run" to say)
                wait_for(lambda: time.monotonic() - stopped_at > LATE + 2, timeout=LATE + 10, interval=0.2,
                         what="gamead up to have been stopped longer than its watch's LATE")
            late = f"nats-server (pid {nats}) has not answered /healthz for"
            killed = f"nats-server (pid {nats}) does not answer /healthz for"
            wait_for(lambda: killed in up.output(), timeout=60, what="gamead up to kill the stopped nats-server")
            lines = up.output().splitlines()
            first = next(i for i, ln in enumerate(lines) if late in ln or killed in ln)
            assert late in lines[first] and "but this watch itself did not run for" in lines[first]
            kill = next(ln for ln in lines if killed in ln)
            assert "s of it counted (this watch itself did not run for" in kill and "(it is stopped: state T" in kill
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(nats, signal.SIGCONT)
    finally:
        up.kill_everything()
