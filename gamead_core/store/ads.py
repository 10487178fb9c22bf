"""Ad records in a JetStream KV bucket, updated by compare-and-set on the entry revision."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.errors import Conflict, NotFound
from gamead_core.models import AdRecord, AdStatus
from gamead_core.queue.connection import translate
from gamead_core.queue.scan import read_stream
from gamead_core.store.retention import final_record_ttl


def encode(record: AdRecord) -> bytes:
    return record.model_dump_json(exclude_none=True).encode()


def decode(data: bytes) -> AdRecord:
    return AdRecord.model_validate_json(data)


@dataclass(frozen=True, slots=True)
class Versioned:
    """A record and the KV revision it was read at (the ``last`` of the next compare-and-set)."""

    record: AdRecord
    revision: int


#: statuses no record ever leaves: written with the bucket's per-key TTL (see gamead_core.store.retention)
FINAL_STATUSES = frozenset({AdStatus.COMPLETED, AdStatus.FAILED})
#: JetStream's "wrong last sequence" API errors: a compare-and-set put that lost
_WRONG_LAST_SEQUENCE = frozenset({10071, 10164})


class AdStore:
    """Reads and writes :class:`AdRecord` s. Every NATS error leaves as a gamead error.

    ``final_ttl`` (seconds, or None): the TTL of completed and failed records, read from the bucket by
    :meth:`open`; every write of such a record carries it, so finished ads expire before anything else.
    """

    def __init__(self, nc: NATS, js: JetStreamContext, kv: KeyValue, *, final_ttl: float | None = None) -> None:
        self._nc = nc
        self._js = js
        self._kv = kv
        self.final_ttl = final_ttl

    @classmethod
    async def open(cls, nc: NATS, js: JetStreamContext) -> AdStore:
        try:
            kv = await js.key_value(names.ADS_BUCKET)
            info = await js.stream_info(names.ADS_BUCKET_STREAM)
        except nats.errors.Error as exc:
            raise translate(exc) from exc
        return cls(nc, js, kv, final_ttl=final_record_ttl(info))

    def _ttl_of(self, record: AdRecord) -> float | None:
        return self.final_ttl if record.status in FINAL_STATUSES else None

    async def get(self, ad_id: str) -> Versioned:
        """The record of ``ad_id``; raises :class:`NotFound`."""
        try:
            entry = await self._kv.get(ad_id)
        except nats.js.errors.KeyNotFoundError as exc:  # also covers deleted / purged keys
            raise NotFound(f"no ad with id {ad_id!r}") from exc
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc
        if entry.value is None:  # an expiry marker reads as an entry without a value
            raise NotFound(f"no ad with id {ad_id!r}")
        return Versioned(decode(entry.value), entry.revision or 0)

    async def create(self, record: AdRecord) -> int:
        """Write a new record; raises :class:`Conflict` if the id already exists."""
        try:
            return await self._kv.create(record.id, encode(record), msg_ttl=self._ttl_of(record))
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise Conflict(f"ad {record.id} already exists") from exc
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc

    async def create_nowait(self, record: AdRecord) -> None:
        """Write a new record without waiting for the server's answer (create-only: the server refuses it
        if the key already has a value). Saves a round trip on the submit path; the API publishes the ad
        itself first and awaits that, so a lost record write is recreated by the worker from the message."""
        try:
            await self._nc.publish(  # the KV put subject, without a reply inbox
                f"$KV.{names.ADS_BUCKET}.{record.id}",
                encode(record),
                headers={names.HDR_EXPECTED_LAST_SUBJECT_SEQ: "0"},
            )
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc

    async def update(self, record: AdRecord, revision: int) -> int:
        """Compare-and-set: write ``record`` only if the stored revision is still ``revision``."""
        ttl = self._ttl_of(record)
        try:
            if ttl is None:
                return await self._kv.update(record.id, encode(record), last=revision)
            # nats-py's kv.update() takes no TTL: the same compare-and-set put, with a Nats-TTL header
            ack = await self._js.publish(
                f"$KV.{names.ADS_BUCKET}.{record.id}", encode(record),
                headers={names.HDR_EXPECTED_LAST_SUBJECT_SEQ: str(revision)}, msg_ttl=ttl,
            )
            return int(ack.seq)
        except nats.js.errors.KeyWrongLastSequenceError as exc:
            raise Conflict(f"ad {record.id} changed since revision {revision}") from exc
        except nats.js.errors.APIError as exc:
            if exc.err_code in _WRONG_LAST_SEQUENCE:
                raise Conflict(f"ad {record.id} changed since revision {revision}") from exc
            raise translate(exc) from exc
        except (nats.errors.Error, asyncio.TimeoutError) as exc:
            raise translate(exc) from exc

    async def mutate(
        self, ad_id: str, change: Callable[[AdRecord], AdRecord | None], *, attempts: int = 5
    ) -> Versioned | None:
        """Read-modify-write with retries on a lost compare-and-set.

        ``change`` returns the new record, or ``None`` to leave it as it is (the call then returns None).
        """
        for _ in range(attempts):
            current = await self.get(ad_id)
            new = change(current.record)
            if new is None:
                return None
            try:
                return Versioned(new, await self.update(new, current.revision))
            except Conflict:
                continue
        raise Conflict(f"ad {ad_id} kept changing; gave up after {attempts} attempts")

    async def scan(
        self,
        *,
        status: AdStatus | None = None,
        priority: int | None = None,
        limit: int = 50,
        scan_limit: int = 10_000,
        timeout: float = 2.0,
    ) -> list[AdRecord]:
        """Newest records (by submission time) matching the filters, among the last ``scan_limit`` written.

        The bucket keeps one revision per key, so every message in its stream is a current record: reading
        the tail of the stream in order is a scan of the most recently written ads.
        """
        found: list[AdRecord] = []
        async for msg in read_stream(
            self._js, names.ADS_BUCKET_STREAM, f"$KV.{names.ADS_BUCKET}.>", tail=scan_limit, timeout=timeout
        ):
            if not msg.data or (msg.headers and msg.headers.get("KV-Operation")):
                continue  # a delete or purge marker
            record = decode(msg.data)
            if (status is None or record.status == status) and (priority is None or record.priority == priority):
                found.append(record)
        found.sort(key=lambda r: r.submitted_at, reverse=True)
        return found[:limit]
