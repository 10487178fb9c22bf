"""Partitioned work streams (issue 14, item 5) on one nats-server, ``queue.partitions: 3``: the paths that move an
ad after its submit find its partition — the doctor's listing and its repair, the sweep of a stranded message,
a DLQ replay — and every ad ends completed with every invariant holding."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
from rich.console import Console

from gamead_cli.commands.doctor import report_view
from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.embedded import EmbeddedNats
from gamead_core.queue.partitions import partition_of
from tests.support import (
    Proc,
    ad,
    assert_doctor_clean,
    doctor_report,
    start_api,
    start_worker,
    wait_for,
    wait_terminal,
)

P3 = {"GAMEAD_QUEUE__PARTITIONS": "3", "GAMEAD_QUEUE__ACK_WAIT": "3", "GAMEAD_QUEUE__IDLE_POLL": "0.1",
      "GAMEAD_JOBS__FOLLOW_TIMEOUT": "20"}
DOOMED = {"GAMEAD_WORKER__FAULTS__RATE": "1", "GAMEAD_WORKER__FAULTS__MODE": "permanent",
          "GAMEAD_WORKER__FAULTS__MATCH": "^Doomed"}
SETTINGS = GameadSettings.model_validate({"queue": {"partitions": 3}})


@pytest.fixture(scope="module")
def p3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("p3")
    server = EmbeddedNats(root / "nats").start()
    api, url = start_api(server.url, root, **P3)
    procs: list[Proc] = [api]
    with httpx.Client(base_url=url, timeout=30) as http:
        yield {"nats": server, "url": url, "http": http, "logs": root, "procs": procs}
    for proc in reversed(procs):
        proc.stop(timeout=10)
    server.stop()


def _submit(http: httpx.Client, title: str, priority: int) -> str:
    resp = http.post("/ads", json=ad(title, priority))
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


async def _messages(js: Any, partition: int) -> dict[str, int]:
    """Ad id → stream sequence of every message in ``partition``'s work stream."""
    out: dict[str, int] = {}
    seq = 0
    while True:
        try:
            raw = await js.get_msg(names.work_stream(partition), seq=seq + 1, subject=names.work_wildcard(partition),
                                   next=True)
        except nats.js.errors.NotFoundError:
            return out
        seq = raw.seq
        out[(raw.headers or {})[names.HDR_AD_ID]] = raw.seq


def _submit_covering(http: httpx.Client, title: str, priority: Any, *, each: int) -> list[str]:
    """Submit ads until every partition has at least ``each`` of them (ids are random: no test depends on luck)."""
    ids: list[str] = []
    while min(sum(1 for i in ids if partition_of(i, 3) == p) for p in range(3)) < each:
        assert len(ids) < 100, "ids never cover the three partitions"
        ids.append(_submit(http, f"{title} {len(ids)}", priority(len(ids)) if callable(priority) else priority))
    return ids


def _job_done(http: httpx.Client, job_id: str) -> dict[str, Any] | None:
    job = http.get(f"/v1/jobs/{job_id}").json()
    return job if job["state"] in ("succeeded", "failed", "cancelled", "interrupted") else None


