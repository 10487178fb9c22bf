"""An outcome whose write is a no-op on a lagging replica's copy of the record, or is not ours to write, never leaves
the delivery to wait a whole ``queue.ack_wait`` unsaid (attack40b F2).

F2: on an R3 cluster a replayed ad (record ``queued`` again at the leader) was analysed, failed for good, and its
dead-lettering read a replica that had not applied the replay yet: it still said ``dead``, so ``AdStore.mutate``'s
"leave it as it is" made the dead-lettering a no-op, its DLQ entry was taken back, and the message was neither
acknowledged nor handed back nor logged; it came back 30.5 s later on another worker. The same stale ``dead`` made a
shutdown's hand-back acknowledge the message (the ad lost, F1's kind).

A replica's lag is not reproducible on demand (measured here: 0 to 15 of 300 direct gets right after a write on a
3-node cluster), so the lagging replica is a real second KV bucket holding the ad's record as it was before the
replay, through which the worker's store makes its direct (any-replica) reads; the stream leader's copy is the
bucket itself. Real nats-server, a real delivery, the worker's own Settler."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import KeyValueConfig

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import Conflict
from gamead_core.models import AdError, AdRecord, AdStatus, utcnow
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.topology import ensure_topology
from gamead_core.store.ads import AdStore, Versioned, encode
from gamead_core.worker.budget import delivery_id
from gamead_core.worker.counters import WorkerStats
from gamead_core.worker.give_back import give_back
from gamead_core.worker.handle import AdHandler
from gamead_core.worker.hooks import Failure, Hooks
from gamead_core.worker.settle import Settler
from gamead_core.worker.shield import Shield
from gamead_core.worker.solo import SoloGate
from gamead_core.worker.storage_pause import StoragePause
from tests.support import queue_ad

LAG = "gamead_lag"  #: the bucket standing in for a replica that has not applied the replay yet
BACK_WITHIN = 8.0  #: seconds a handed-back delivery must be back in (queue.ack_wait is 30 s; nak delay ≤ 1 s)


async def _one_queued(nc: Any, title: str) -> tuple[Any, AdStore, AdRecord, int]:
    """On ``nc``: the topology made, the ad store and one ad ``title`` queued (its record and revision)."""
    js = nc.jetstream(timeout=5)
    await ensure_topology(js, GameadSettings())
    store = await AdStore.open(nc, js)
    record, revision = await queue_ad(store, js, title)
    return js, store, record, revision


async def _run(url: str, case: str) -> dict[str, Any]:
    settings = GameadSettings()
    nc = await nats.connect(url)
    try:
        js, leader_store, record, revision = await _one_queued(nc, "Replayed")
        dead = record.model_copy(update={"status": AdStatus.DEAD, "attempts": 1, "completed_at": utcnow(),
                                         "error": AdError(error_class="PermanentError", message="before the replay",
                                                          retryable=False, at=utcnow())})
        if case == "not ours":  # a claim of an earlier delivery landed after ours read the record: nobody settles it
            record_now = record.model_copy(update={"status": AdStatus.PROCESSING, "delivery": "0.9", "attempts": 1})
        else:  # the replay's write: queued again, as the stream leader has it (the lagging copy still says dead)
            record_now = record.model_copy(update={"replays": 1, "replayed_at": utcnow()})
        written = await leader_store.update(record_now, revision)
        read = revision if case == "not ours" else written  #: the revision the worker's attempt read (message's)
        lag = await js.create_key_value(KeyValueConfig(bucket=LAG, history=1, direct=True))
        await lag.put(record.id, encode(dead if case != "not ours" else record))
        store = AdStore(nc, js, kv=await js.key_value(LAG), final_ttl=leader_store.final_ttl)

        sub = await js.pull_subscribe_bind(names.level_consumer(3), names.ADS_STREAM)
        msg = (await sub.fetch(1, timeout=5))[0]
        stats = WorkerStats()
        settle = Settler(store, DeadLetters(js), settings.worker, worker_id="lagged", stats=stats,
                         pause=StoragePause(stats), shielded=Shield(), ack_wait=settings.queue.ack_wait)
        delivery = delivery_id(msg.metadata.sequence.stream, 1)
        current = Versioned(settle.started(record, delivery), read)
        if case == "hand-back":
            await give_back(store, stats, msg, record.id, delivery, ack_wait=settings.queue.ack_wait)
        else:  # the analysis failed for good: dead-letter (F2's path); "not ours": a retry not ours to write
            failure = Failure("PermanentError", "injected", retryable=case == "not ours", delay=0.1)
            await asyncio.wait_for(settle.fail(msg, current, failure, delivery, marked=False), 30)
        try:
            again = (await sub.fetch(1, timeout=BACK_WITHIN))[0]
            back = again.metadata.num_delivered
            await again.ack()
        except nats.errors.TimeoutError:
            back = None
        info = await js.consumer_info(names.ADS_STREAM, names.level_consumer(3))
        dlq = (await js.stream_info(names.DLQ_STREAM)).state.messages
        return {"record": (await leader_store.get(record.id, consistent=True)).record, "dlq": dlq, "back": back,
                "ack_pending": info.num_ack_pending, "stats": stats, "id": record.id}
    finally:
        await nc.close()


def test_a_replayed_ads_dead_lettering_is_decided_on_the_leaders_record(fresh_nats: Any) -> None:
    """Figure (F2): record ``queued`` (replayed) at the leader, ``dead`` on the lagging copy; a permanent failure.
    Before: record left ``queued``, DLQ 0, the delivery unacknowledged and unsaid (back after ack_wait)."""
    out = asyncio.run(_run(fresh_nats().url, "dead-letter"))
    print(f"record {out['record'].status.value}, DLQ {out['dlq']}, dead {out['stats'].dead}, "
          f"redelivered {out['back']}, ack pending {out['ack_pending']}")
    assert out["record"].status == AdStatus.DEAD and out["dlq"] == 1 and out["stats"].dead == 1
    assert out["back"] is None and out["ack_pending"] == 0  # acknowledged: it does not come back


def test_a_hand_back_is_decided_on_the_leaders_record(fresh_nats: Any) -> None:
    """Figure: the same lagging ``dead`` under a shutdown's hand-back. Before: the message was acknowledged as final
    and the ad lost (record ``queued``, no message: never redelivered)."""
    out = asyncio.run(_run(fresh_nats().url, "hand-back"))
    print(f"record {out['record'].status.value}, redelivered as delivery {out['back']}")
    assert out["record"].status == AdStatus.QUEUED and out["back"] == 2 and out["stats"].handed_back == 1


def test_an_outcome_nobody_else_settles_is_handed_back_and_said(fresh_nats: Any,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Figure: a retry not ours to write (the record ``processing`` under an earlier delivery, claimed after ours
    read it) while no later delivery runs the ad. Before: neither acked nor handed back, no line: not redelivered
    within 8 s (queue.ack_wait 30 s). Now: handed back at once, one line with the ad id."""
    with caplog.at_level(logging.INFO, logger="gamead_core.worker.settle"):
        out = asyncio.run(_run(fresh_nats().url, "not ours"))
    said = [r.getMessage() for r in caplog.records if out["id"] in r.getMessage()]
    print(f"redelivered as delivery {out['back']}; lines: {said}")
    assert out["back"] == 2
    assert len(said) == 1 and "handed back" in said[0]


