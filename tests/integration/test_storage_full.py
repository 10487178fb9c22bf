"""JetStream's storage runs out (issue 9, item 4), seen from both sides at once:

* the API: submits get 503 ``storage_failed`` (never 500), ``/readyz`` says storage is failing within seconds,
  and once writes succeed again it says ready by itself, with no restart of the API;
* the worker: a delivery whose record cannot be written is not an analysis attempt. Before: each such
  delivery used up one of ``max_deliver``; past it the ad sat in the stream past every consumer, with no DLQ
  entry. Now, with ``worker.max_attempts`` 1, none is charged, and once there is room again every acknowledged
  ad completes with 1 attempt. How the worker waits depends on its path (issue 14.2): with a ``processing``
  mark before each analysis (``worker.processing_mark_after: 0``, as every attempt was before) the mark fails,
  so each delivery is handed back uncharged and every ad is delivered more often than its budget; with the
  default fast path the record is only read before the analysis, so each ad is analysed once and its outcome
  waits, lease held, for storage to take it (the worker pulls nothing more meanwhile).

Real store errors, provoked two ways (one test each; each starts one NATS, one API, one worker):

* the server's ``max_file_store`` limit (any machine): JetStream answers 503 "insufficient resources" (10023)
  and writes succeed as soon as space is freed;
* a full disk: the store directory on a 16 MB tmpfs (needs root to mount; skipped otherwise). nats-server
  stops answering writes ("no space left on device") and keeps a stream's write error until it restarts
  (the operator's part, see the README).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
from nats.js.api import DiscardPolicy, StreamConfig

from gamead_core import names
from gamead_core.embedded import EmbeddedNats
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
from tests.tiny_disk import fill_up

FAST = {"GAMEAD_API__STORAGE_PROBE_INTERVAL": "0.5", "GAMEAD_QUEUE__MAX_BYTES": "-1",
        "GAMEAD_RECORDS__MAX_BYTES": "-1", "GAMEAD_JOBS__MAX_BYTES": "-1",  # reserved from the small store
        "GAMEAD_API__PUBLISH_TIMEOUT": "1", "GAMEAD_NATS__REQUEST_TIMEOUT": "1",
        # the worker side: one attempt allowed, deliveries every 2 s while the store is full
        "GAMEAD_WORKER__MAX_ATTEMPTS": "1", "GAMEAD_QUEUE__ACK_WAIT": "2"}
#: the ads accepted before the store fills up: 7, at priority 2 (their consumer's redeliveries are counted)
BEFORE = 7


def js_call(url: str, fn: Callable[[Any], Any]) -> Any:
    async def run() -> Any:
        nc = await nats.connect(url)
        try:
            return await fn(nc.jetstream(timeout=2))
        finally:
            await nc.close()

    return asyncio.run(run())


async def fill_until_refused(js: Any) -> str:
    """Publish 4 KB messages to a stream of the test's own until JetStream refuses one; returns its error."""
    await js.add_stream(StreamConfig(name="FILLER", subjects=["filler"]))
    for _ in range(100_000):
        try:
            await js.publish("filler", b"x" * 4096)
        except nats.js.errors.APIError as exc:
            return f"{exc.err_code} {exc.description}"
    raise AssertionError("the store never filled up")


def readyz(client: httpx.Client) -> dict[str, Any]:
    resp = client.get("/readyz")
    body = resp.json()
    body["httpStatus"] = resp.status_code
    return body  # type: ignore[no-any-return]


def submit_before(client: httpx.Client) -> list[str]:
    """``BEFORE`` ads accepted (202) and recorded while there is room."""
    ids = []
    for i in range(BEFORE):
        resp = client.post("/ads", json=ad(f"Stored Before The Disk Filled {i}", 2))
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["id"])
    wait_for(lambda: all(client.get(f"/ads/{i}").status_code == 200 for i in ids), what="records written")
    return ids


def level_consumer(url: str, level: int) -> Any:
    return js_call(url, lambda js: js.consumer_info(names.ADS_STREAM, names.level_consumer(level)))


def work_messages(url: str) -> int:
    return int(js_call(url, lambda js: js.stream_info(names.ADS_STREAM)).state.messages)


#: the worker's path, per test: ``slow`` marks ``processing`` before every analysis; ``fast`` is the default, and
#: holds its analysed ads while their outcomes wait for storage: kept alive every ack_wait / 3, so a 2 s ack_wait
#: let a ~1.3 s stall of the worker redeliver one (it needs none: 30 s)
PATHS = {"slow": {"GAMEAD_WORKER__PROCESSING_MARK_AFTER": "0"}, "fast": {"GAMEAD_QUEUE__ACK_WAIT": "30"}}


