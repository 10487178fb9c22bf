"""Accepting an ad: give it an id, put it on the queue (the source of truth), then record it.

Order matters for "a 202 is never lost": the message is published (and acknowledged by JetStream) first; the
KV record is written second. If the API dies between the two, the worker that receives the message creates
the record from it. A publish that fails leaves nothing behind and the client gets a 503.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from nats.js import JetStreamContext
from ulid import ULID

from gamead_core.errors import Conflict, GameadError, NotFound
from gamead_core.models import AdRecord, AdStatus, AdSubmission, utcnow
from gamead_core.queue.publish import publish_ad
from gamead_core.store.ads import AdStore, encode

log = logging.getLogger(__name__)


def new_ad_id(idempotency_key: str | None = None) -> str:
    """A fresh, time-sortable id; or the same id every time for the same idempotency key."""
    if idempotency_key is None:
        return str(ULID()).lower()
    digest = hashlib.sha256(b"gamead-idem:" + idempotency_key.encode()).digest()[:16]
    return str(ULID.from_bytes(digest)).lower()


def recently_issued(ad_id: str, *, within: float = 10.0) -> bool:
    """True if ``ad_id`` is a ULID this service issued in the last ``within`` seconds (its record may still
    be on its way: the submit path does not wait for the record write)."""
    try:
        issued = ULID.from_str(ad_id.upper()).timestamp
    except (ValueError, TypeError):
        return False
    return 0 <= time.time() - issued <= within


@dataclass(frozen=True, slots=True)
class Accepted:
    record: AdRecord
    duplicate: bool


class Intake:
    """The submit path of the API."""

    def __init__(self, js: JetStreamContext, store: AdStore, *, publish_timeout: float) -> None:
        self._js = js
        self._store = store
        self._timeout = publish_timeout

    async def submit(self, ad: AdSubmission, idempotency_key: str | None = None) -> Accepted:
        ad_id = new_ad_id(idempotency_key)
        if idempotency_key is not None:
            try:  # a repeat after the first request finished: answer from the record, enqueue nothing
                return Accepted((await self._store.get(ad_id)).record, duplicate=True)
            except NotFound:
                pass
        record = AdRecord(
            id=ad_id,
            status=AdStatus.QUEUED,
            priority=ad.priority,
            submitted_at=utcnow(),
            ad=ad,
            idempotency_key=idempotency_key,
        )
        duplicate = await publish_ad(
            self._js, ad_id=ad_id, level=ad.priority, payload=encode(record), timeout=self._timeout
        )
        if duplicate:  # a concurrent or retried request already enqueued this id
            try:
                return Accepted((await self._store.get(ad_id)).record, duplicate=True)
            except NotFound:
                return Accepted(record, duplicate=True)
        try:
            if idempotency_key is None:
                # not awaited (one round trip less per submit); GET waits briefly for a fresh id's record
                await self._store.create_nowait(record)
            else:  # a derived id carries no issue time, so its record is written before answering
                await self._store.create(record)
        except Conflict:
            pass  # a worker already picked the message up and created the record from it
        except GameadError as exc:  # the ad is safe on the stream; the worker will create the record
            log.warning("ad %s enqueued but its record was not written: %s", ad_id, exc.message)
        return Accepted(record, duplicate=False)