async def _unexpected(url: str, taken_over: bool = False) -> dict[str, Any]:
    """One ad delivered; its handling raised what the worker has no rule for: the error an outcome write raises when
    its compare-and-set lost five times in a row (``AdStore.mutate``), as the handler's ``answer`` gets it.
    ``taken_over``: meanwhile a second delivery of the message (here by a nak of the test's; ack_wait's in a run) was
    taken by another worker, which claimed the record under it and holds it."""
    settings = GameadSettings()
    nc = await nats.connect(url)
    try:
        js, store, record, revision = await _one_queued(nc, "Kept changing")
        sub = await js.pull_subscribe_bind(names.level_consumer(3), names.ADS_STREAM)
        msg = (await sub.fetch(1, timeout=5))[0]
        if taken_over:
            first, msg = msg, Msg(nc, subject=msg.subject, reply=msg.reply, data=msg.data, headers=msg.headers)
            await first.nak()  # (the worker's own copy, ``msg``, of delivery 1 has sent nothing)
            held = (await sub.fetch(1, timeout=5))[0]
            claim = {"status": AdStatus.PROCESSING, "attempts": 1, "worker_id": "w2",
                     "delivery": delivery_id(held.metadata.sequence.stream, 2)}
            await store.update(record.model_copy(update=claim), revision)
        stats, shield = WorkerStats(), Shield()
        pause = StoragePause(stats)
        settle = Settler(store, DeadLetters(js), settings.worker, worker_id="wU", stats=stats, pause=pause,
                         shielded=shield, ack_wait=settings.queue.ack_wait)
        handler = AdHandler(settings, "wU", stats=stats, settle=settle, gate=SoloGate(), pause=pause,
                            hooks=Hooks([]), shielded=shield)
        await handler.answer(msg, record.id, Conflict(f"ad {record.id} kept changing; gave up after 5 attempts"))
        try:
            back = (await sub.fetch(1, timeout=BACK_WITHIN))[0].metadata.num_delivered
        except nats.errors.TimeoutError:
            back = None
        return {"back": back, "id": record.id}
    finally:
        await nc.close()