def wait_uncharged(client: httpx.Client, url: str, ids: list[str], timeout: float, path: str) -> None:
    """While the store is full: none of ``ids`` is charged; each is handed back (``slow``) or held, analysed,
    its outcome waiting for storage (``fast``: the worker says so in ``/v1/workers``; an outcome that still fits
    in the last page of the records' file completes)."""
    if path == "slow":
        wait_redelivered_uncharged(client, url, ids, timeout)
        return

    def held_all() -> bool:
        statuses = [client.get(f"/ads/{i}").json()["status"] for i in ids]
        # never a 404, never dead; an outcome that still fitted in the last page of the records' file (tmpfs
        # allocates by 4 KB pages: where the last record ended decides it) completes, the others are held
        assert set(statuses) <= {"queued", "processing", "completed"}, statuses
        held = sum(status != "completed" for status in statuses)
        w1 = next((w for w in client.get("/v1/workers").json()["items"] if w["id"] == "w1"), {})
        # held: in its registry entry's holding; not in flight (inFlight counts analyses running: these ended)
        return held > len(ids) // 2 and len(w1.get("holding") or []) == held and w1.get("inFlight") == 0 and (
            w1.get("lastError") or "").startswith("storage:")

    wait_for(held_all, timeout=timeout, interval=0.2,
             what="every ad analysed and its outcome waiting for storage, held by the worker")
    assert level_consumer(url, 2).num_redelivered == 0  # held, not handed back: nothing was redelivered


def wait_redelivered_uncharged(client: httpx.Client, url: str, ids: list[str], timeout: float) -> None:
    """Every ad of ``ids`` delivered more often than its budget (1) while the store is full, none charged."""

    def redelivered_all() -> bool:
        # never a 404, never dead: queued, or processing when a cold first analysis on a loaded machine ran past
        # worker.processing_mark_after (0.5 s) and its mark still fitted on the disk
        got = [client.get(f"/ads/{i}").json() for i in ids]
        assert all(r.get("status") in ("queued", "processing") for r in got), [(r.get("status"), r.get("error"), r.get("attempts")) for r in got]
        return level_consumer(url, 2).num_redelivered >= len(ids)  # type: ignore[no-any-return]

    wait_for(redelivered_all, timeout=timeout, interval=0.2,
             what="every ad to be delivered more often than its budget while the store is full")


def all_completed_once(client: httpx.Client, ids: list[str], timeout: float) -> None:
    records = [wait_terminal(client, i, timeout=timeout) for i in ids]
    assert [r["status"] for r in records] == ["completed"] * len(ids)
    assert [r["attempts"] for r in records] == [1] * len(ids), "a full store charged an analysis attempt"
    assert client.get("/v1/dlq").json()["total"] == 0


@pytest.mark.parametrize("path", ["slow", "fast"])
def test_storage_at_the_servers_limit_fails_readyz_charges_no_attempt_and_recovers_when_space_is_freed(
    procs: list[Proc], tmp_path: Path, path: str
) -> None:
    server = EmbeddedNats(tmp_path / "nats", max_file="1MB").start()
    try:
        api, url = start_api(server.url, tmp_path, **FAST)
        procs.append(api)
        with httpx.Client(base_url=url, timeout=20) as client:
            ids = submit_before(client)
            assert js_call(server.url, fill_until_refused) == "10023 insufficient resources"

            refused = client.post("/ads", json=ad("While full"))
            assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
            assert refused.json()["error"]["code"] == "storage_failed"
            body = wait_for(lambda: (r := readyz(client))["httpStatus"] == 503 and r, timeout=10,
                            what="/readyz unready")
            assert body["checks"]["storage"].startswith("failing: JetStream could not store the write: "
                                                        "insufficient resources (code 10023)")
            assert body["checks"]["nats"] == "ok"
            assert client.get("/v1/stats").json()["storage"]["state"] == "failing"

            procs.append(start_worker(server.url, tmp_path, worker_id="w1", concurrency=8, **{**FAST, **PATHS[path]}))
            wait_uncharged(client, server.url, ids, timeout=30, path=path)

            js_call(server.url, lambda js: js.delete_stream("FILLER"))  # the operator frees space
            wait_for(lambda: readyz(client)["httpStatus"] == 200, timeout=10, what="/readyz ready by itself")
            after = client.post("/ads", json=ad("After", 2))
            assert after.status_code == 202
            assert readyz(client)["checks"]["storage"] == "ok"
            all_completed_once(client, [*ids, after.json()["id"]], timeout=30)
            assert_doctor_clean(url)
        assert wait_for(lambda: work_messages(server.url) == 0, what="the work stream to empty") is True
    finally:
        for proc in procs:
            proc.stop(timeout=10)
        server.stop()


