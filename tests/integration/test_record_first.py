"""Record first, then the message (issue 14.2, the worker drain target): the un-keyed submit path creates the
``queued`` record (acknowledged) before it publishes the work message with ``Gamead-Record-Revision``, so a
worker's first delivery takes the record from the message and reads nothing from KV. Real nats-server, API
and worker processes; reads are counted on JetStream's own API subjects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import nats
from nats.js.api import DiscardPolicy
from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_core import names
from gamead_core.embedded import EmbeddedNats
from gamead_core.ids import is_ulid_id
from tests.nats_barrier import subscriptions_placed
from tests.support import (
    KvWatch, Proc, SubjectTap, ad, assert_doctor_clean, doctor_report, frozen, start_api, start_worker, wait_for,
    wait_terminal,
)
from tests.waits import until

#: no redelivery by timeout while a test runs: what comes back was handed back, not lost
ENV = {"GAMEAD_QUEUE__ACK_WAIT": "30", "GAMEAD_DOCTOR__SETTLE": "0.3", "GAMEAD_DOCTOR__OVERDUE_AFTER": "0"}


async def _record_ids(js: Any, store: Any) -> list[str]:
    """The ids of the newest 100 ad records (for :func:`_run`)."""
    return [r.id for r in await store.scan(limit=100)]


def _submit(http: httpx.Client, title: str, **headers: str) -> str:
    resp = http.post("/ads", json=ad(title, 3), headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _reads_of(taps: tuple[SubjectTap, SubjectTap], ad_id: str) -> int:
    """Record reads of ``ad_id``: direct gets name the key in their subject, leader reads in their body."""
    direct, leader = taps
    key = f"{names.kv_prefix(names.ADS_BUCKET)}{ad_id}"
    return (sum(1 for s in list(direct.subjects) if s.endswith(key))
            + sum(1 for d in list(leader.messages) if key.encode() in d))


def _run(url: str, action: Callable[[Any, Any], Any]) -> Any:
    """``action(js, store)`` on a connection of the test's own."""
    from gamead_core.store.ads import AdStore

    async def go() -> Any:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            return await action(js, await AdStore.open(nc, js))
        finally:
            await nc.close()

    return asyncio.run(go())


def _work_messages(url: str) -> int:
    async def count(js: Any, _store: Any) -> int:
        return int((await js.stream_info(names.ADS_STREAM)).state.messages)

    return int(_run(url, count))


