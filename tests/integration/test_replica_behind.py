"""A worker whose replica of the records' bucket is behind the leader never acks a replayed ad unrun (attack40b F1).

On an R3 cluster a direct get (any replica answers) right after a write may return the previous revision: attack40b
saw it for 13 of 1,000 reads, and 6 of 608 DLQ replays were lost: the worker read the just-replayed record as still
``dead`` (final), acked its message unrun, and the record stayed ``queued`` for ever with no message. The lag is made
certain here, not left to chance: every route goes through a :class:`~tests.route_filter.RouteFilter`, each server
answers its own clients' direct gets (it never hears of the others' direct-get subscriptions), and node n3's replica
of the records' bucket hears nothing of the bucket's Raft group from the moment the dead ads are on every replica. The
API (on n1, the bucket's leader) replays them; the worker (on n3 alone) reads ``dead`` from n3's replica for each one.
The worker takes a verdict that settles a delivery unrun only on the stream leader's copy (handle._handle,
budget.ends_unrun): every replayed ad completes. Without that re-read: 6 of 6 replays lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import pytest

from gamead_core import names
from tests.cut_cluster import CutCluster, cut_cluster, raft_group  # noqa: F401 - cut_cluster is a fixture
from tests.integration.dlq_lane import FINISHED, made_up_entry
from tests.integration.test_cluster import R3, _move_leader
from tests.support import Proc, start_api, start_worker, wait_for

N = 6  #: dead ads replayed
ENV = {**R3, "GAMEAD_QUEUE__IDLE_POLL": "0.1"}


def _job(http: httpx.Client, path: str, body: dict[str, Any], done: Callable[[dict], bool] | None = None) -> dict:
    """Start the job ``path`` with ``body`` and wait until it ended, or until ``done(job)`` (a replay job follows
    its ads until they settle, and a lost one never does)."""
    resp = http.post(path, json=body)
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["id"]

    def finished() -> dict | None:
        job = http.get(f"/v1/jobs/{job_id}").json()
        return job if job.get("state") in FINISHED or (done is not None and done(job)) else None

    return wait_for(finished, timeout=60, interval=0.1, what=f"job {path} to end")


def _dead_entries(n: int) -> list[dict]:
    """``n`` DLQ entries (``gamead dlq export``'s form) of ads submitted a minute ago: a replayed message is then
    stored long after its body's ``submittedAt``, so the worker reads the record rather than trust the body (as for
    any replay more than ``TRUSTED_WITHIN`` after the submit: attack40b's)."""
    earlier = (datetime.now(timezone.utc) - timedelta(minutes=1)).isoformat()
    return [{**made_up_entry(f"Behind {i}"), "submittedAt": earlier} for i in range(n)]


def _last_seqs(cluster: CutCluster, stream: str) -> list[int]:
    """Each node's last sequence of its replica of ``stream`` (``/jsz``; -1: none)."""
    seqs = []
    for node in cluster.nodes:
        jsz = httpx.get(f"http://127.0.0.1:{node.http_port}/jsz", params={"streams": "true"}, timeout=5).json()
        found = [s["state"]["last_seq"] for a in jsz.get("account_details", []) for s in a.get("stream_detail", [])
                 if s["name"] == stream]
        seqs.append(found[0] if found else -1)
    return seqs


def _direct_read(url: str, ad_id: str) -> str | None:
    """``ad_id``'s status as a direct get through the server at ``url`` finds it; None when nothing answered (the
    server's replica not yet answering direct gets: it starts once it is current, ~2 s after the stream's creation)."""

    async def run() -> str | None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream(timeout=1)
            msg = await js.get_last_msg(names.ADS_BUCKET_STREAM, names.kv_subject(names.ADS_BUCKET, ad_id),
                                        direct=True)
            return str(json.loads(msg.data)["status"])
        except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
            return None
        finally:
            await nc.close()

    return asyncio.run(run())


def _work_messages(servers: list[str]) -> int:
    """Messages in the work streams (work-queue retention: a message is gone once acked)."""

    async def run() -> int:
        nc = await nats.connect(servers)
        try:
            js = nc.jetstream(timeout=5)
            return sum(info.state.messages for info in await js.streams_info()
                       if names.partition_of_stream(info.config.name) is not None)
        finally:
            await nc.close()

    return asyncio.run(run())


@pytest.fixture
def behind_stack(cut_cluster: CutCluster, tmp_path: Path) -> Iterator[tuple[httpx.Client, Proc]]:  # noqa: F811
    """The API on n1 and one worker on n3 alone; the records' bucket led by n1."""
    n1, n3 = cut_cluster.node_named("n1"), cut_cluster.node_named("n3")
    worker = start_worker(n3.url, tmp_path, worker_id="w3", concurrency=2, **ENV)  # starts while the API does
    api, url = start_api(n1.url, tmp_path, **ENV)
    http = httpx.Client(base_url=url, timeout=30)
    try:
        wait_for(lambda: http.get("/v1/workers", params={"role": "worker"}).json()["count"] == 1, timeout=30,
                 what="the worker on n3 running")
        _move_leader(cut_cluster.servers, names.ADS_BUCKET_STREAM, "n1")
        yield http, worker
    finally:
        cut_cluster.heal()
        http.close()
        for proc in (worker, api):
            proc.stop(timeout=10)


def test_a_replay_read_dead_on_a_replica_behind_is_run_not_acked(cut_cluster: CutCluster,  # noqa: F811
                                                                 behind_stack: tuple[httpx.Client, Proc]) -> None:
    http, worker = behind_stack
    entries = _dead_entries(N)
    ids = [e["adId"] for e in entries]
    assert _job(http, "/v1/dlq/import", {"entries": entries})["counts"]["imported"] == N
    bucket = names.ADS_BUCKET_STREAM
    wait_for(lambda: len(set(_last_seqs(cut_cluster, bucket))) == 1, timeout=20,
             what="every replica of the records' bucket holding the dead ads")
    n3 = cut_cluster.node_named("n3")  # its clients' direct gets are answered by its replica alone (RouteFilter)
    wait_for(lambda: all(_direct_read(n3.url, i) == "dead" for i in ids), timeout=20,
             what="n3's replica answering the worker's direct gets: 'dead'")
    before = _last_seqs(cut_cluster, bucket)
    cut_cluster.cut("n3", raft_group(cut_cluster.servers, bucket))  # n3's replica: the dead ads from now on

    job = _job(http, "/v1/dlq/replay", {"all": True}, done=lambda j: (j.get("counts") or {}).get("replayed", 0) >= N)
    assert job["counts"]["replayed"] == N, job
    wait_for(lambda: _work_messages(cut_cluster.servers) == 0, timeout=30,
             what="every replayed message settled by the worker")
    behind = _last_seqs(cut_cluster, bucket)
    assert behind[2] == before[2] < behind[0], f"n3's replica was not behind the leader: {before} → {behind}"

    statuses = {i: http.get(f"/ads/{i}").json()["status"] for i in ids}  # n1's replica: the leader's
    lost = [i for i, s in statuses.items() if s != "completed"]
    assert not lost, (f"{len(lost)} of {N} replays lost (read 'dead' on n3's replica, acked unrun): "
                      f"{[statuses[i] for i in lost]}")
    assert cut_cluster.dropped() > 0
    assert "Traceback" not in worker.output()
