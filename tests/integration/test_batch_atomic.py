"""``POST /ads/batch``'s writes as JetStream atomic batches (issue 14.3; NATS ADR-50, :mod:`gamead_core.batch_writes`)
on a real nats-server (a fresh one per test): one ack per batch per stream instead of one per ad, and every way a
batch can fail answered per ad as the ack-per-ad path answers it: an item that conflicts, a stream without
``allow_atomic``, a full stream, a stalled server (unanswered: settled in the background, nothing analysed).
In-process, the intake's ``api.batch_atomic`` forced on (``auto`` uses it on replicated streams only)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nats
from nats.js.api import DiscardPolicy, StreamConfig

from gamead_core import names
from gamead_core.batch_writes import create_records
from gamead_core.embedded import EmbeddedNats
from gamead_core.errors import Conflict, MaybeQueued, QueueFull, QueueUnavailable
from gamead_core.intake import Intake, Queued
from gamead_core.queue.publish import not_stored
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.atomic import AtomicBatches, atomic_wanted
from gamead_core.store.ads import AdStore
from gamead_core.store.queued_json import queued_records
from tests.support import SubjectTap, ad, fresh_intake, frozen
from tests.waits import until


def _ads(n: int, title: str = "Atomic") -> list[AdSubmission]:
    return [AdSubmission.model_validate(ad(f"{title} {i}", priority=1 + i % 5)) for i in range(n)]


async def _batch_ids(js: Any, stream: str) -> list[str | None]:
    """The ``Nats-Batch-Id`` of every message of ``stream``, in stream order."""
    info = await js.stream_info(stream)
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        out.append((msg.headers or {}).get(names.HDR_BATCH_ID))
    return out


async def _set(js: Any, stream: str, **changes: Any) -> None:
    config: StreamConfig = (await js.stream_info(stream)).config
    for key, value in changes.items():
        setattr(config, key, value)
    await js.update_stream(config)


def test_a_batch_is_acknowledged_once_per_stream(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """40 ads: 80 acks with an ack per ad, 2 as atomic batches (one for the records, one for the messages); the
    ads are queued alike and each stream holds one batch."""
    server = fresh_nats()
    tap = SubjectTap(server.url, "_INBOX.>")  # every reply on this server, among them the intake's publish acks

    async def run(atomic: bool) -> tuple[list[Any], int]:
        async with fresh_intake(server.url) as (js, _store, intake):
            intake.atomic.enabled = atomic
            before = len(tap.messages)
            results = await intake.submit_many(_ads(40))
            nc = await nats.connect(server.url)  # a sentinel reply after the acks: the tap has them all
            await nc.publish("_INBOX.sentinel", b"end")
            await nc.flush()
            await nc.close()
            await until(lambda: b"end" in tap.messages[before:], timeout=10, what="the sentinel")
            return results, sum(1 for m in tap.messages[before:] if m.startswith(b'{"stream":'))  # pub acks

    try:
        per_ad, per_ad_acks = asyncio.run(run(False))
        batched, batched_acks = asyncio.run(run(True))
    finally:
        tap.close()
    print(f"acks for 40 ads: {per_ad_acks} with an ack per ad, {batched_acks} as atomic batches")
    assert all(type(r) is Queued for r in per_ad + batched)
    assert (per_ad_acks, batched_acks) == (80, 2)

    async def batches() -> tuple[list[str | None], list[str | None]]:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        try:
            return await _batch_ids(js, names.ADS_STREAM), await _batch_ids(js, names.ADS_BUCKET_STREAM)
        finally:
            await nc.close()

    for ids in asyncio.run(batches()):  # 40 ads without a batch, then 40 in one
        assert ids[:40] == [None] * 40 and len(set(ids[40:])) == 1 and ids[40] is not None


def test_one_conflicting_record_gets_its_own_error_and_the_others_are_created(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """10 records, one of whose ids holds someone else's record: the batch is refused as a whole (nothing of it
    stored), then each record is created on its own: 9 revisions and one ``Conflict``, the other record kept. An id
    that holds exactly the record sent (a refused batch that stored it after all) is answered with its revision."""
    server = fresh_nats()
    ads = _ads(10)
    ids = [f"01jatomicconflict{i:09d}" for i in range(10)]
    payloads = queued_records(ids, utcnow(), ads)

    async def run() -> tuple[list[Any], int, AdRecord, list[str | None]]:
        async with fresh_intake(server.url) as (js, store, _intake):
            theirs = AdRecord(id=ids[3], status=AdStatus.COMPLETED, priority=1, submitted_at=utcnow(), ad=ads[0])
            await store.create(theirs)
            same = await store.create(AdRecord.model_validate_json(payloads[6]), payloads[6])
            results = await create_records(js, store, AtomicBatches(enabled=True), ids, payloads)
            return results, same, (await store.get(ids[3])).record, await _batch_ids(js, names.ADS_BUCKET_STREAM)

    results, same, kept, batch_ids = asyncio.run(run())
    assert isinstance(results[3], Conflict)
    assert results[6] == same
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 3)
    assert kept.status == AdStatus.COMPLETED and kept.priority == 1
    assert batch_ids == [None] * 10  # the two written by hand, then 8 one by one: nothing of the batch


class _LeaderReadsDenied(EmbeddedNats):
    """A nats-server whose user ``api`` may not ask the records' stream leader for a record (a real permission:
    the read-back gets no answer, as from a leader being elected); user ``admin`` may do everything."""

    def _write_config(self) -> Path:
        conf = super()._write_config()
        denied = f"$JS.API.STREAM.MSG.GET.{names.ADS_BUCKET_STREAM}"
        conf.write_text(conf.read_text() + "authorization {\n  users = [\n    {user: admin, password: admin}\n"
                        f'    {{user: api, password: api, permissions: {{publish: {{allow: ">", deny: ["{denied}"]}}}}}}'
                        "\n  ]\n}\n")
        return conf


def test_a_record_of_a_refused_batch_that_cannot_be_read_back_is_withdrawn_not_answered_conflict(
        tmp_path: Path) -> None:
    """10 records; one id already holds exactly the record sent (the refused batch stored it after all), and the
    read-back that would tell it is ours gets no answer: that ad is ``QueueUnavailable``, an ambiguous create the
    intake withdraws in the background, not ``Conflict`` (kept: a ``queued`` record without a message, reviewer
    V9); the 9 others are created."""
    server = _LeaderReadsDenied(tmp_path / "nats").start()
    host = f"{server.host}:{server.port}"
    ads = _ads(10)
    ids = [f"01jatomicreadback{i:09d}" for i in range(10)]
    payloads = queued_records(ids, utcnow(), ads)

    async def run() -> list[Any]:
        async with fresh_intake(f"nats://admin:admin@{host}") as (_js, store, _intake):
            await store.create(AdRecord.model_validate_json(payloads[6]), payloads[6])
        nc = await nats.connect(f"nats://api:api@{host}", error_cb=_quiet)
        try:
            js = nc.jetstream(timeout=1)
            return await create_records(js, await AdStore.open(nc, js), AtomicBatches(enabled=True), ids, payloads)
        finally:
            await nc.close()

    try:
        results = asyncio.run(run())
    finally:
        server.stop()
    assert type(results[6]) is QueueUnavailable and not not_stored(results[6]), results[6]
    assert all(isinstance(r, int) for i, r in enumerate(results) if i != 6), results


async def _quiet(_exc: Exception) -> None:
    """nats-py's error callback: the permission violation is this test's fault, not news."""


def test_a_stream_without_allow_atomic_is_written_ad_by_ad(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The work stream loses ``allow_atomic`` (a deployment the topology check has not updated): its batch is
    refused (10174), every message is published on its own and every ad queued; that stream is then left alone
    for a while (``RETRY_AFTER``) while the records' bucket keeps taking batches."""
    server = fresh_nats()

    async def run() -> tuple[list[Any], list[str | None], list[str | None], bool, bool]:
        async with fresh_intake(server.url) as (js, _store, intake):
            intake.atomic.enabled = True
            await _set(js, names.ADS_STREAM, allow_atomic=False)
            results = await intake.submit_many(_ads(12))
            return (results, await _batch_ids(js, names.ADS_STREAM), await _batch_ids(js, names.ADS_BUCKET_STREAM),
                    intake.atomic.usable(js, names.ADS_STREAM), intake.atomic.usable(js, names.ADS_BUCKET_STREAM))

    results, messages, records, work_usable, records_usable = asyncio.run(run())
    assert all(type(r) is Queued and not r.duplicate for r in results), results
    assert messages == [None] * 12 and len(set(records)) == 1 and records[0] is not None
    assert (work_usable, records_usable) == (False, True)