def test_a_first_delivery_with_the_revision_header_reads_no_record_and_a_keyed_one_does(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """Before: the worker read every ad's record back (a direct get) though the message carried it. Now 8
    fresh un-keyed ads complete with 0 record reads by the worker, each written once by it (``queued`` by the
    API, ``completed`` by the worker); a keyed ad (no header: published before its record) is still read."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    watch = KvWatch(server.url, ">")
    taps = (SubjectTap(server.url, "$JS.API.DIRECT.GET.>"), SubjectTap(server.url, "$JS.API.STREAM.MSG.GET.>"))
    try:
        with httpx.Client(base_url=url, timeout=20) as http:
            plain = [_submit(http, f"Fresh {i}") for i in range(8)]
            keyed = _submit(http, "Keyed", **{"Idempotency-Key": "record-first-keyed"})
            before = {i: _reads_of(taps, i) for i in [*plain, keyed]}  # the keyed submit reads its key itself
            procs.append(start_worker(server.url, tmp_path, worker_id="reader", concurrency=4, **ENV))
            wait_for(lambda: all(any(w["status"] == "completed" for w in watch.of(i)) for i in [*plain, keyed]),
                     timeout=30, what="every ad completed")
            # the taps run on their own connections: a read can reach them after the completion reached the watch
            wait_for(lambda: _reads_of(taps, keyed) > before[keyed], timeout=10,
                     what="the worker's read of the keyed ad's record, seen by the tap")
            worker_reads = {i: _reads_of(taps, i) - before[i] for i in [*plain, keyed]}
            print("record reads by the worker: un-keyed", [worker_reads[i] for i in plain],
                  "keyed", worker_reads[keyed])
            assert [worker_reads[i] for i in plain] == [0] * 8
            assert worker_reads[keyed] >= 1
            assert [[w["status"] for w in watch.of(i)] for i in plain] == [["queued", "completed"]] * 8
            done = [http.get(f"/ads/{i}").json() for i in plain]
            assert all(r["status"] == "completed" and r["attempts"] == 1 and r["analysis"] for r in done)
    finally:
        watch.close()
        for tap in taps:
            tap.close()


def test_a_record_changed_before_the_first_delivery_is_never_overwritten(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """With no worker running, six ads are submitted and then changed behind the message's back: one rewritten
    ``completed`` by hand, one ``dead``, one rewritten as it was (a newer revision), one deleted; and two
    messages are published by hand with a record that was never written, one with a revision header that is
    wrong (999999), one with a malformed header. A worker then completes every live one, and the changed
    records keep their change; every message leaves the work stream."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.store.ads import encode

    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, **ENV)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=20) as http:
        ids = {kind: _submit(http, f"Changed {kind}") for kind in ("completed", "dead", "bumped", "deleted")}
        forged = {"wrong_revision": (new_ad_id(), "999999"), "bad_header": (new_ad_id(), "12x")}

        async def change(js: Any, store: Any) -> None:
            for kind, status in (("completed", AdStatus.COMPLETED), ("dead", AdStatus.DEAD), ("bumped", None)):
                current = await store.get(ids[kind])
                update = {} if status is None else {"status": status, "completed_at": utcnow()}
                await store.update(current.record.model_copy(update=update), current.revision)
            await (await js.key_value(names.ADS_BUCKET)).delete(ids["deleted"])
            for ad_id, header in forged.values():
                record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                                  ad=AdSubmission.model_validate(ad("Forged")))
                await js.publish(names.level_subject(3), encode(record), headers={
                    names.HDR_MSG_ID: ad_id, names.HDR_AD_ID: ad_id, names.HDR_RECORD_REVISION: header})

        _run(server.url, change)
        procs.append(start_worker(server.url, tmp_path, worker_id="late", concurrency=2, **ENV))
        for ad_id in (ids["bumped"], ids["deleted"], *(i for i, _ in forged.values())):
            assert wait_terminal(http, ad_id)["status"] == "completed", ad_id
        wait_for(lambda: _work_messages(server.url) == 0, what="every message acknowledged")
        completed = http.get(f"/ads/{ids['completed']}").json()
        assert completed["status"] == "completed" and "analysis" not in completed  # ours, not the worker's
        dead = http.get(f"/ads/{ids['dead']}").json()
        assert dead["status"] == "dead"


