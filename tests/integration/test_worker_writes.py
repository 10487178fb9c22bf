"""Issue 14.2: the worker's record writes per ad, counted on the KV bucket's own subjects (a plain NATS
subscription on ``$KV.<bucket>.>``: every KV put is a publish there), on a NATS server of its own.

A short analysis writes the record once (its outcome carries the attempt's charge); one that runs past
``worker.processing_mark_after`` is marked ``processing`` first (two writes); a crash during an unmarked
analysis is still charged, from the worker's heartbeat, and the poison ad still ends dead after exactly
``worker.max_attempts`` crashes."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from gamead_core.embedded import EmbeddedNats
try:  # tests.support keeps it once the partitions branch is merged
    from tests.support import KvWatch  # type: ignore[attr-defined]
except ImportError:
    from tests.integration.test_pipeline import KvWatch
from tests.support import Proc, ad, assert_doctor_clean, start_api, start_worker, wait_for, wait_terminal

#: ack_wait far above every deadline here: an ad that comes back in time was handed back, not timed out
LONG_ACK_WAIT = {"GAMEAD_QUEUE__ACK_WAIT": "90"}


def _submit(http: httpx.Client, title: str) -> str:
    resp = http.post("/ads", json=ad(title, 3))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def test_a_short_analysis_costs_one_record_write_and_a_long_one_two(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before: every completed ad cost the worker a read, a ``processing`` write and a ``completed`` write.
    Now 10 short ads (no simulated latency) are written once each by the worker, ``completed`` with their
    attempt, worker and start time; 2 ads of 1.2 s (past ``processing_mark_after`` 0.5 s) twice."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path)
    procs.append(api)
    watch = KvWatch(server.url, ">")
    try:
        with httpx.Client(base_url=url, timeout=20) as http:
            # The API's record write is not awaited (a worker faster than it creates the record from the
            # message: a write of its own); the ads wait until their records are there, then a worker starts.
            short = [_submit(http, f"Quick {i}") for i in range(10)]
            wait_for(lambda: all(http.get(f"/ads/{i}").status_code == 200 for i in short), what="the records")
            quick = start_worker(server.url, tmp_path, worker_id="quick", concurrency=4)
            procs.append(quick)
            done = [wait_terminal(http, i) for i in short]
            assert quick.stop() == 0
            long = [_submit(http, f"Slow {i}") for i in range(2)]
            wait_for(lambda: all(http.get(f"/ads/{i}").status_code == 200 for i in long), what="the records")
            slow = start_worker(server.url, tmp_path, worker_id="slow", concurrency=2,
                                GAMEAD_ANALYSIS__SIMULATED_LATENCY_MS="1200")
            procs.append(slow)
            done += [wait_terminal(http, i) for i in long]
            wait_for(lambda: all(len(watch.of(i)) >= 3 for i in long), what="the writes of the slow ads")
    finally:
        watch.close()
    assert [r["status"] for r in done] == ["completed"] * 12
    assert all(r["attempts"] == 1 and r["startedAt"] and r["workerId"] for r in done)
    # the API's create (queued), then the worker's own writes
    writes = {i: [w["status"] for w in watch.of(i)] for i in [*short, *long]}
    print("worker KV writes per ad: short", [len(writes[i]) - 1 for i in short],
          "long", [len(writes[i]) - 1 for i in long])
    assert [writes[i] for i in short] == [["queued", "completed"]] * 10
    assert [writes[i] for i in long] == [["queued", "processing", "completed"]] * 2


def test_a_crash_during_an_unmarked_analysis_is_charged_from_the_heartbeat(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """The poison ad (fault mode ``crash``: ``os._exit`` as an OOM kill) crashes its worker at once, so its first
    attempt never writes ``processing``. The worker's next incarnation (same id, as ``gamead up`` restarts it)
    adopts what its predecessor held and charges it (``WorkerLost``); the redelivery is marked before it runs
    and its crash is charged by the record; with ``max_attempts`` 2 the ad is dead after exactly 2 crashes."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **LONG_ACK_WAIT)
    procs.append(api)
    env = {"GAMEAD_WORKER__MAX_ATTEMPTS": "2", "GAMEAD_WORKER__FAULTS__RATE": "1",
           "GAMEAD_WORKER__FAULTS__MATCH": "^Poison", "GAMEAD_WORKER__FAULTS__MODE": "crash", **LONG_ACK_WAIT}
    watch = KvWatch(server.url, ">")
    crashes = 0
    try:
        with httpx.Client(base_url=url, timeout=20) as http:
            ad_id = _submit(http, "Poison Pill")  # its record there first (the API's create is not awaited)
            wait_for(lambda: http.get(f"/ads/{ad_id}").status_code == 200, what="the record")
            worker = start_worker(server.url, tmp_path, worker_id="w1", **env)  # it dies at once: not "ready"
            procs.append(worker)
            while http.get(f"/ads/{ad_id}").json()["status"] != "dead":
                assert crashes < 3, "the poison ad must be dead after 2 crashes"
                wait_for(lambda: not worker.alive(), timeout=30, what="the poison ad to crash its worker")
                assert worker.popen is not None and worker.popen.wait() == 70
                crashes += 1
                worker = start_worker(server.url, tmp_path, worker_id="w1", **env)
                procs.append(worker)
                wait_for(lambda: http.get(f"/ads/{ad_id}").json()["attempts"] >= crashes, timeout=30,
                         what=f"crash {crashes} to be charged")
                wait_for(lambda: http.get(f"/ads/{ad_id}").json()["status"] == "dead" or not worker.alive(),
                         timeout=30, what="the next attempt")
            record = http.get(f"/ads/{ad_id}").json()
            worker.signal(signal.SIGTERM)
            assert_doctor_clean(url)
    finally:
        watch.close()
    writes = watch.of(ad_id)
    statuses = [w["status"] for w in writes]
    print("the poison ad's record writes:", statuses)
    assert crashes == 2
    assert record["status"] == "dead" and record["attempts"] == 2
    assert record["error"]["errorClass"] == "WorkerLost"
    # the first crash left no processing mark: its charge is the recovery's write, from the heartbeat
    assert statuses[0] == "queued" and statuses[1] == "queued"
    assert writes[1]["attempts"] == 1 and writes[1]["error"]["errorClass"] == "WorkerLost"
    assert "processing" in statuses[2:], "the redelivery is marked before it runs"