def test_a_full_stream_takes_what_fits_and_refuses_each_other_ad(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The work stream holds at most 5 messages and a batch brings 8: all-or-nothing would refuse all 8; the
    refused batch is published ad by ad, so 5 are queued and each of the 3 others gets its own ``QueueFull``,
    their records taken back (none left ``queued`` without a message)."""
    server = fresh_nats()

    async def run() -> tuple[list[Any], int, int]:
        async with fresh_intake(server.url) as (js, store, intake):
            intake.atomic.enabled = True
            await _set(js, names.ADS_STREAM, max_msgs=5)
            results = await intake.submit_many(_ads(8))
            queued = await store.scan(status=AdStatus.QUEUED, limit=100)
            return results, len(queued), int((await js.stream_info(names.ADS_STREAM)).state.messages)

    results, records, messages = asyncio.run(run())
    kinds = [type(r).__name__ for r in results]
    assert (kinds.count("Queued"), kinds.count("QueueFull")) == (5, 3), kinds
    assert all(r.code == "queue_full" for r in results if isinstance(r, QueueFull))
    assert (messages, records) == (5, 5)


def test_an_unanswered_batch_is_withdrawn_and_nothing_is_analysed(fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """The server stalls (SIGSTOP) while a batch of 20 is sent: its records' batch gets no ack within the 0.5 s
    timeout, so every ad is answered "may still be queued" with its id (503 ``queue_unavailable``, ``details.adId``:
    should the API die before its withdrawal lands, the reaper queues the record; no message was published); once the server is
    back the records (committed late, or not) are withdrawn in the background, so none is left ``queued`` and
    no message reaches the work stream: an ad answered 503 is not analysed behind its client's back."""
    server = fresh_nats()
    assert server.proc is not None

    async def run() -> tuple[list[Any], int, int]:
        async with fresh_intake(server.url) as (js, _store, _intake):
            store = AdStore(js._nc, js, timeout=0.5)
            intake = Intake(js, store, publish_timeout=0.5, atomic_batches=True)
            with frozen(server.proc.pid):
                results = await intake.submit_many(_ads(20))
            await until(lambda: len(intake.unsettled) == 0, timeout=30, what="the withdrawals to be settled")
            await intake.unsettled.close()
            queued = await store.scan(status=AdStatus.QUEUED, limit=100)
            return results, len(queued), int((await js.stream_info(names.ADS_STREAM)).state.messages)

    results, records, messages = asyncio.run(run())
    assert all(isinstance(r, MaybeQueued) and r.details == {"adId": r.details["adId"], "keyed": False}
               for r in results), results
    assert len({r.details["adId"] for r in results}) == 20
    assert (records, messages) == (0, 0)


def test_atomic_batches_are_wanted_on_replicated_streams_unless_told() -> None:
    assert [atomic_wanted("auto", r) for r in (1, 3)] == [False, True]
    assert [atomic_wanted("always", 1), atomic_wanted("never", 3)] == [True, False]


def test_a_refused_ad_whose_record_cannot_be_taken_back_yet_may_still_be_queued(
        fresh_nats: Callable[[], EmbeddedNats]) -> None:
    """review14: the work stream refuses the messages (full) and the records' delete markers are refused too (here
    the bucket takes no more writes): each record is left to the background take-back, and should the API stop
    before that lands, the reaper queues it (gamead_core.worker.orphans). Such an ad was answered as refused
    (``queue_full``, "NATS took nothing": the CLI sends it again), now "may still be queued" with its id, in a
    batch (no whole-batch 503) and alone."""
    server = fresh_nats()

    async def run() -> tuple[list[Any], Exception | None]:
        async with fresh_intake(server.url) as (js, _store, intake):
            assert isinstance((await intake.submit_many(_ads(1)))[0], Queued)
            await _set(js, names.ADS_STREAM, max_msgs=1)  # full: every message refused
            # a fresh key takes its record; a key holding one (history 1) takes nothing more: no delete marker
            await _set(js, names.ADS_BUCKET_STREAM, discard=DiscardPolicy.NEW, discard_new_per_subject=True)
            results = await intake.submit_many(_ads(3))
            single: Exception | None = None
            try:
                await intake.submit(AdSubmission.model_validate(ad("Alone")))
            except Exception as exc:  # noqa: BLE001 - the answer under test
                single = exc
            await intake.unsettled.close()
            return results, single

    results, single = asyncio.run(run())
    assert all(isinstance(r, MaybeQueued) for r in results), results
    assert len({r.details["adId"] for r in results}) == 3
    assert isinstance(single, MaybeQueued) and single.details["adId"], single