def test_a_refused_submit_leaves_no_record_and_an_orphan_record_is_queued_again_by_the_doctor(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """The work stream takes one message (``queue.max_msgs`` 1): the next single submit and a batch of two
    are 503 ``queue_full`` and leave no record (the API takes back the record it created first). Then a
    record is created exactly as the API does and no message follows (an API that died between the two
    writes): ``gamead doctor`` names it ``no_message``, ``--repair`` queues it again, and it completes."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.store.ads import encode

    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__MAX_MSGS="1", **ENV)
    procs.append(api)
    with httpx.Client(base_url=url, timeout=20) as http:
        first = _submit(http, "The one that fits")
        full = http.post("/ads", json=ad("One too many"))
        assert full.status_code == 503 and full.json()["error"]["code"] == "queue_full", full.text
        batch = http.post("/ads/batch", json={"ads": [ad("Batch 1"), ad("Batch 2")]})
        assert batch.status_code == 503 and batch.json()["error"]["code"] == "queue_full", batch.text

        assert _run(server.url, _record_ids) == [first], "a refused submit left its record behind"
        assert_doctor_clean(url)

        orphan = new_ad_id()

        async def create_only(js: Any, store: Any) -> int:
            record = AdRecord(id=orphan, status=AdStatus.QUEUED, priority=3, submitted_at=utcnow(),
                              ad=AdSubmission.model_validate(ad("Orphan")))
            return int(await store.create(record, encode(record)))

        _run(server.url, create_only)
        report = doctor_report(url)
        assert {f["kind"]: f["sample"] for f in report["findings"]} == {"no_message": [orphan]}, report
        # what the work stream holds (1), not the sum of the doctor's two looks at it (a reviewer saw 200 for 100)
        assert report["read"]["workMessages"] == _work_messages(server.url) == 1, report["read"]
        procs.append(start_worker(server.url, tmp_path, worker_id="drain", concurrency=2, **ENV))
        assert wait_terminal(http, first)["status"] == "completed"  # room in the stream for the repair
        fixed = CliRunner().invoke(app, ["doctor", "--repair", "--yes", "--api", url, "-o", "json"])
        assert fixed.exit_code == 0, fixed.output
        assert json.loads(fixed.stdout)["job"]["counts"]["republished"] == 1, fixed.stdout
        assert wait_terminal(http, orphan)["status"] == "completed"
    assert_doctor_clean(url)


def test_a_refused_submit_whose_record_cannot_be_taken_back_at_once_is_taken_back_once_nats_takes_it(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """CI's fail-over test (``test_cluster.py::…killing_the_stream_leader…``) ended with one ``queued`` record
    without a message (a doctor ``no_message``): a submit whose publish was refused while the records' stream
    failed over too could not delete its record, and the take-back was best effort. Here the work stream is full
    (``queue.max_msgs`` 1) and the records' stream refuses writes to keys it holds (``discard_new_per_subject``):
    the next submit's record is created, its publish refused, and its take-back refused too. Before: that record
    stayed for good (1 record too many, the doctor's ``no_message``). Now it is deleted as soon as the records'
    stream takes writes again; the doctor finds nothing. Its answer is "may still be queued" with its id (503
    ``queue_unavailable``, ``details.adId``), not ``queue_full`` ("NATS took nothing": send it again): should
    the API stop before the take-back lands, the reaper queues the record (review14)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_QUEUE__MAX_MSGS="1", **ENV)
    procs.append(api)

    kept: dict[str, Any] = {}

    async def records_refuse_changes(js: Any, _store: Any, refuse: bool) -> None:
        """The records' stream (history 1) refusing every write to a key it holds (discard new per subject), or
        as it was."""
        config = (await js.stream_info(names.ADS_BUCKET_STREAM)).config
        if refuse:
            kept["discard"] = config.discard
            config.discard, config.discard_new_per_subject = DiscardPolicy.NEW, True
        else:
            config.discard, config.discard_new_per_subject = kept["discard"], False
        await js.update_stream(config)

    with httpx.Client(base_url=url, timeout=20) as http:
        first = _submit(http, "The one that fits")
        _run(server.url, lambda js, store: records_refuse_changes(js, store, True))
        refused = http.post("/ads", json=ad("Refused, and its record stuck for a while"))
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "queue_unavailable", refused.text
        assert is_ulid_id(refused.json()["error"]["details"]["adId"]), refused.text
        assert len(_run(server.url, _record_ids)) == 2, "the take-back was refused: the record is still there"
        _run(server.url, lambda js, store: records_refuse_changes(js, store, False))
        wait_for(lambda: _run(server.url, _record_ids) == [first], timeout=30,
                 what="the refused submit's record taken back once the records' stream takes writes")
    assert _work_messages(server.url) == 1
    assert_doctor_clean(url)


def _stack_to_stall(fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc],
                    tmp_path: Path) -> tuple[EmbeddedNats, str]:
    """A fresh NATS and an API on it whose writes wait 1 s for their acks (for the tests that stop NATS)."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_API__PUBLISH_TIMEOUT="1", **ENV)
    procs.append(api)
    assert server.proc is not None
    return server, url


def test_a_submit_whose_record_create_times_out_leaves_no_record_once_nats_answers_again(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """A reviewer's finding: NATS stopped (SIGSTOP) while clients submitted; every submit was 503 (the record
    create's ack never came), yet once NATS ran again each create landed: thousands of ``queued`` records without
    a message, analysed after ``doctor --repair`` though their clients were told 503. Now a create that times out
    is followed, on the same connection, by a delete marker: after the stall one single submit and a batch of
    three leave no record and nothing on the queue; the doctor finds nothing. Each is answered "may still be
    queued" with its id (503 ``queue_unavailable``, ``details.adId``; in the batch, each ad's own result), never
    "stored nothing, send it again": had this API died before its withdrawal landed, the record's create would be
    settled by the reaper and the ad analysed (an attacker's cluster drill: 450 ads a whole-batch 503 had told the
    client to resend)."""
    server, url = _stack_to_stall(fresh_nats, procs, tmp_path)
    with httpx.Client(base_url=url, timeout=20) as http:
        kept = _submit(http, "Before the stall")
        with frozen(server.proc.pid):  # the batch first: once a write went unanswered, this node knows its store
            # is failing and tries one submit at a time (outage38: the others 503 storage_failing, nothing sent)
            batch = http.post("/ads/batch", json={"ads": [ad("Stalled 1"), ad("Stalled 2"), ad("Stalled 3")]})
            single = http.post("/ads", json=ad("Stalled single"))  # the one tried
        assert single.status_code == 503 and single.json()["error"]["code"] == "queue_unavailable", single.text
        assert is_ulid_id(single.json()["error"]["details"]["adId"]), single.text
        assert batch.status_code == 200 and batch.json()["accepted"] == 0, batch.text
        errors = [r["error"] for r in batch.json()["results"]]
        assert [e["code"] for e in errors] == ["queue_unavailable"] * 3, errors
        assert len({e["details"]["adId"] for e in errors}) == 3, errors

    # the creates and their delete markers land once NATS reads its socket again: only the first ad is left
    wait_for(lambda: _run(server.url, _record_ids) == [kept], timeout=20, what="the stalled submits' records withdrawn")
    assert _work_messages(server.url) == 1
    assert_doctor_clean(server.url)


def test_a_burst_of_batches_503d_in_a_stall_leaves_no_record_once_nats_answers_again(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """A reviewer's finding: 40 batches of 100 ads, all 503 in a 4 s stall, left 3,000 ``queued`` records without
    a message (``gamead doctor`` ``no_message``): the settling of ambiguous creates was a task per write, capped
    at 1,000. Now one task settles them all in rounds: here 12 batches of 100 (1,200 ambiguous creates, past the
    old cap) answered during a stall (each ad "may still be queued", with its id) leave no record once NATS runs
    again, and the doctor finds nothing."""
    from concurrent.futures import ThreadPoolExecutor

    server, url = _stack_to_stall(fresh_nats, procs, tmp_path)
    with httpx.Client(base_url=url, timeout=30) as http:
        kept = _submit(http, "Before the stall")

        def batch(n: int) -> tuple[int, int]:
            body = {"ads": [ad(f"Stalled {n}.{i}") for i in range(100)]}
            with httpx.Client(base_url=url, timeout=30) as own:
                answer = own.post("/ads/batch", json=body)
            maybe = [r for r in answer.json().get("results", [])
                     if r.get("error", {}).get("details", {}).get("adId")] if answer.status_code == 200 else []
            return answer.status_code, len(maybe)

        with frozen(server.proc.pid), ThreadPoolExecutor(12) as pool:
            codes = list(pool.map(batch, range(12)))
    assert codes == [(200, 100)] * 12, codes

    wait_for(lambda: _run(server.url, _record_ids) == [kept], timeout=60, what="1,200 stalled creates withdrawn")
    assert _work_messages(server.url) == 1
    assert_doctor_clean(server.url)


def test_an_ambiguous_publish_is_finished_in_the_background_so_no_record_stays_without_its_message(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """The fail-over test (``test_cluster.py::…killing_the_stream_leader…``) failed 2 times in 4: a submit whose
    publish got no answer while the stream leader died left its record ``queued`` without a message (a doctor
    ``no_message``). Now the publish is finished in the background under the same message id: here a record
    is created as the API does, its publish handed to :class:`Unsettled` twice (the second a repeat of a
    stored one, deduplicated), and the work stream ends with exactly one message for it; the doctor is clean."""
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.store.ads import encode
    from gamead_core.unsettled import Unsettled

    server = fresh_nats()
    ad_id = new_ad_id()

    async def settle(js: Any, store: Any) -> None:
        record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                          ad=AdSubmission.model_validate(ad("Ambiguous", 2)))
        payload = encode(record)
        revision = int(await store.create(record, payload))
        unsettled = Unsettled(js, store, timeout=2.0)
        for _ in range(2):
            unsettled.message_maybe_published(ad_id, 2, payload, revision)
            await until(lambda: not len(unsettled), timeout=30, what="the ambiguous publish settled")

    from gamead_core.queue.topology import ensure_topology
    from gamead_core.config import load_settings

    async def topology(js: Any, _store: Any) -> None:
        await ensure_topology(js, load_settings(None))

    _run(server.url, topology)
    _run(server.url, settle)
    assert _work_messages(server.url) == 1
    assert_doctor_clean(server.url)


def test_a_stream_electing_a_leader_never_makes_the_settling_take_back_a_record_whose_message_is_stored(
    fresh_nats: Callable[[], EmbeddedNats],
) -> None:
    """A reviewer's finding: the background settling took "no responders" (what a work stream answers while it
    elects a leader) for a refusal and deleted the record, though the earlier try, whose ack was lost, had stored
    the message: a message without its record, analysed although its client got 503. Here the message is stored,
    its publish handed to :class:`Unsettled` as ambiguous while no stream listens on its level's subject, then the
    subject is given back. Before: the record was gone (the doctor's ``message_without_record``). Now: the retry is
    answered "duplicate" once the stream listens again; record and message both stay; the doctor finds nothing."""
    from gamead_core.config import load_settings
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.queue.publish import Outgoing, publish_ads
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import encode
    from gamead_core.unsettled import Unsettled

    server = fresh_nats()
    ad_id = new_ad_id()

    async def electing(js: Any, store: Any) -> bool:
        await ensure_topology(js, load_settings(None))
        record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                          ad=AdSubmission.model_validate(ad("Stored, its ack lost", 2)))
        payload = encode(record)
        revision = int(await store.create(record, payload))
        [stored] = await publish_ads(js, [Outgoing(ad_id, 2, payload, revision)], timeout=5)
        assert not isinstance(stored, Exception), stored
        config = (await js.stream_info(names.ADS_STREAM)).config
        subjects = config.subjects
        config.subjects = [names.level_subject(level) for level in names.LEVELS if level != 2]
        await js.update_stream(config)  # level 2's publishes now get "no responders"
        unsettled = Unsettled(js, store, timeout=2.0)
        unsettled.message_maybe_published(ad_id, 2, payload, revision)
        while unsettled._tries.get(ad_id, 0) < 2 and len(unsettled):  # noqa: SLF001 - two rounds answered
            await asyncio.sleep(0.05)
        config.subjects = subjects
        await js.update_stream(config)
        while len(unsettled):
            await asyncio.sleep(0.05)
        try:
            await store.get(ad_id)
        except Exception:  # noqa: BLE001 - NotFound: the finding
            return False
        return True

    assert _run(server.url, electing), "the record of an ad whose message is stored was taken back"
    assert _work_messages(server.url) == 1
    assert_doctor_clean(server.url)


def test_an_ad_whose_publish_got_no_answer_is_named_in_its_503_and_a_batch_of_them_is_not_one_503(
    fresh_nats: Callable[[], EmbeddedNats], procs: list[Proc], tmp_path: Path
) -> None:
    """A reviewer's drill: a batch answered 503 as a whole ("NATS took none of them: retry the whole batch") had
    its 40 ads analysed all the same (their publishes had no answer, and were finished in the background), so a
    client that followed the advice had them analysed twice. Here the work stream stops listening on level 2 and
    a silent subscriber takes its publishes (no ack ever comes): a single submit is 503 ``queue_unavailable``
    naming its ad (``details.adId``), a batch of two is 200 with a result per ad naming each, ``gamead submit
    --count 3`` counts its three apart (not rejected) and, looking their ids up, finds them queued; once the stream
    listens again
    all six complete, as their answers said they might."""
    server = fresh_nats()
    api, url = start_api(server.url, tmp_path, GAMEAD_API__PUBLISH_TIMEOUT="1",
                         GAMEAD_API__TOPOLOGY_CHECK_INTERVAL="3600", **ENV)  # no healing of the changed stream
    procs.append(api)
    procs.append(start_worker(server.url, tmp_path, worker_id="w", concurrency=2, **ENV))
    level_2 = names.level_subject(2)

    subjects: list[str] = []

    async def listen_on_level_2(js: Any, _store: Any, listen: bool) -> None:
        config = (await js.stream_info(names.ADS_STREAM)).config
        if listen:
            config.subjects = subjects
        else:
            subjects.extend(config.subjects)
            config.subjects = [names.level_subject(n) for n in names.LEVELS if n != 2]
        await js.update_stream(config)

    async def silent_subscriber(stop: asyncio.Event, ready: asyncio.Event) -> None:
        nc = await nats.connect(server.url)
        try:
            await nc.subscribe(level_2)  # takes the publishes, answers none: each one times out
            await subscriptions_placed(nc)  # not nc.flush(): its PING can pass the SUB (tests/nats_barrier.py)
            ready.set()
            await stop.wait()
        finally:
            await nc.close()

    async def submit_while_unanswered() -> tuple[httpx.Response, httpx.Response, Any]:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(silent_subscriber(stop, ready))
        await ready.wait()
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                # the batch first: then the node knows its store is failing and tries the single alone (outage38)
                batch = await http.post("/ads/batch", json={"ads": [ad("Unanswered A", 2), ad("Unanswered B", 2)]})
                single = await http.post("/ads", json=ad("Unanswered", 2))
            cli = await asyncio.to_thread(CliRunner().invoke, app, [
                "submit", "--count", "3", "--priority", "2", "--api", url, "-o", "json"])
        finally:
            stop.set()
            await task
        return single, batch, cli

    with httpx.Client(base_url=url, timeout=20) as http:  # running before the stream changes (it checks it at start)
        wait_for(lambda: http.get("/v1/workers", params={"role": "worker"}).json()["count"] == 1, timeout=30,
                 what="the worker running")
    _run(server.url, lambda js, store: listen_on_level_2(js, store, False))
    single, batch, cli = asyncio.run(submit_while_unanswered())
    assert single.status_code == 503, single.text
    error = single.json()["error"]
    assert error["code"] == "queue_unavailable" and "may still be queued" in error["message"], error
    assert batch.status_code == 200, batch.text  # not a 503 that says "retry the whole batch"
    items = [r["error"] for r in batch.json()["results"]]
    assert [i["code"] for i in items] == ["queue_unavailable"] * 2, items
    # the CLI counts them apart, not as rejected (a reviewer's run said "rejected 1,600" of which 800 completed)
    summary = json.loads(cli.stdout)
    # … and, looked up before the summary (attack30c F9), their records are there: "queued (found)", not resent
    assert cli.exit_code == 0 and summary["rejectedByCode"] == {} and summary["queuedFound"] == 3, cli.output
    assert summary["maybeQueued"] == summary["notQueued"] == 0, summary
    ids = [error["details"]["adId"], *(i["details"]["adId"] for i in items), *summary["queuedFoundIds"]]
    _run(server.url, lambda js, store: listen_on_level_2(js, store, True))
    with httpx.Client(base_url=url, timeout=20) as http:
        assert [wait_terminal(http, i, timeout=60)["status"] for i in ids] == ["completed"] * 6
    assert_doctor_clean(url)


def test_a_write_left_after_the_settling_closed_starts_no_round_on_the_closing_connection(
    fresh_nats: Callable[[], EmbeddedNats], caplog: Any,
) -> None:
    """``close()`` is final: a request still in flight when the API stops leaves an ambiguous create after it.
    Before, that started a new settling round (a task left running, talking to a NATS connection being closed);
    now it starts none: the write is counted (the registry entry is left to expire for the reaper) and the record
    is not touched. And it is said whose it is (review: it was counted by the heartbeat's last line, which pointed
    to "the shutdown line before", but none had been logged: nothing was pending at close()): here the reaper
    can reach nothing (``reaper_reach`` 0), so the line says to run ``gamead doctor --repair``."""
    import logging

    caplog.set_level(logging.WARNING, logger="gamead_core.unsettled")
    from gamead_core.ad_ids import new_ad_id
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.store.ads import encode
    from gamead_core.unsettled import Unsettled

    server = fresh_nats()
    ad_id = new_ad_id()

    async def after_close(js: Any, store: Any) -> tuple[list[str], int]:
        from gamead_core.config import load_settings
        from gamead_core.queue.topology import ensure_topology

        await ensure_topology(js, load_settings(None))
        record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                          ad=AdSubmission.model_validate(ad("Late", 2)))
        await store.create(record, encode(record))
        unsettled = Unsettled(js, store, timeout=2.0)
        await unsettled.close()
        unsettled.record_maybe_created(ad_id)  # the in-flight request's create got no answer
        rounds = [t.get_name() for t in asyncio.all_tasks() if t.get_name() == "gamead-unsettled"]
        await asyncio.sleep(0)  # the line is said at the loop's next turn
        return rounds, len(unsettled)

    rounds, left = _run(server.url, after_close)
    assert rounds == [], "a settling round started after close()"
    assert left == 1  # counted: the API leaves its entry to expire for the reaper
    [line] = [r.getMessage() for r in caplog.records if "left unsettled" in r.getMessage()]
    assert line.startswith("1 ambiguous submits left unsettled after shutdown") and "gamead doctor --repair" in line


def test_a_refused_publish_taken_back_keeps_its_age_so_an_old_write_is_left_to_the_doctor(
    fresh_nats: Callable[[], EmbeddedNats], monkeypatch: Any, caplog: Any,
) -> None:
    """A publish left to the settling 100 s before the stop is refused at its next try (the work stream full), and
    its take-back refused too (the records' stream refusing changes): it is still pending at the stop. Before: the
    hand-over from publish to take-back restarted its age at that try, and the shutdown line promised the write to
    the reaper, which could no longer queue it (outside ``queue.duplicate_window``): ``gamead doctor --repair`` was
    never suggested. Now its age runs from the write (its ``api.publish_timeout`` included): the doctor's. So too a
    record create left 29 s before the stop: its write went out up to ``api.publish_timeout`` (2 s) earlier, 31 s."""
    import logging
    from types import SimpleNamespace

    from gamead_core.ad_ids import new_ad_id
    from gamead_core.config import load_settings
    from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
    from gamead_core.queue.topology import ensure_topology
    from gamead_core.store.ads import encode
    from gamead_core.unsettled import Unsettled

    server = fresh_nats()
    ad_id, created = new_ad_id(), new_ad_id()
    clock = [1000.0]  # the settling's monotonic clock, moved by the test (the event loop keeps the real one)
    monkeypatch.setattr("gamead_core.unsettled.time", SimpleNamespace(monotonic=lambda: clock[0]))
    caplog.set_level(logging.WARNING, logger="gamead_core.unsettled")

    async def left_long_ago(js: Any, store: Any) -> None:
        await ensure_topology(js, load_settings(None))
        record = AdRecord(id=ad_id, status=AdStatus.QUEUED, priority=2, submitted_at=utcnow(),
                          ad=AdSubmission.model_validate(ad("Refused late", 2)))
        payload = encode(record)
        revision = int(await store.create(record, payload))
        await store.create(record.model_copy(update={"id": created}), encode(record.model_copy(update={"id": created})))
        work = (await js.stream_info(names.ADS_STREAM)).config
        work.max_msgs, work.discard = 1, DiscardPolicy.NEW  # full once the filler is in: every publish refused
        await js.publish(names.level_subject(1), b"filler", headers={"Nats-Msg-Id": "filler"})
        await js.update_stream(work)
        records = (await js.stream_info(names.ADS_BUCKET_STREAM)).config
        records.discard, records.discard_new_per_subject = DiscardPolicy.NEW, True  # no take-back either
        await js.update_stream(records)
        unsettled = Unsettled(js, store, timeout=2.0, reaper_reach=30.0)
        unsettled.message_maybe_published(ad_id, 2, payload, revision)  # left at 1000
        clock[0] = 1071.0
        unsettled.record_maybe_created(created)  # left 29 s before the stop, its create sent up to 2 s before
        clock[0] = 1100.0  # the publish's next try, refused, comes 100 s after it was left (NATS was away)
        await until(lambda: ad_id in unsettled._withdrawals,  # noqa: SLF001 - handed over to a take-back
                    timeout=30, what="the publish handed over to a take-back")
        await unsettled.close()

    _run(server.url, left_long_ago)
    [line] = [r.getMessage() for r in caplog.records if "left unsettled at shutdown" in r.getMessage()]
    assert "2 ambiguous submits" in line and "2 were written more than 30s ago" in line, line
    assert "gamead doctor --repair" in line, line