def test_a_level_head_is_aged_by_a_direct_get_and_without_one_on_an_older_stream(
    fresh_nats: Callable[[], EmbeddedNats]
) -> None:
    """The queue-head view (``level_depth``) reads the next undelivered ad's age with a direct get (headers
    and time stamp; no JSON/base64 envelope), and still reads it on a work stream made without direct gets
    (an older topology), through ``STREAM.MSG.GET``: the age an operator sees in ``/v1/stats`` either way."""
    import asyncio
    from dataclasses import replace

    import nats

    from gamead_core import names
    from gamead_core.config import GameadSettings
    from gamead_core.queue.depth import level_depth, peek_next
    from gamead_core.queue.topology_plan import consumer_config, stream_config

    async def run(direct: bool) -> tuple[float | None, str | None]:
        server = fresh_nats()
        nc = await nats.connect(server.url)
        try:
            js = nc.jetstream()
            qs = GameadSettings().queue
            await js.add_stream(replace(stream_config(qs), allow_direct=direct))
            await js.add_consumer(names.ADS_STREAM, consumer_config(3, qs))
            await js.publish(names.level_subject(3), b'{"id":"x"}', headers={names.HDR_AD_ID: "ad-1"})
            depth = await level_depth(js, 3, time.time() + 5.0)  # "now" is 5 s after the publish, or later
            deadline = time.monotonic() + 10  # a loaded server counts a consumer's pending a moment later
            while depth.oldest_age is None and time.monotonic() < deadline:  # (once in a full run: None, not direct)
                await asyncio.sleep(0.05)
                depth = await level_depth(js, 3, time.time() + 5.0)
            head = await peek_next(js, names.ADS_STREAM, names.level_subject(3), 0)
            return depth.oldest_age, (head.headers or {}).get(names.HDR_AD_ID) if head else None
        finally:
            await nc.close()

    for direct in (True, False):
        age, ad_id = asyncio.run(run(direct))
        assert age is not None and age >= 5.0, (direct, age)
        assert ad_id == "ad-1"