def test_an_unexpected_error_hands_the_delivery_back_and_says_so(fresh_nats: Any,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Figure: ``Conflict: kept changing`` out of an outcome write. Before: logged, the delivery left unsettled: not
    redelivered within 8 s (back after queue.ack_wait, 30 s). Now: handed back after a back-off (≤ 1 s), said."""
    with caplog.at_level(logging.INFO, logger="gamead_core.worker.runtime"):
        out = asyncio.run(_unexpected(fresh_nats().url))
    said = [r.getMessage() for r in caplog.records if out["id"] in r.getMessage()]
    print(f"redelivered as delivery {out['back']}; lines: {said}")
    assert out["back"] == 2
    assert len(said) == 1 and "handed back" in said[0]


def test_an_unexpected_error_leaves_a_delivery_a_later_one_holds_to_its_holder(fresh_nats: Any,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    """review41 F6: the hand-back of an unexpected error (65d1a3e0) was a nak whatever the record said; with a later
    delivery of the same message running the ad on another worker, JetStream took it (it does not check the delivery
    count) and delivered the message a third time while the second still ran it: before, redelivered as delivery 3
    at once. Now the leader's record decides, as for an outcome not written (foreign.py): left to its holder, said
    in one line, not redelivered within 8 s."""
    with caplog.at_level(logging.INFO, logger="gamead_core.worker.runtime"):
        out = asyncio.run(_unexpected(fresh_nats().url, taken_over=True))
    said = [r.getMessage() for r in caplog.records if out["id"] in r.getMessage()]
    print(f"redelivered as delivery {out['back']}; lines: {said}")
    assert out["back"] is None
    assert len(said) == 1 and "left to the later delivery" in said[0]


def test_a_settle_lines_delivery_field_is_the_delivery_count(fresh_nats: Any, caplog: pytest.LogCaptureFixture) -> None:
    """regress41b F3: every line a worker writes about a delivery has ``delivery`` = the JetStream delivery count, a
    number (README "Logs"; handle.py's fields), but this module's settle lines put the ``"<seq>.<count>"`` id there
    (``"delivery": "35.1"`` on a resumed worker's ``analysed under delivery 35.1, but it is final …``), so
    ``jq 'select(.delivery > 1)'`` took every one of them and a log store typing the field as a number dropped them.
    Figure: the field of the one line, without the fix ``'1.1'`` (a str), with it ``1``."""
    with caplog.at_level(logging.INFO, logger="gamead_core.worker.settle"):
        out = asyncio.run(_run(fresh_nats().url, "not ours"))
    fields = [getattr(r, "delivery", None) for r in caplog.records if out["id"] in r.getMessage()]
    print(f"delivery fields: {fields!r}")
    assert fields == [1]
