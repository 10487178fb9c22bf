"""A node left running with the old ``queue.partitions`` after a repartition (attack25c finding 2), on one
nats-server: the README's procedure done 3 → 5 while an API node with 3 still runs.

That node must notice while running: ``/readyz`` fails naming both settings, a submit is refused with 503
``topology_changed`` (nothing published by the wrong modulus), and ``gamead doctor --repair`` on it refuses with
one line and exit 5, changing nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import nats

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.queue.partitions import partition_of
from gamead_core.queue.publish import publish_ad
from gamead_core.queue.topology import ensure_topology
from gamead_core.stats.reading import QueueReading, read_queue
from tests.stale_node import SHORT_TTL, unlisted
from tests.support import Proc, ad, clean_env, run_gamead, start_api, start_worker, wait_for

FAST = {"GAMEAD_QUEUE__ACK_WAIT": "3", "GAMEAD_QUEUE__IDLE_POLL": "0.1", "GAMEAD_NATS__CONNECT_TIMEOUT": "5",
        "GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "0.5"}
STALE_LINE = "the queue has 5 partitions, this node is configured for 3 — restart it with queue.partitions=5"


def _held(url: str) -> dict[str, int]:
    """Messages in each work stream (storage write checks aside: an API node's probe writes them)."""

    async def run() -> dict[str, int]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream(timeout=5)
            out = {}
            for info in await js.streams_info():
                p = names.partition_of_stream(info.config.name)
                if p is not None:
                    out[info.config.name] = int(info.state.messages)
            return out
        finally:
            await nc.close()

    return asyncio.run(run())


def _repartitioned_under_a_p3_api(url: str, tmp_path: Path, procs: list[Proc], *others: int,
                                  **p5_env: str) -> tuple[str, httpx.Client, list[str]]:
    """A 3-partition API left running; the README's repartition to 5 (drained queue, one start with
    queue.repartition); a 5-partition API then queues ads over the five streams (no worker takes them).
    Returns the stale API's URL, a client of the 5-partition API (``p5_env``: more of its environment), and the
    ids queued. ``others``: the PIDs of more nodes on 3, frozen with the API through the change (unlisted)."""
    stale, stale_url = start_api(url, tmp_path, GAMEAD_QUEUE__PARTITIONS="3", **FAST, **SHORT_TTL)
    procs.append(stale)
    assert httpx.get(f"{stale_url}/readyz").status_code == 200
    with unlisted(url, stale.pid, *others):  # past their entries' expiry: live ones refuse it (attack42b F1)
        one = start_worker(url, tmp_path, worker_id="p5-once", ready=True, GAMEAD_QUEUE__PARTITIONS="5",
                           GAMEAD_QUEUE__REPARTITION="true", **FAST)
        one.stop(timeout=10)
    assert sorted(_held(url)) == ["GAMEAD_ADS", *(f"GAMEAD_ADS_{p}" for p in range(1, 5))]
    p5, p5_url = start_api(url, tmp_path, GAMEAD_QUEUE__PARTITIONS="5", **{**FAST, **p5_env})
    procs.append(p5)
    http = httpx.Client(base_url=p5_url, timeout=30)
    ids: list[str] = []
    while not {3, 4} <= {partition_of(i, 5) for i in ids} or len(ids) < 10:
        assert len(ids) < 60, "ad ids never reached partitions 3 and 4"
        reply = http.post("/ads", json=ad(f"Queued after the change {len(ids)}", 3))
        assert reply.status_code == 202, reply.text
        ids.append(reply.json()["id"])
    return stale_url, http, ids


def test_a_stale_api_node_turns_unready_and_refuses_submits(fresh_nats: Any, procs: list[Proc],
                                                           tmp_path: Path) -> None:
    url = fresh_nats().url
    stale_url, http, ids = _repartitioned_under_a_p3_api(url, tmp_path, procs)
    with httpx.Client(base_url=stale_url, timeout=30) as stale:
        ready = wait_for(lambda: (r := stale.get("/readyz")).status_code == 503 and r, timeout=30,
                         what="the stale API node's /readyz to fail")
        assert ready.json()["checks"]["topology"] == f"failing: {STALE_LINE}", ready.json()
        before = _held(url)
        refused = stale.post("/ads", json=ad("Sent to the stale node", 3))
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["code"] == "topology_changed" and STALE_LINE in error["message"], error
        assert _held(url) == before  # nothing published, by any modulus
        stats = stale.get("/v1/stats").json()
        assert stats["topology"]["ok"] is False and stats["topology"]["partitions"] == STALE_LINE
        # its figures (top, /metrics, its autoscaler) count the queue's 5 partitions, not its 3 (attack28b F3)
        counted = wait_for(lambda: (q := stale.get("/v1/stats").json()["queue"])["pending"] == len(ids) and q,
                           timeout=30, what=f"the stale node's /v1/stats to count the {len(ids)} ads waiting")
        assert counted["partitions"] == 5 and counted["unreadableLevels"] == [], counted
        oldest = stale.get("/v1/levels/3/oldest", params={"limit": 100}).json()  # top's drill-down
        assert oldest["pending"] == len(ids) and sorted(i["id"] for i in oldest["items"]) == sorted(ids), oldest
    assert http.get("/readyz").status_code == 200  # the node that fits is served as before
    http.close()


def test_doctor_repair_on_a_stale_api_node_refuses_and_changes_nothing(fresh_nats: Any, procs: list[Proc],
                                                                      tmp_path: Path) -> None:
    """The drill saw 78 false ``no_message`` findings (ads in GAMEAD_ADS_3/_4, which a 3-partition node does not
    read) re-published by ``--repair``. Now the per-ad checks are not run, and the repair is refused: exit 5."""
    url = fresh_nats().url
    stale_url, http, ids = _repartitioned_under_a_p3_api(url, tmp_path, procs)
    http.close()
    with httpx.Client(base_url=stale_url, timeout=60) as stale:
        wait_for(lambda: stale.get("/readyz").status_code == 503, timeout=30, what="the stale node to notice")
        before = _held(url)
        assert sum(before.values()) == len(ids)
        report = stale.get("/v1/doctor", params={"settle": 0}).json()
        assert [f["kind"] for f in report["findings"]] == ["topology_incompatible"], report["findings"]
        assert report["topologyChanged"] == STALE_LINE and report["ok"] is False
        refused = stale.post("/v1/doctor/repair")
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "topology_changed", refused.text
        run = run_gamead("doctor", "--repair", "--yes", "--api", stale_url, env=clean_env(), timeout=120)
        red = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("{")]
        assert run.returncode == 5, (run.returncode, run.stdout[-2000:], run.stderr[-2000:])
        assert len(red) == 1 and "--repair refused, nothing changed" in red[0] and STALE_LINE in red[0], red
        assert "no_message" not in run.stdout and "per-ad checks not run" in run.stdout, run.stdout
        assert _held(url) == before  # not one message re-published


