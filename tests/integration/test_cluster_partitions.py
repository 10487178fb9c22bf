"""Partitioned work streams (issue 14, item 5) on a real three-node JetStream cluster, every stream R3 and
``queue.partitions: 3``: ads spread over three streams (whose leaders the cluster places), every one is
processed, the priority order holds across partitions, stats and the level drill-down see every partition, the
doctor finds nothing; a start with another ``queue.partitions`` is refused in one line with exit code 5 (live
queue or drained), and on the drained queue ``queue.repartition: true`` makes the change.

Runs on the session's cluster after ``test_cluster.py`` (same xdist group: one cluster for both modules).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gamead_core import names
from tests.cluster import NatsCluster, fresh_cluster
from tests.support import (
    ad,
    assert_doctor_clean,
    clean_env,
    run_gamead,
    start_api,
    start_worker,
    submit_concurrently,
    wait_for,
)

pytestmark = pytest.mark.xdist_group("tests/integration/test_cluster.py")

P3 = {"GAMEAD_QUEUE__REPLICAS": "3", "GAMEAD_QUEUE__PARTITIONS": "3", "GAMEAD_QUEUE__ACK_WAIT": "5",
      "GAMEAD_NATS__REQUEST_TIMEOUT": "2"}
STREAMS = ("GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2")


@pytest.fixture(scope="module")
def p3_stack(nats_cluster: NatsCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An API with three R3 partitions on a clean cluster, no worker yet (each test starts what it needs)."""
    cluster = fresh_cluster(nats_cluster)
    logs = tmp_path_factory.mktemp("p3-stack")
    api, url = start_api(cluster.url, logs, **P3)
    stack: dict[str, Any] = {"cluster": cluster, "url": url, "api": api, "workers": [], "logs": logs}
    yield stack
    for proc in (*stack["workers"], api):
        proc.stop(timeout=10)


def _streams(cluster: NatsCluster) -> dict[str, Any]:
    """Every work stream that exists: name → StreamInfo."""

    async def run() -> dict[str, Any]:
        nc = await nats.connect(cluster.servers)
        try:
            infos = await nc.jetstream(timeout=5).streams_info()
            return {i.config.name: i for i in infos if names.partition_of_stream(i.config.name) is not None}
        finally:
            await nc.close()

    return asyncio.run(run())


def _completed(client: httpx.Client, ids: list[str]) -> dict[str, dict] | None:
    records = {i: client.get(f"/ads/{i}").json() for i in ids}
    return records if all(r.get("status") == "completed" for r in records.values()) else None