def test_the_doctor_and_the_sweep_act_on_each_ads_own_partition(p3: dict[str, Any]) -> None:
    http = p3["http"]
    ids = _submit_covering(http, "Partitioned", 4, each=2)
    by_partition = {p: [i for i in ids if partition_of(i, 3) == p] for p in range(3)}
    lost, stuck = by_partition[2][0], by_partition[1]

    async def lose_one() -> None:
        nc = await nats.connect(p3["nats"].url)
        try:
            js = nc.jetstream()
            held = {p: await _messages(js, p) for p in range(3)}
            assert {p: sorted(h) for p, h in held.items()} == {p: sorted(a) for p, a in by_partition.items()}
            await js.delete_msg(names.work_stream(2), held[2][lost])  # its record says queued: "no message"
        finally:
            await nc.close()

    asyncio.run(lose_one())
    report = doctor_report(p3["url"])
    found = {f["kind"]: f for f in report["findings"] if f["count"]}  # type: ignore[union-attr]
    assert set(found) == {"no_message"} and found["no_message"]["sample"] == [lost], found
    # the reviewer's figure: with queue.partitions 3 the report said "the work stream"; it names the three read
    assert report["read"]["workStreams"] == ["GAMEAD_ADS", "GAMEAD_ADS_1", "GAMEAD_ADS_2"]  # type: ignore[index]
    shown = io.StringIO()
    Console(file=shown, width=120, no_color=True).print(report_view(report))  # type: ignore[arg-type]
    said = " ".join(shown.getvalue().split())  # as read, wherever the 120 columns folded the read line
    assert "messages in 3 work streams (GAMEAD_ADS, GAMEAD_ADS_1, GAMEAD_ADS_2)" in said
    assert "the work stream" not in said and "its work stream" in said
    resp = http.post("/v1/doctor/repair", json={})
    assert resp.status_code == 202, resp.text
    job = wait_for(lambda: _job_done(http, resp.json()["id"]), timeout=30, what="the repair job")
    assert job["state"] == "succeeded" and job["counts"]["republished"] == 1, job

    async def strand_and_sweep() -> tuple[dict[str, int], int, int]:
        """Partition 1's consumer of level 4 gives up on its ads (``max_deliver`` 1, as an older gamead
        configured): the sweep finds them there and queues them again in partition 1."""
        from gamead_core.queue.dlq import DeadLetters
        from gamead_core.queue.topology import consumer_config, ensure_topology
        from gamead_core.store.ads import AdStore
        from gamead_core.worker.mover import stranded, sweep

        nc = await nats.connect(p3["nats"].url)
        try:
            js = nc.jetstream()
            repaired = await _messages(js, 2)
            old = consumer_config(4, SETTINGS.queue, 1)
            old.max_deliver, old.ack_wait = 1, 1.0
            await js.add_consumer(names.work_stream(1), old)
            sub = await js.pull_subscribe_bind(names.level_consumer(4, 1), names.work_stream(1))
            assert len(await sub.fetch(len(stuck), timeout=5)) == len(stuck)  # delivered once, never acked
            found: list[int] = []
            for _ in range(100):  # JetStream gives up at its next look at the pending list
                if len(found := await stranded(js, 4, partition=1)) == len(stuck):
                    break
                await asyncio.sleep(0.1)
            report = await sweep(js, await AdStore.open(nc, js), DeadLetters(js), SETTINGS)
            await ensure_topology(js, SETTINGS)  # the consumer back to gamead's config
            return repaired, len(found), report.requeued
        finally:
            await nc.close()

    repaired, found_stuck, requeued = asyncio.run(strand_and_sweep())
    assert lost in repaired  # the repair re-published it into its own partition
    assert (found_stuck, requeued) == (len(stuck), len(stuck))

    p3["procs"].append(start_worker(p3["nats"].url, p3["logs"], worker_id="p3-clean", concurrency=4, ready=True,
                                    **P3))
    records = [wait_terminal(http, i, timeout=30) for i in ids]
    assert [r["status"] for r in records] == ["completed"] * len(ids)
    assert_doctor_clean(p3["url"], timeout=30)


def test_a_replayed_ad_goes_back_to_its_partition_and_completes(p3: dict[str, Any]) -> None:
    http = p3["http"]
    for proc in p3["procs"][1:]:
        proc.stop(timeout=10)
    doomed = start_worker(p3["nats"].url, p3["logs"], worker_id="p3-doomed", concurrency=4, ready=True,
                          **P3, **DOOMED)
    p3["procs"].append(doomed)
    ids = _submit_covering(http, "Doomed", lambda i: 1 + i % 5, each=2)
    assert [wait_terminal(http, i, timeout=30)["status"] for i in ids] == ["dead"] * len(ids)
    doomed.stop(timeout=10)

    p3["procs"].append(start_worker(p3["nats"].url, p3["logs"], worker_id="p3-healed", concurrency=4, ready=True,
                                    **P3))
    resp = http.post("/v1/dlq/replay", json={"all": True})
    assert resp.status_code == 202, resp.text
    job = wait_for(lambda: _job_done(http, resp.json()["id"]), timeout=40, what="the replay job")
    assert job["state"] == "succeeded" and job["counts"]["replayed"] == len(ids), job
    assert [wait_terminal(http, i, timeout=30)["status"] for i in ids] == ["completed"] * len(ids)
    assert http.get("/v1/dlq").json()["count"] == 0
    assert_doctor_clean(p3["url"], timeout=30)