def test_a_full_disk_fails_readyz_charges_no_attempt_and_after_a_nats_restart_every_ad_completes(
    tiny_disk: Path, procs: list[Proc], tmp_path: Path
) -> None:
    """The disk fills up under a running stack: first with the worker reading (record writes fail; a stream
    that never failed a write still delivers), then with the API writing into the last 64 KB: acknowledged
    ads are kept, and once a publish fails (JetStream keeps that stream's write error until nats-server
    restarts) ``/readyz`` says so: the probe's own small puts may still fit in a block on a full disk."""
    server = EmbeddedNats(tiny_disk / "nats").start()
    try:
        api, url = start_api(server.url, tmp_path, **FAST)
        procs.append(api)
        with httpx.Client(base_url=url, timeout=20) as client:
            ids = submit_before(client)
            ballast = tiny_disk / "ballast"
            fill_up(ballast)
            procs.append(start_worker(server.url, tmp_path, worker_id="w1", concurrency=8, **FAST))
            wait_uncharged(client, server.url, ids, timeout=40, path="fast")

            os.truncate(ballast, max(0, ballast.stat().st_size - 64 * 1024))  # 64 KB free again
            statuses, accepted = [], []
            for i in range(400):  # ~1 KB each: the last 64 KB run out (writes reach the disk a little later)
                resp = client.post("/ads", json=ad(f"Filling {i}"))
                statuses.append(resp.status_code)
                if resp.status_code == 202:
                    accepted.append(resp.json()["id"])
                if resp.status_code == 503:
                    break
            assert statuses[-1] == 503 and set(statuses) <= {202, 503}, statuses
            body = wait_for(lambda: (r := readyz(client))["httpStatus"] == 503 and r, timeout=15,
                            what="/readyz unready on a full disk")
            assert body["checks"]["storage"].startswith("failing: ")
            # no submit since: past the hold (15 s) a drill saw /readyz say ready, storage ok, while every
            # submit still failed; now the write check (a real write) tries, fails, and the node stays unready
            body = wait_for(lambda: "a write check failed too" in (r := readyz(client))["checks"]["storage"] and r,
                            timeout=40, what="the write check to fail past the hold")
            assert body["httpStatus"] == 503, body
            # attack29b F1: gamead doctor said "every invariant holds" here; its own write check goes unanswered
            report = doctor_report(url, settle=0)
            (finding,) = [f for f in report["findings"] if f["kind"] == "store_unwritable"]  # type: ignore[union-attr]
            detail = finding["details"]["file store"]
            assert detail.startswith("JetStream did not store a write in 1 s: NATS did not answer in time (")
            assert "then restart nats-server" in detail and not report["ok"], detail

            ballast.unlink()  # the operator frees space, then restarts nats-server (same data, same port)
            server.stop()
            server.start()
            wait_for(lambda: readyz(client)["httpStatus"] == 200, timeout=30, what="/readyz ready by itself")
            after = client.post("/ads", json=ad("After"))
            assert after.status_code == 202
            # every acknowledged ad was kept through the full disk and the restart, and completes uncharged
            all_completed_once(client, [*ids, *accepted, after.json()["id"]], timeout=60)
            assert_doctor_clean(url)
    finally:
        for proc in procs:
            proc.stop(timeout=10)
        server.stop()


def test_the_write_check_leaves_no_message_and_no_record_behind(tmp_path: Path) -> None:
    """:func:`writes_stored` (what clears a held write failure once its hold has passed) really stores one message
    in the work stream and one in the ad bucket, and purges both at once: no consumer gets a delivery, no
    record appears, and the doctor finds nothing."""
    from gamead_core.config import load_settings
    from gamead_core.queue.write_check import writes_stored
    from gamead_core.queue.topology import ensure_topology

    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        async def check(js: Any) -> tuple[list[int], list[int], list[int]]:
            await ensure_topology(js, load_settings(None))
            streams = (names.ADS_STREAM, names.ADS_BUCKET_STREAM)
            before = [(await js.stream_info(s)).state.last_seq for s in streams]
            await writes_stored(js, 1, 2.0)
            await writes_stored(js, 1, 2.0)
            after = [(await js.stream_info(s)).state for s in streams]
            pending = [(await js.consumer_info(names.ADS_STREAM, names.level_consumer(level))).num_pending
                       for level in names.LEVELS]
            return [x.last_seq - b for x, b in zip(after, before)], [x.messages for x in after], pending

        stored, messages, pending = js_call(server.url, check)
        assert stored == [2, 2], "each write was really stored (a sequence each)"
        assert messages == [0, 0] and pending == [0] * len(names.LEVELS), "and purged: nothing left, nothing due"
        assert_doctor_clean(server.url)
    finally:
        server.stop()


