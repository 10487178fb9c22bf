"""gamead on a real three-node JetStream cluster with R3 streams and buckets (``queue.replicas: 3``).

* The record-write race (issue 9, item 6): the API's un-awaited record create and the worker's read of it meet
  on different replicas; a direct get answered by a replica that is behind used to raise ``NotFound`` in the
  worker for 1.3-1.8 % of ads, which then waited a full ``ack_wait``. Now: 0 ads redelivered, 0 tracebacks.
* Killing the stream leader under load: 0 acknowledged ads lost, 0 worker tracebacks, and clients get only
  202 or 503 (never a 500) while the cluster fails over. The records' stream is led by the same node, so it
  fails over at the same moment: a submit refused by the work stream could then not take its record back, and
  the doctor found 1-4 records without a message after 5 of 6 drills (CI met it once with the leaders apart).
  Now such a take-back is retried until answered: the doctor finds nothing. The 503s say ``queue_unavailable``
  (retry), not ``topology_missing`` ("the work stream does not exist … run gamead doctor --repair", 1,682 of
  1,686 503s in one drill before): every stream exists, none has a leader for a few seconds. One of the four
  clients sends batches of 20 (``POST /ads/batch``: atomic batches on R3, NATS ADR-50): every ad a batch
  answered ``queued`` completes too, and its failed items carry the same codes.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js import JetStreamContext
from ulid import ULID

from gamead_core import names
from gamead_core.errors import Conflict, NotFound, QueueUnavailable
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.store.ads import AdStore
from tests.cluster import NatsCluster, fresh_cluster
from tests.nats_filter import PublishFilter
from tests.support import (
    SAMPLE_AD,
    Proc,
    ad,
    assert_doctor_clean,
    start_api,
    start_worker,
    submit_concurrently,
    wait_for,
)

#: ack_wait 15 s: held ads live on keep-alives every ack_wait / 3, and a worker stalled ~1.7 s on a loaded machine
#: (5 s) had one redelivered, which the replica test counts; the kill test's 60 s still covers a redelivery
R3 = {"GAMEAD_QUEUE__REPLICAS": "3", "GAMEAD_QUEUE__ACK_WAIT": "15", "GAMEAD_NATS__REQUEST_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def r3_stack(nats_cluster: NatsCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An API and two workers (8 slots each) on the cluster, every stream and bucket R3; shared by this module."""
    cluster = fresh_cluster(nats_cluster)
    logs = tmp_path_factory.mktemp("r3-stack")
    api, url = start_api(cluster.url, logs, **R3)
    workers = [start_worker(cluster.url, logs, worker_id=f"w{i}", concurrency=8, **R3) for i in (1, 2)]
    with httpx.Client(base_url=url, timeout=10) as client:
        wait_for(lambda: client.get("/v1/workers", params={"role": "worker"}).json()["count"] == 2, timeout=30,
                 what="both workers running")
    yield {"cluster": cluster, "url": url, "api": api, "workers": workers}
    for proc in (*workers, api):
        proc.stop(timeout=10)


def _records(client: httpx.Client, ids: list[str]) -> dict[str, dict]:
    return {i: client.get(f"/ads/{i}").json() for i in ids}


def _all_completed(client: httpx.Client, ids: list[str]) -> dict[str, dict] | None:
    records = _records(client, ids)
    return records if all(r.get("status") == "completed" for r in records.values()) else None


def _tracebacks(*procs: Proc) -> list[str]:
    return [line for p in procs for line in p.output().splitlines()
            if "Traceback" in line or "unexpected error" in line]


def _stream_leader(servers: list[str], stream: str = names.ADS_STREAM) -> str:
    async def run() -> str:
        nc = await nats.connect(servers)
        try:
            info = await nc.jetstream(timeout=5).stream_info(stream)
            return str(info.cluster.leader)  # type: ignore[union-attr]
        finally:
            await nc.close()

    return asyncio.run(run())