def test_a_stale_worker_stops_and_exits_5_naming_the_partitions(fresh_nats: Any, procs: list[Proc],
                                                                tmp_path: Path) -> None:
    """A 3-partition worker left running through the change stops pulling and exits 5 with the one line (its
    supervisor restarts it; a start with the old setting is then refused, as before)."""
    url = fresh_nats().url
    worker = start_worker(url, tmp_path, worker_id="p3-stale", ready=True, GAMEAD_QUEUE__PARTITIONS="3", **FAST,
                          **SHORT_TTL)
    procs.append(worker)
    _repartitioned_under_a_p3_api(url, tmp_path, procs, worker.pid)
    wait_for(lambda: worker.popen.poll() is not None, timeout=30, what="the stale worker to exit")
    assert worker.popen.returncode == 5, worker.output()[-3000:]
    assert STALE_LINE in worker.output()


def test_doctor_names_the_stale_node_and_the_ads_no_worker_pulls(fresh_nats: Any, procs: list[Proc],
                                                                 tmp_path: Path) -> None:
    """attack28b F3: with the stale node leading the autoscaler, the workers were scaled to 0 while ads waited in
    the new partitions, and ``gamead doctor`` on a node that fits said every invariant held. It names the ads'
    work streams no live worker pulls from (``unpulled_ads``) and the node left on the old setting
    (``partitions_disagree``); a worker with the queue's setting ends the first, the stale node's restart the
    second."""
    url = fresh_nats().url
    # priority 3 promises 2 × aging_step: 1 s here (ads queued while a worker starts are no finding)
    stale_url, http, ids = _repartitioned_under_a_p3_api(url, tmp_path, procs, GAMEAD_QUEUE__AGING_STEP="0.5")
    with httpx.Client(base_url=stale_url, timeout=30) as stale:
        stale_id = stale.get("/v1/stats").json()["node"]
    waiting = sorted({names.work_stream(partition_of(i, 5)) for i in ids})

    def doctor() -> dict[str, dict[str, Any]]:
        return {f["kind"]: f for f in http.get("/v1/doctor", params={"settle": 0.5}).json()["findings"]}

    found = wait_for(lambda: len((f := doctor()).get("unpulled_ads", {}).get("sample", [])) == len(waiting) and f,
                     timeout=30, what="the doctor to name the work streams no worker pulls")
    assert sorted(found) == ["partitions_disagree", "unpulled_ads"], found
    assert sorted(found["unpulled_ads"]["sample"]) == waiting, found["unpulled_ads"]
    details = found["unpulled_ads"]["details"].values()
    assert all("(priority 3 promises 1 s); no worker is running" in d for d in details), details
    assert found["partitions_disagree"]["sample"] == [stale_id], found["partitions_disagree"]
    assert "configured for queue.partitions 3, the queue has 5" in found["partitions_disagree"]["details"][stale_id]
    run = run_gamead("doctor", "--api", str(http.base_url), env=clean_env(), timeout=120)
    assert run.returncode == 1 and "unpulled_ads" in run.stdout and "partitions_disagree" in run.stdout, run.stdout
    procs.append(start_worker(url, tmp_path, worker_id="p5", ready=True, GAMEAD_QUEUE__PARTITIONS="5", **FAST))
    left = wait_for(lambda: "unpulled_ads" not in (k := doctor()) and k, timeout=60, what="a worker to pull them")
    assert list(left) == ["partitions_disagree"], left
    http.close()


def test_a_reading_counts_the_queues_partitions_whatever_the_nodes_setting(fresh_nats: Any) -> None:
    """The one reading behind ``/v1/stats``, ``top``, ``/metrics`` and the autoscaler, on a queue of 3
    partitions with 12 ads in ``GAMEAD_ADS_1``/``_2``: a node set to 1 read only ``GAMEAD_ADS`` (0 pending), one
    set to 5 found ``GAMEAD_ADS_3``/``_4`` missing and every level unreadable. Both read the queue's 3."""
    url = fresh_nats().url
    ids = [i for i in (f"01KREAD{n:019d}" for n in range(400)) if partition_of(i, 3) != 0][:12]

    async def run() -> list[QueueReading]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream(timeout=5)
            await ensure_topology(js, GameadSettings(queue={"partitions": 3}))
            for ad_id in ids:
                await publish_ad(js, ad_id=ad_id, level=2, payload=b"{}", timeout=5.0, partitions=3)
            return [await read_queue(js, None, time.time(), setting) for setting in (1, 3, 5)]
        finally:
            await nc.close()

    for reading in asyncio.run(run()):
        assert reading.pending == 12 and reading.unreadable == () and reading.partitions == 3, reading
        assert reading.messages == 12 and reading.errors == (), reading
