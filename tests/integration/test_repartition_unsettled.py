"""A live repartition never strands an ad whose publish was unanswered (repart38; attack38a F2), on one nats-server.

The drill: a repartition 3 → 1 (a worker started with ``queue.partitions`` 1 and ``queue.repartition``) next to
an API node still on 3, two ``gamead submit`` at 40 ads/s each: 1 ad of 4,800 (partition 2 of 3) got no answer to
its publish as ``GAMEAD_ADS_2`` was sealed and deleted. The client looked it up (``GET /ads/ID``: ``queued``) and
was told "queued (found): do not resend"; the node settled it by re-publishing to partition 2 of 3, a stream that
no longer existed, for 2 min, until its SIGTERM ("left unsettled … run gamead doctor --repair"): a record
``queued``, attempts 0, and no message anywhere.

Here the publish is lost on the way deterministically: the API's link to nats-server goes through
:class:`tests.nats_filter.PublishFilter`, which swallows its publishes to partition 2's levels while the
repartition is made, and lets them through once it is done.

The same old node also heals its topology: a work stream the repartition deleted while the kept ones still said
the old setting (in the drill's cluster, GAMEAD_ADS_1 and GAMEAD_ADS_2 were deleted a second apart) was a missing
partition to it, recreated (made with 3) within its check interval: work streams made with two settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from gamead_core import names
from gamead_core.queue.partitions import partition_of
from tests.nats_filter import PublishFilter
from tests.stale_node import SHORT_TTL, unlisted
from tests.support import (
    Proc,
    ad,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
    wait_worker_ready,
    work_streams,
)

FAST = {"GAMEAD_QUEUE__ACK_WAIT": "3", "GAMEAD_QUEUE__IDLE_POLL": "0.1", "GAMEAD_NATS__CONNECT_TIMEOUT": "5",
        "GAMEAD_API__TOPOLOGY_CHECK_INTERVAL": "0.5", "GAMEAD_API__PUBLISH_TIMEOUT": "1"}


def test_an_ad_whose_publish_was_unanswered_as_its_partition_was_removed_is_queued_by_the_live_partitions(
        fresh_nats: Any, procs: list[Proc], tmp_path: Path) -> None:
    """Before: the ad stayed ``queued`` with no message (the figure: 1 of 4,800 in the drill; here the one ad of
    partition 2 every time) while the client had been told it was queued. Now the stale node's settling finds its
    partition gone and publishes it by the queue's partitions: the new worker completes it."""
    server = fresh_nats()
    link = PublishFilter(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))).start()
    try:
        api, api_url = start_api(link.url, tmp_path, GAMEAD_QUEUE__PARTITIONS="3", **FAST, **SHORT_TTL)
        procs.append(api)
        old = start_worker(server.url, tmp_path, worker_id="p3", ready=True, GAMEAD_QUEUE__PARTITIONS="3", **FAST)
        procs.append(old)
        link.drop(f"{names.work_subject_prefix(2)}.p")  # partition 2's levels; its storage check goes on
        with httpx.Client(base_url=api_url, timeout=30) as http:
            done, lost = [], None
            while lost is None:
                assert len(done) < 60, "no ad id fell in partition 2"
                reply = http.post("/ads", json=ad(f"Submitted across the change {len(done)}", 3))
                if reply.status_code == 202:
                    assert partition_of(reply.json()["id"], 3) != 2, reply.text
                    done.append(reply.json()["id"])
                    continue
                assert reply.status_code == 503, reply.text
                maybe = (reply.json()["error"].get("details") or {}).get("adId")  # "may still be queued"
                if maybe is not None and partition_of(maybe, 3) == 2:
                    lost = maybe  # its publish swallowed: the client looks it up
                elif maybe is not None:  # a publish slow to be answered on a loaded machine: settled as ever
                    done.append(maybe)
            assert link.dropped >= 1
            found = http.get(f"/ads/{lost}").json()
            assert found["status"] == "queued" and found["attempts"] == 0, found  # "queued (found): do not resend"
            for ad_id in done:
                assert wait_terminal(http, ad_id, timeout=30)["status"] == "completed"
            old.stop(timeout=20)
            wait_for(lambda: not any(s["messages"] for s in work_streams(server.url).values()),
                     what="the drained queue")
            with unlisted(server.url, api.pid):  # a live node on 3 refuses the repartition (attack42b F1)
                new = start_worker(server.url, tmp_path, worker_id="p1", ready=True, GAMEAD_QUEUE__PARTITIONS="1",
                                   GAMEAD_QUEUE__REPARTITION="true", **FAST)
                procs.append(new)
            assert sorted(work_streams(server.url)) == ["GAMEAD_ADS"], new.output()[-2000:]
            link.pass_all()  # the node's settling reaches nats-server again: GAMEAD_ADS_2 is gone
            final = wait_terminal(http, lost, timeout=30)
            assert final["status"] == "completed" and final["attempts"] == 1, final
        assert "published by the queue's partitions" in api.output(), api.output()[-3000:]
    finally:
        link.stop()


def test_an_old_node_never_recreates_a_partition_the_repartition_is_deleting(
        fresh_nats: Any, procs: list[Proc], tmp_path: Path) -> None:
    """Before: with the repartition's delete of GAMEAD_ADS_2 held 2.5 s (as a cluster's slow delete), the
    3-partition API (topology check every 0.5 s) recreated GAMEAD_ADS_1, made with 3, right after its delete
    (0.35 s in a hand-made run): GAMEAD_ADS made with 1 next to GAMEAD_ADS_1 made with 3, every node refused. Now
    the kept stream says the new setting before any stream is deleted, and the old node sees the change instead."""
    server = fresh_nats()
    api, api_url = start_api(server.url, tmp_path, GAMEAD_QUEUE__PARTITIONS="3", **FAST, **SHORT_TTL)
    procs.append(api)
    link = PublishFilter(("127.0.0.1", int(server.url.rsplit(":", 1)[1]))).start()
    try:
        link.hold("$JS.API.STREAM.DELETE.GAMEAD_ADS_2", 2.5)  # within its JetStream calls' timeout (5 s here)
        # the API frozen past its entry's expiry (a live node on 3 refuses the repartition: attack42b F1), resumed
        # as GAMEAD_ADS_1 is deleted: the rest of the 2.5 s the delete of GAMEAD_ADS_2 is held, it runs and checks
        with unlisted(server.url, api.pid):
            new = start_worker(link.url, tmp_path, worker_id="p1", GAMEAD_QUEUE__PARTITIONS="1",
                               GAMEAD_QUEUE__REPARTITION="true", GAMEAD_NATS__REQUEST_TIMEOUT="5", **FAST)
            procs.append(new)
            wait_for(lambda: "GAMEAD_ADS_1" not in work_streams(server.url), timeout=60, what="GAMEAD_ADS_1 deleted")
        wait_worker_ready(new)
        streams = work_streams(server.url)
        assert sorted(streams) == ["GAMEAD_ADS"], (streams, api.output()[-3000:])
        assert streams["GAMEAD_ADS"]["config"]["metadata"][names.PARTITIONS_METADATA] == "1"
        assert "recreated missing" not in api.output()
        with httpx.Client(base_url=api_url, timeout=30) as http:
            wait_for(lambda: http.post("/ads", json=ad("Old node", 3)).status_code == 503, what="topology_changed")
            assert http.post("/ads", json=ad("Old node", 3)).json()["error"]["code"] == "topology_changed"
    finally:
        link.stop()