def _move_leader(servers: list[str], stream: str, to: str) -> None:
    """Make node ``to`` the leader of ``stream`` (a leader step-down naming it preferred, nats-server 2.11+)."""
    async def step_down() -> None:
        nc = await nats.connect(servers)
        try:
            await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}",
                             json.dumps({"placement": {"preferred": to}}).encode(), timeout=5)
        finally:
            await nc.close()

    def moved() -> bool:
        if _stream_leader(servers, stream) == to:
            return True
        asyncio.run(step_down())
        return False

    wait_for(moved, timeout=30, interval=0.5, what=f"{stream}'s leader moved to {to}")


#: records each writer → reader pair writes (load57: 200 a pair, ~6,000 round trips, outran 120 s at load 35-52 in
#: both runs; at 1-2 % of reads missed before the fix, 600 reads still miss several)
PER_PAIR = 100


def test_a_record_written_through_one_node_is_read_through_every_other(r3_stack: dict[str, Any]) -> None:
    """The store level of the race: direct gets are answered by the local replica, which may not have applied
    a write that the leader has already acknowledged (measured here: up to 2 % of reads from the node that is
    furthest behind). Every read through the store must still find the record.

    The six writer → reader pairs run at once, each its :data:`PER_PAIR` records in turn (write, read, create again,
    read): one pair after another, their ~6,000 round trips through the cluster took 50 s at load 19 (now 16-21 s at
    load 25) and outran pytest's 120 s at load 35-42 (722 of 1,200 records written; the stack in a pair's expected
    Conflict)."""
    submission = AdSubmission.model_validate(SAMPLE_AD)

    async def run() -> tuple[int, int, int]:
        ncs = [await nats.connect(n.url) for n in r3_stack["cluster"].nodes]
        jss = [nc.jetstream(timeout=30) for nc in ncs]  # load57: 5 s ran out at load 35-52 (QueueUnavailable)
        made: list[str] = []
        counts = Counter[str]()
        try:
            stores = [await AdStore.open(nc, js) for nc, js in zip(ncs, jss)]

            async def pair(writer: AdStore, reader: AdStore) -> None:
                for _ in range(PER_PAIR):
                    record = AdRecord(id=str(ULID()).lower(), status=AdStatus.QUEUED, priority=3,
                                      submitted_at=utcnow(), ad=submission)
                    await _create_noted(writer, record, made)
                    counts["reads"] += 1
                    try:
                        await reader.get(record.id)
                    except NotFound:
                        counts["misses"] += 1
                    try:  # the worker's path when it meets a record it could not read: create, then read
                        await reader.create(record)
                    except Conflict:
                        try:
                            await reader.get(record.id)
                        except NotFound:
                            counts["unseen"] += 1

            async with asyncio.TaskGroup() as pairs:  # one failing ends the others (before the purge below)
                for w, r in ((w, r) for w in range(3) for r in range(3) if w != r):
                    pairs.create_task(pair(stores[w], stores[r]))
            return counts["reads"], counts["misses"], counts["unseen"]
        finally:
            # these are records of ads never published (queued, no message): test data that breaks the service's
            # invariants, so it goes, however this test ends (gamead doctor checks the shared stack in the next
            # tests; flake43: this test cut by pytest's 120 s timeout on a loaded machine left 1,188 of them, and
            # the next two tests of the module failed on doctor's no_message 1188)
            try:
                await _purge_records(jss[0], made)
            finally:
                for nc in ncs:
                    await nc.close()

    reads, misses, unseen = asyncio.run(run())
    assert (misses, unseen) == (0, 0), f"{misses} of {reads} reads missed; {unseen} records unseen after a Conflict"


async def _create_noted(store: AdStore, record: AdRecord, made: list[str]) -> None:
    """Create ``record`` through ``store``, its id noted in ``made`` (the ids :func:`_purge_records` takes away)
    *before* the write: a create whose ack never comes (a timeout at load) or whose task is cancelled with it in
    flight (a pair failing ends the others) may be stored all the same (orphan57)."""
    made.append(record.id)
    await store.create(record)