def _gamead(cluster: NatsCluster, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run one ``gamead`` command to its end (a refused start ends at once; 60 s bound)."""
    return run_gamead(*args, env=clean_env(GAMEAD_NATS__URL=cluster.url, **env), timeout=60)


def test_an_urgent_ad_behind_a_backlog_spread_over_partitions_is_done_first(p3_stack: dict[str, Any]) -> None:
    cluster, url = p3_stack["cluster"], p3_stack["url"]
    with httpx.Client(base_url=url, timeout=15) as client:
        resp = client.post("/ads/batch", json={"ads": [ad(f"Backlog {i}", 5) for i in range(30)]})
        assert resp.status_code == 200 and resp.json()["accepted"] == 30, resp.text
        low = [r["id"] for r in resp.json()["results"]]
        resp = client.post("/ads", json=ad("Urgent", 1))
        assert resp.status_code == 202, resp.text
        urgent = resp.json()["id"]

        # the backlog is spread over the three partition streams, each replicated on the three nodes
        streams = _streams(cluster)
        assert sorted(streams) == list(STREAMS)
        held = {name: int(info.state.messages) for name, info in streams.items()}
        assert sum(held.values()) == 31 and all(held.values()), held
        assert {len(info.cluster.replicas or []) + 1 for info in streams.values()} == {3}
        # /v1/stats and the level drill-down see every partition
        stats = wait_for(lambda: (s := client.get("/v1/stats").json()["queue"])["pending"] == 31 and s,
                         timeout=15, what="/v1/stats to count the 31 waiting ads of every partition")
        assert [lv["pending"] for lv in stats["levels"]] == [1, 0, 0, 0, 30]
        backlog = {s.labels["priority"]: s.value for f in text_string_to_metric_families(client.get("/metrics").text)
                   if f.name == "gamead_queue_backlog" for s in f.samples}
        assert (backlog["1"], backlog["5"]) == (1.0, 30.0)  # /metrics: the same sampler, every partition
        oldest = client.get("/v1/levels/5/oldest", params={"limit": 100}).json()
        assert oldest["pending"] == 30 and oldest["count"] == 30
        assert {i["stream"] for i in oldest["items"]} == set(STREAMS)
        ages = [i["ageSeconds"] for i in oldest["items"]]
        assert ages == sorted(ages, reverse=True)  # oldest first across partitions

        # a start with another setting on this live queue is refused, in one line, exit code 5
        for args, partitions in ((("worker", "--id", "refused"), "1"), (("serve", "--port", "0"), "2")):
            run = _gamead(cluster, *args, **{**P3, "GAMEAD_QUEUE__PARTITIONS": partitions})
            # one red line (the process's own JSON log lines aside)
            lines = [line for line in run.stderr.splitlines() if line.strip() and not line.startswith("{")]
            assert run.returncode == 5, (args, run.returncode, run.stderr[-2000:])
            assert len(lines) == 1 and f"queue.partitions is {partitions}" in lines[0] and "31 ad(s)" in lines[0]
            assert "Traceback" not in run.stderr + run.stdout
        assert sum(int(i.state.messages) for i in _streams(cluster).values()) == 31  # nothing touched

        # one worker, one slot: the urgent ad goes first, wherever its partition
        p3_stack["workers"].append(start_worker(cluster.url, p3_stack["logs"], worker_id="p3-w1", concurrency=1,
                                                ready=True, **P3))
        records = wait_for(lambda: _completed(client, [urgent, *low]), timeout=90, interval=0.5,
                           what="the 31 ads completed")
    def done(ad_id: str) -> datetime:
        return datetime.fromisoformat(records[ad_id]["completedAt"].replace("Z", "+00:00"))

    assert done(urgent) < min(done(i) for i in low), "the urgent ad was done before every backlog ad"
    assert_doctor_clean(url, timeout=40)


def test_ads_spread_over_three_streams_are_all_processed(p3_stack: dict[str, Any]) -> None:
    cluster, url = p3_stack["cluster"], p3_stack["url"]
    before = {name: int(info.state.last_seq) for name, info in _streams(cluster).items()}
    p3_stack["workers"].append(start_worker(cluster.url, p3_stack["logs"], worker_id="p3-w2", concurrency=8,
                                            ready=True, **P3))
    ids = submit_concurrently(url, [ad(f"Partitioned {i}", 1 + i % 5) for i in range(150)], timeout=15)
    with httpx.Client(base_url=url, timeout=15) as client:
        records = wait_for(lambda: _completed(client, ids), timeout=90, interval=0.5, what="150 ads completed")
    assert len(records) == 150
    streams = _streams(cluster)
    taken = {name: int(info.state.last_seq) - before[name] for name, info in streams.items()}
    assert sum(taken.values()) == 150 and all(n >= 25 for n in taken.values()), taken  # ~50 each
    assert all(int(info.state.messages) == 0 for info in streams.values())
    leaders = {name: info.cluster.leader for name, info in streams.items()}
    assert all(leaders.values()), leaders  # each partition has its own leader (placed by the cluster)
    tracebacks = [line for p in (p3_stack["api"], *p3_stack["workers"]) for line in p.output().splitlines()
                  if "Traceback" in line]
    assert tracebacks == []
    assert_doctor_clean(url, timeout=40)


def test_on_a_drained_queue_the_partitions_change(p3_stack: dict[str, Any]) -> None:
    """The README's procedure: stop the API nodes, let the workers drain the queue, stop them, start once with
    the new setting and ``queue.repartition: true``. That start-up deletes the (empty, sealed) partitions the
    setting no longer has; without ``queue.repartition`` the same start is refused and changes nothing."""
    cluster = p3_stack["cluster"]
    for proc in (p3_stack["api"], *p3_stack["workers"]):
        proc.stop(timeout=10)
    assert all(int(i.state.messages) == 0 for i in _streams(cluster).values())
    stray = _gamead(cluster, "worker", "--id", "stray", GAMEAD_QUEUE__REPLICAS="3")  # drained, but not asked for
    assert stray.returncode == 5 and "queue.repartition: true" in stray.stderr, stray.stderr[-2000:]
    assert sorted(_streams(cluster)) == list(STREAMS)
    one = start_worker(cluster.url, p3_stack["logs"], worker_id="p1-w1", concurrency=1, ready=True,
                       GAMEAD_QUEUE__REPLICAS="3", GAMEAD_QUEUE__PARTITIONS="1", GAMEAD_QUEUE__REPARTITION="true")
    p3_stack["workers"].append(one)
    streams = _streams(cluster)
    assert sorted(streams) == ["GAMEAD_ADS"]
    assert streams["GAMEAD_ADS"].config.metadata.get(names.PARTITIONS_METADATA) == "1"
