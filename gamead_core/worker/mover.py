"""Nothing stranded: ads whose last delivery was never acknowledged (a worker killed or hung on the last
allowed attempt) are moved into the DLQ.

JetStream stops delivering a message after ``max_deliver`` and leaves it in the work stream; it says so only
in a ``MAX_DELIVERIES`` advisory, which the ``GAMEAD_ADVISORIES`` stream captures. Every worker runs this
mover: each advisory is handled by one of them (a shared durable consumer). A periodic sweep catches any
advisory that was missed (e.g. published while the capture stream did not exist yet).
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import timedelta

import nats.errors
import nats.js.errors
import orjson
from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, NotFound
from gamead_core.models import AdError, AdRecord, utcnow
from gamead_core.queue.connection import delete_if_present
from gamead_core.queue.dlq import DeadLetters
from gamead_core.store.ads import AdStore, decode
from gamead_core.worker.deadletter import dead_letter

log = logging.getLogger(__name__)

SWEEP_EVERY = 60.0  #: seconds (jittered) between two sweeps of one worker
SWEEP_BATCH = 200  #: most messages one sweep examines per level


def lost_error(max_attempts: int, record: AdRecord) -> AdError:
    """The error a stranded ad is dead-lettered with: its last recorded one, or 'the worker was lost'."""
    if record.error is not None:
        return record.error
    return AdError(
        error_class="WorkerLost",
        message=f"no worker acknowledged the ad in {max_attempts} deliveries "
        "(a worker died or hung during its last attempt)",
        retryable=True,
        at=utcnow(),
    )


async def move_stranded(
    js: JetStreamContext, store: AdStore, dlq: DeadLetters, settings: GameadSettings, seq: int
) -> bool:
    """Move the work-stream message ``seq`` into the DLQ and delete it. False if it was already gone."""
    try:
        raw = await js.get_msg(names.ADS_STREAM, seq)
    except nats.js.errors.NotFoundError:
        return False
    ad_id = (raw.headers or {}).get(names.HDR_AD_ID)
    if not ad_id or raw.data is None:
        return False
    try:
        record = (await store.get(ad_id)).record
    except NotFound:
        record = decode(raw.data)
    if not record.status.terminal:
        attempts = max(record.attempts, settings.worker.max_attempts)
        await dead_letter(store, dlq, record, lost_error(settings.worker.max_attempts, record), attempts,
                          source_seq=seq, worker_id=record.worker_id)
        log.warning("ad %s moved to the DLQ: its last delivery was never acknowledged", ad_id)
    await delete_if_present(js, names.ADS_STREAM, seq)
    return True


async def sweep(js: JetStreamContext, store: AdStore, dlq: DeadLetters, settings: GameadSettings) -> int:
    """Find delivered-but-abandoned ads the advisories missed; returns how many were moved.

    A message at or below its consumer's delivered sequence whose record used up every attempt and has not
    moved for longer than a lease plus a task timeout is abandoned.
    """
    wcfg, qs = settings.worker, settings.queue
    grace = timedelta(seconds=qs.ack_wait + wcfg.task_timeout + 30)
    moved = 0
    for level in names.LEVELS:
        info = await js.consumer_info(names.ADS_STREAM, names.level_consumer(level))
        delivered = info.delivered.stream_seq if info.delivered else 0
        seq = 0
        for _ in range(SWEEP_BATCH):
            try:
                raw = await js.get_msg(names.ADS_STREAM, seq=seq + 1, subject=names.level_subject(level), next=True)
            except nats.js.errors.NotFoundError:
                break
            seq = raw.seq or 0
            if seq > delivered or raw.data is None:
                break
            try:
                record = (await store.get((raw.headers or {}).get(names.HDR_AD_ID, ""))).record
            except NotFound:
                continue
            stale = record.started_at is not None and utcnow() - record.started_at > grace
            if record.attempts >= wcfg.max_attempts and stale and not record.status.terminal:
                moved += await move_stranded(js, store, dlq, settings, seq)
    return moved


async def run_mover(
    js: JetStreamContext, store: AdStore, dlq: DeadLetters, settings: GameadSettings, stop: asyncio.Event
) -> None:
    """Handle max-deliveries advisories until ``stop``; sweep now and then. Never raises."""
    loop = asyncio.get_running_loop()
    next_sweep = loop.time() + random.uniform(5, SWEEP_EVERY)
    psub = None
    try:
        while not stop.is_set():
            try:
                if psub is None:
                    psub = await js.pull_subscribe_bind(names.ADVISORY_CONSUMER, names.ADVISORY_STREAM)
                try:
                    msgs = await psub.fetch(10, timeout=1.0)
                except (nats.errors.TimeoutError, asyncio.TimeoutError):
                    msgs = []
                for msg in msgs:
                    advisory = orjson.loads(msg.data)
                    await move_stranded(js, store, dlq, settings, int(advisory["stream_seq"]))
                    await msg.ack()
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + random.uniform(0.5, 1.5) * SWEEP_EVERY
                    if moved := await sweep(js, store, dlq, settings):
                        log.warning("sweep moved %d abandoned ad(s) to the DLQ", moved)
            except (GameadError, nats.errors.Error, OSError, KeyError, ValueError) as exc:
                log.warning("dlq mover: %r", exc)
                await asyncio.sleep(1.0)
    finally:
        if psub is not None:
            try:
                await psub.unsubscribe()
            except nats.errors.Error:
                pass