async def _purge_records(js: JetStreamContext, ad_ids: list[str], timeout: float = 30.0) -> None:
    """Purge the records of ``ad_ids`` from the records' stream until it holds none of them, within ``timeout`` s:
    a create sent before the purge may land after it (another connection, another route); a purge or a look
    that fails at load is tried again. Raises AssertionError naming how many are left at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    left = list(ad_ids)
    while left:
        for start in range(0, len(left), 100):
            await asyncio.gather(*(js.purge_stream(names.ADS_BUCKET_STREAM,
                                                   subject=names.kv_subject(names.ADS_BUCKET, ad_id))
                                   for ad_id in left[start:start + 100]), return_exceptions=True)
        try:
            info = await js.stream_info(names.ADS_BUCKET_STREAM,
                                        subjects_filter=names.kv_subject(names.ADS_BUCKET, ">"))
        except (nats.errors.TimeoutError, nats.js.errors.APIError):
            pass  # not looked at: all of them are purged again
        else:
            kept = set(info.state.subjects or {})
            left = [ad_id for ad_id in left if names.kv_subject(names.ADS_BUCKET, ad_id) in kept]
        if left and loop.time() > deadline:
            raise AssertionError(f"{len(left)} records of this test still stored {timeout:g}s after their purge")
        if left:
            await asyncio.sleep(0.2)


def test_a_record_whose_create_went_unanswered_is_purged_too(r3_stack: dict[str, Any]) -> None:
    """The clean-up of the replica test above at the fault a loaded run met (fc1, load 35-50): a create whose ack
    never came raised ``QueueUnavailable`` and was stored all the same. Its id was noted after the write, so it
    was never purged: a ``queued`` record without a message (not the API's: no ``Gamead-Origin``, nothing settles
    it), and the module's next two tests failed on doctor's ``no_message`` for it (> 80 s). Here the ack of one
    create is lost on its way (a proxy); the record must be gone after the clean-up (before: 1 of 1 left)."""
    node = r3_stack["cluster"].nodes[0]
    proxy = PublishFilter(("127.0.0.1", node.port)).start()
    record = AdRecord(id=str(ULID()).lower(), status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                      ad=AdSubmission.model_validate(SAMPLE_AD))
    subject = names.kv_subject(names.ADS_BUCKET, record.id)

    async def run() -> int:
        nc, plain = await nats.connect(proxy.url), await nats.connect(node.url)
        js = plain.jetstream(timeout=5)
        made: list[str] = []
        try:
            store = await AdStore.open(nc, nc.jetstream(timeout=5))
            proxy.lose_deliveries("_INBOX.")  # the create's ack: stored by the stream, never seen by the store
            with pytest.raises(QueueUnavailable):
                await _create_noted(store, record, made)
            await js.get_last_msg(names.ADS_BUCKET_STREAM, subject)  # it was stored (raises if not)
        finally:
            await _purge_records(js, made)
            await nc.close()
        try:
            await js.get_last_msg(names.ADS_BUCKET_STREAM, subject)
        except nats.js.errors.NotFoundError:
            return 0
        finally:
            await plain.close()
        return 1

    try:
        assert asyncio.run(run()) == 0, "the record whose create went unanswered is still stored after the clean-up"
    finally:
        proxy.stop()


def test_no_ad_waits_for_a_replica_that_is_behind(r3_stack: dict[str, Any]) -> None:
    url, workers = r3_stack["url"], r3_stack["workers"]
    ids = submit_concurrently(url, [ad(f"Cluster ad {i}", 1 + i % 5) for i in range(300)])
    with httpx.Client(base_url=url, timeout=10) as client:
        records = wait_for(lambda: _all_completed(client, ids), timeout=60, interval=0.5,
                           what="all 300 ads completed")
    redelivered = [i for i, r in records.items() if r["attempts"] != 1]
    assert redelivered == [], f"{len(redelivered)} of 300 ads needed a redelivery (was 1.3-1.8 %)"
    assert _tracebacks(*workers) == []
    assert_doctor_clean(url)


def test_killing_the_stream_leader_under_load_loses_nothing(r3_stack: dict[str, Any]) -> None:
    cluster, url, api, workers = r3_stack["cluster"], r3_stack["url"], r3_stack["api"], r3_stack["workers"]
    statuses: Counter[int] = Counter()
    codes: Counter[str] = Counter()  #: of the 503s
    accepted: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(n: int) -> None:
        with httpx.Client(base_url=url, timeout=15) as client:
            i = 0
            while not stop.is_set():
                if n == 0:  # batches of 20: atomic batches on R3 (api.batch_atomic auto), one ack per stream
                    batch_load(client, i)
                    i += 1
                    continue
                resp = client.post("/ads", json=ad(f"Load {n}-{i}", 1 + i % 5))
                with lock:
                    statuses[resp.status_code] += 1
                    if resp.status_code == 503:
                        codes[resp.json()["error"]["code"]] += 1
                    if resp.status_code == 202:
                        accepted.append(str(resp.json()["id"]))
                i += 1

    batched: list[str] = []  #: ads of POST /ads/batch answered queued (among ``accepted``)

    def batch_load(client: httpx.Client, i: int) -> None:
        resp = client.post("/ads/batch", json={"ads": [ad(f"Batch {i}-{k}", 1 + k % 5) for k in range(20)]})
        with lock:
            statuses[resp.status_code] += 1
            if resp.status_code == 503:
                codes[resp.json()["error"]["code"]] += 1
            if resp.status_code == 200:
                for item in resp.json()["results"]:
                    if "error" in item:
                        codes[item["error"]["code"]] += 1
                    else:
                        accepted.append(str(item["id"]))
                        batched.append(str(item["id"]))

    threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(accepted) >= 60, timeout=30, what="60 ads accepted before the kill")
        leader = cluster.node_named(_stream_leader(cluster.servers))
        # the records' stream fails over at the same moment: what CI once met (one record without its message)
        _move_leader(cluster.servers, names.ADS_BUCKET_STREAM, leader.name)
        leader.kill()
        before = len(accepted)
        wait_for(lambda: len(accepted) >= before + 60, timeout=40, interval=0.2,
                 what="60 more ads accepted after the fail-over")
    finally:
        stop.set()
        for t in threads:
            t.join()
    with httpx.Client(base_url=url, timeout=10) as client:
        records = wait_for(lambda: _all_completed(client, accepted), timeout=60, interval=1.0,
                           what=f"all {len(accepted)} acknowledged ads completed")
    assert len(records) == len(accepted), "0 acknowledged ads lost"
    assert batched, "batched ads were queued too"
    assert set(statuses) <= {200, 202, 503}, f"only 200 (batches), 202 and 503 while failing over, got {dict(statuses)}"
    # a stream electing its leader is not a missing one (was 1,682 of 1,686 503s: "does not exist … run doctor")
    assert codes["topology_missing"] == 0, f"503 codes while failing over: {dict(codes)}"
    assert _tracebacks(api, *workers) == []
    cluster.start_node(leader)  # the session's cluster is whole again for later tests
    assert_doctor_clean(url, timeout=40)


def test_a_cluster_whose_picked_route_port_another_process_took_starts_on_new_ports(tmp_path: Path) -> None:
    """The ports of a test cluster are picked when it is built; one taken before its node binds it (here a listener
    of this test holds node 2's route port; nats-server then listens for clients and exits on the route) makes
    the harness pick every node's ports again, not leave a node dead under the tests."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        held = taken.getsockname()[1]
        cluster = NatsCluster(tmp_path)
        cluster.nodes[1].route_port = held
        try:
            cluster.start()
            assert held not in {port for node in cluster.nodes for port in node.ports}
            assert all(node.alive() for node in cluster.nodes)
            assert f"127.0.0.1:{held}: bind: address already in use" in (
                tmp_path / "n2" / "nats-server.log").read_text()
        finally:
            cluster.stop()