def test_a_write_check_that_fails_purges_every_target_not_only_those_it_reached(tmp_path: Path) -> None:
    """Review: the docs say every check purges leftovers, but a check stopped by a write not stored purged only
    the targets it had reached: a leftover (a publish stored late) in a later partition's stream or in the ad
    bucket stayed. A failing check now purges every target."""
    from gamead_core.config import load_settings
    from gamead_core.errors import StorageFailed
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.queue.write_check import check_targets, writes_stored

    server = EmbeddedNats(tmp_path / "nats", max_file="1MB").start()
    unlimited = {"max_bytes": -1}
    try:
        async def check(js: Any) -> tuple[str, list[int]]:
            await ensure_topology(js, load_settings(None, queue={"partitions": 2, **unlimited}, records=unlimited,
                                                    jobs=unlimited))
            targets = check_targets(2)
            for stream, subject in targets[1:]:  # stored late by an earlier check: partition 1's, the bucket's
                await js.publish(subject, b"", stream=stream)
            await fill_until_refused(js)
            try:
                await writes_stored(js, 2, 2.0)
            except StorageFailed as exc:  # partition 0's write: the check stops there
                why = exc.message
            else:
                raise AssertionError("the write check stored a write in a full store")
            return why, [(await js.stream_info(stream)).state.messages for stream, _ in targets]

        why, left = js_call(server.url, check)
        assert why.endswith(f"({names.ADS_STREAM})"), why
        assert left == [0, 0, 0], "every target's check subject was purged"
    finally:
        server.stop()


def test_a_full_or_missing_partition_stream_answers_the_write_check(tmp_path: Path) -> None:
    """Review: one held timeout needed every partition and the ad bucket to *store* a write, so a full queue
    (``discard: new``: JetStream answers "maximum messages exceeded") or a partition stream nobody answers for kept
    every API node unready for ever. Each is a definite answer, not this node's storage failing: the check returns
    the refusals (what ``/readyz`` then names) and raises nothing; the ad bucket's write is still stored."""
    from gamead_core.config import load_settings
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.queue.write_check import writes_stored

    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        async def check(js: Any) -> tuple[list[str], int]:
            await ensure_topology(js, load_settings(None))
            info = await js.stream_info(names.ADS_STREAM)
            await js.update_stream(info.config.evolve(max_msgs=1, discard=DiscardPolicy.NEW))
            await js.publish(names.level_subject(3), b"{}", stream=names.ADS_STREAM)  # the queue is full now
            before = (await js.stream_info(names.ADS_BUCKET_STREAM)).state.last_seq
            refused = await writes_stored(js, 2, 2.0)  # partition 1's stream: no one answers for it
            return refused, (await js.stream_info(names.ADS_BUCKET_STREAM)).state.last_seq - before

        refused, bucket_writes = js_call(server.url, check)
        assert refused == [f"{names.ADS_STREAM}: the stream is full: maximum messages exceeded",
                           f"{names.work_stream(1)}: no responders: the stream has no leader right now, or is "
                           "missing"], refused
        assert bucket_writes == 1
    finally:
        server.stop()


