"""A DLQ replay of every entry (``POST /v1/dlq/replay {"all": true}``, what ``gamead dlq replay --all`` starts)
whose selection is cut by a stalled nats-server (SIGSTOP while its read of the DLQ runs) says what it did: it waits
for NATS and selects the whole DLQ again, then replays every entry, and its counts say so. It never reports
"replayed N of N matched" over the part read before the stall (doctor36; fix35e's rule in
``gamead_core.queue.scan.read_stream``, end to end).

Real nats-server stopped and resumed by its recorded PID, a real API. :data:`N` dead ads of ~12 KB (every field at
its limit): the selection's push consumer is held by flow control far short of the DLQ when the server stops.
Figure without the stall check (read_stream ending quietly at its timeout, as before fix35e; checked by disabling
it): the job succeeded with ``replayed 157 of 157 matched``, 343 entries left in the DLQ.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import nats
import pytest

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from tests.integration.dlq_lane import FINISHED, fill_dead
from tests.support import Proc, all_threads_stopped, start_api, wait_for

#: dead ads at every field limit (~12 KB as a DLQ entry): flow control holds the selection's consumer at a few hundred
N = 500
ENV = {"GAMEAD_JOBS__LEASE": "30", "GAMEAD_JOBS__FOLLOW_TIMEOUT": "0.5"}

def _dlq_consumers(url: str) -> int:
    async def read() -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().stream_info(names.DLQ_STREAM)).state.consumer_count)
        finally:
            await nc.close()

    return asyncio.run(read())


def _waits(api: Proc, timeout: float) -> bool:
    """Whether the API's log says, within ``timeout`` seconds, that the job waits for NATS (its read failed)."""
    try:
        wait_for(lambda: "job waits for NATS" in api.log.read_text(errors="replace"), timeout=timeout, interval=0.1,
                 what="the job to say it waits for NATS")
    except AssertionError:
        return False
    return True


def _ended(http: httpx.Client, job_id: str, still_for: float) -> dict:
    """The job once it ended. Fails when its progress (phase, entries done) stood still ``still_for`` seconds:
    what an operator following it would see as stuck. Its whole time is the machine's: its 500 replays go one
    after another, a few NATS round trips each (~45 ms at load ~13, 23 s; at load 35-42 not ended in 240 s)."""
    progress, since = None, time.monotonic()
    while True:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job.get("state") in FINISHED:
            return job
        now = (job.get("phase"), (job.get("counts") or {}).get("done"))
        if now != progress:
            progress, since = now, time.monotonic()
        assert time.monotonic() - since < still_for, f"the replay stood still {still_for:.0f} s: {job}"
        time.sleep(0.5)


#: a replay that keeps replaying is not stuck, however slow the machine: 500 replays at up to ~1.5 s each fit (at load
#: 35-42 over 0.5 s each: a fixed 240 s did not see it end)
@pytest.mark.timeout(900)
def test_a_replay_all_whose_selection_stalls_replays_every_entry_and_says_so(
        fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path) -> None:
    server = fresh_nats()
    assert server.proc is not None
    pid = server.proc.pid
    asyncio.run(fill_dead(server.url, N))
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=30) as http:
        resp = http.post("/v1/dlq/replay", json={"all": True})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]
        wait_for(lambda: _dlq_consumers(server.url) > 0, timeout=30, interval=0.005, what="the selection's read")
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: all_threads_stopped(pid), timeout=10, interval=0.005, what="nats-server to stop")
            waited = _waits(api, 30)  # without the stall check it never does: resumed after 30 s then
        finally:
            os.kill(pid, signal.SIGCONT)
        job = _ended(http, job_id, still_for=120)
        dlq = http.get("/v1/dlq", params={"limit": 1}).json()
    counts = job["counts"]
    assert (counts["matched"], counts["replayed"]) == (N, N), (
        f"{counts}, the job said it waits for NATS: {waited} (without the stall check: 'replayed 157 of 157 "
        "matched', the rest left in the DLQ)")
    assert waited
    assert job["state"] == "succeeded", job
    assert dlq["inDlq"] == 0, dlq


def test_a_replay_past_its_limit_says_what_it_left(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc],
                                                  tmp_path: Path) -> None:
    """A replay of every entry with ``limit`` 5 over a DLQ of 8: it replays the oldest 5 and says that more matched
    and were left in the DLQ, and so does its count (the dry run, what the CLI asks about). Figure before:
    ``replayed 5 of 5 matched · … · skipped 0`` and ``5 entries would be replayed``, the 3 others unsaid."""
    from gamead_cli.commands.dlq_views import would_view
    from gamead_core.jobs.model import Job
    from gamead_core.jobs.policy import summary

    server = fresh_nats()
    asyncio.run(fill_dead(server.url, 8))
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=30) as http:
        preview = http.post("/v1/dlq/replay", json={"all": True, "limit": 5, "dryRun": True}).json()
        resp = http.post("/v1/dlq/replay", json={"all": True, "limit": 5})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["id"]

        def ended() -> dict | None:
            job = http.get(f"/v1/jobs/{job_id}").json()
            return job if job.get("state") in FINISHED else None

        job = wait_for(ended, timeout=60, interval=0.2, what="the replay to end")
        left = http.get("/v1/dlq", params={"limit": 1}).json()["inDlq"]
    said = summary(Job.model_validate(job))  # what gamead dlq replay prints as the job's outcome
    assert said.startswith("replayed 5 of 5 matched") and left == 3, (said, left)
    assert said.endswith("more entries matched than the job's limit (5): left in the DLQ"), said
    assert job["selection"]["pastLimit"] is True
    assert (preview["matched"], preview["pastLimit"]) == (5, True), preview  # the count says it too, and the CLI:
    assert str(would_view(preview, "replayed")) == (
        "5 entries would be replayed (the job's limit: more entries match, left in the DLQ)")