def test_a_check_message_stored_late_is_never_counted_and_is_purged_after_a_reconnect(tmp_path: Path) -> None:
    """Review: a check's publish buffered through a disconnect can be stored after the check and its purge. Such a
    leftover (made here by publishing it directly) is no ad to ``gamead doctor`` (no "unreadable message"), is in
    no level's backlog, and the probe purges it after the reconnect: one left after the probe's startup purge (so
    only the reconnect's purge can remove it) is gone once :meth:`StorageProbe.reconnected` was called."""
    import functools

    from gamead_core.config import load_settings
    from gamead_core.queue.storage import StorageProbe
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.queue.write_check import CHECK_TOKEN, purge_checks

    subject = f"{names.work_subject_prefix(0)}.{CHECK_TOKEN}"
    server = EmbeddedNats(tmp_path / "nats").start()

    async def left(js: Any) -> list[int]:
        return [(await js.stream_info(s)).state.messages for s in (names.ADS_STREAM, names.ADS_BUCKET_STREAM)]

    async def leave(js: Any) -> list[int]:
        await js.publish(subject, b"", stream=names.ADS_STREAM)
        await js.publish(names.kv_subject(names.ADS_BUCKET, CHECK_TOKEN), b"", stream=names.ADS_BUCKET_STREAM)
        return [(await js.consumer_info(names.ADS_STREAM, names.level_consumer(level))).num_pending
                for level in names.LEVELS]

    async def until(what: Callable[[], Any], deadline: float = 10.0) -> None:
        for _ in range(int(deadline * 10)):
            if await what():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"not within {deadline} s: {what.__doc__}")

    try:
        async def first(js: Any) -> list[int]:
            await ensure_topology(js, load_settings(None))
            return await leave(js)

        assert js_call(server.url, first) == [0] * len(names.LEVELS), "no level's backlog holds it"
        report = doctor_report(server.url)
        assert [n for n in report["notes"] if n["count"]] == [], report["notes"]  # type: ignore[index,union-attr]
        assert report["ok"], report

        async def reconnect(js: Any) -> list[int]:
            probe = StorageProbe(js, "n", interval=30, timeout=2,
                                 purge_checks=functools.partial(purge_checks, js, 1))
            stop = asyncio.Event()
            task = asyncio.create_task(probe.run(stop))
            try:
                async def started() -> bool:
                    """the startup purge and first probe"""
                    return probe.state != "unknown"

                await until(started)
                assert await left(js) == [0, 0], "the startup purge removed the first leftovers"
                await leave(js)  # stored after the startup purge: only the reconnect's purge removes it
                assert await left(js) == [1, 1]
                probe.reconnected()  # what the API's link calls once NATS is back

                async def purged() -> bool:
                    """the leftovers purged after the reconnect"""
                    return await left(js) == [0, 0]

                await until(purged)
                return await left(js)
            finally:
                stop.set()
                await task

        assert js_call(server.url, reconnect) == [0, 0], "purged after the reconnect"
    finally:
        server.stop()


def test_a_check_message_left_in_a_drained_queue_does_not_block_a_repartition(tmp_path: Path) -> None:
    """A leftover write check message counted as an ad held by the queue: ``queue.repartition`` on an otherwise
    drained queue was refused ("holding 1 ad(s)"). It is purged and the change is made."""
    from gamead_core.config import load_settings
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.queue.write_check import check_subject

    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        async def change(js: Any) -> list[str]:
            await ensure_topology(js, load_settings(None))
            await js.publish(check_subject(0), b"", stream=names.ADS_STREAM)  # stored after its check
            await ensure_topology(js, load_settings(None, queue={"partitions": 2, "repartition": True}))
            return sorted([i.config.name async for i in _streams_of(js)])

        async def _streams_of(js: Any) -> Any:
            for info in await js.streams_info():
                if names.partition_of_stream(info.config.name) is not None:
                    yield info

        assert js_call(server.url, change) == [names.work_stream(0), names.work_stream(1)]
    finally:
        server.stop()


def test_a_check_message_is_no_ad_held_to_the_topology_watch_the_start_check_or_the_doctor(tmp_path: Path) -> None:
    """Review: outside the repartition itself a leftover write check message still counted as an ad: the API's
    topology watch and ``gamead doctor`` said the work streams were "holding 1 ad(s)" ("let the workers drain
    the queue": there is nothing to drain) and ``gamead serve``'s start check refused a ``queue.repartition`` of a
    drained queue. None of them counts it now (read-only: nothing is purged by them)."""
    from gamead_core.config import load_settings
    from gamead_core.errors import PartitionsChanged
    from gamead_core.queue.preflight import check_partitions
    from gamead_core.queue.topology import check_topology, ensure_topology
    from gamead_core.queue.write_check import check_subject

    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        async def leave(js: Any) -> None:
            await ensure_topology(js, load_settings(None, queue={"partitions": 2}))
            await js.publish(check_subject(1), b"", stream=names.work_stream(1))  # stored after its check

        js_call(server.url, leave)

        async def watch(js: Any) -> str:
            try:
                await check_topology(js, load_settings(None, queue={"partitions": 1}))
            except PartitionsChanged as exc:
                return exc.message
            raise AssertionError("a change of queue.partitions was not refused")

        said = js_call(server.url, watch)
        assert "holding" not in said and "empty" in said, said
        asyncio.run(check_partitions(load_settings(None, queue={"partitions": 1, "repartition": True}), server.url))
        report = doctor_report(server.url, queue={"partitions": 1})
        texts = [str(f) for f in report["findings"]]  # type: ignore[union-attr]
        assert texts and not any("holding" in t for t in texts), texts
    finally:
        server.stop()
