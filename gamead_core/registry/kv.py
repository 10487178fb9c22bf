"""The registry bucket: one KV entry per node, with a TTL (``registry.ttl``) that removes a silent node.

:meth:`Registry.list` is one batched direct get (:mod:`gamead_core.registry.direct`); buckets without
direct access fall back to ``keys()`` + ``get()``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue
from pydantic import ValidationError

from gamead_core import clock, names
from gamead_core.config import RegistrySettings
from gamead_core.errors import Conflict, GameadError, QueueUnavailable, TopologyError, TopologyMissing
from gamead_core.queue.acks import Ack, publish_acked
from gamead_core.queue.connection import nats_boundary
from gamead_core.registry.direct import last_values, scan_values
from gamead_core.registry.owner import STALE_MARGIN, Ownership
from gamead_core.registry.nodes import earlier_node_key, incarnation, incarnation_id, node_key
from gamead_core.registry.stamp import sample_stamp
from gamead_core.registry.stop_writes import CleanStop
from gamead_core.registry.stops import StopNotes
from gamead_core.registry.wire import NodeInfo
from gamead_core.store.cas import StillBusy, retry_busy

log = logging.getLogger(__name__)

#: compare-and-set tries of one acknowledged put over writes landing meanwhile (its own announcements)
PUT_TRIES = 3
#: Most entries one ``list()`` reads (far more nodes than any deployment runs).
MAX_NODES = 4096


def bucket_config(settings: RegistrySettings, replicas: int = 1) -> KeyValueConfig:
    return KeyValueConfig(
        bucket=names.REGISTRY_BUCKET,
        description="gamead service registry: one heartbeat per API node and worker",
        history=1,
        ttl=settings.ttl,
        storage=StorageType.MEMORY,  # heartbeats are rewritten every few seconds; nothing to keep on disk
        replicas=replicas,
        direct=True,
    )


class Registry(CleanStop):
    """The registry bucket. Construct without I/O; the bucket is created (idempotently) on first use."""

    def __init__(
        self, nc: NATS, js: JetStreamContext, settings: RegistrySettings, *, replicas: int = 1, timeout: float = 2.0
    ) -> None:
        self._nc = nc
        self._js = js
        self.settings = settings
        self._replicas = replicas
        self._timeout = timeout
        self._kv: KeyValue | None = None
        self._direct = True
        self._lock = asyncio.Lock()
        self._stops, self._stop_landed = StopNotes(js), set[tuple[str, str]]()  #: (incarnation, part) of stop()
        #: whose keys this process writes, and which another process took over (.owner: attack44c F1)
        self.owner = Ownership(settings.heartbeat_interval + STALE_MARGIN)

    @property
    def connection(self) -> NATS:  # its writes' connection (a flush confirms them: gamead_core.worker.confirm)
        return self._nc

    @property
    def connected(self) -> bool:
        """Is the NATS connection up right now (not reconnecting, not closed)?"""
        return bool(self._nc.is_connected)

    @property
    def stream(self) -> str:
        return names.kv_stream(names.REGISTRY_BUCKET)

    @property
    def prefix(self) -> str:
        return names.kv_prefix(names.REGISTRY_BUCKET)

    async def open(self, create: bool = True) -> KeyValue:
        """Create the bucket if missing (racing creators agree); reuse one that exists with other limits. ``create``
        False: look it up only, :class:`~gamead_core.errors.TopologyMissing` if missing (a reader that must not
        make it with its own ``registry.ttl``: the repartition guard, review43 F4)."""
        if self._kv is not None:
            return self._kv
        async with self._lock:
            if self._kv is not None:
                return self._kv
            with nats_boundary():
                try:
                    kv = await self._create() if create else None
                    if kv is None:  # exists (with another configuration), or only looked up
                        kv = await self._js.key_value(names.REGISTRY_BUCKET)
                        info = await self._js.stream_info(self.stream)
                        have = info.config.max_age
                        if have is not None and abs(have - self.settings.ttl) > 1e-3:
                            log.warning(
                                "registry bucket exists with ttl %.1fs, not the configured %.1fs; using it as is",
                                have, self.settings.ttl,
                            )
                        self._direct = bool(info.config.allow_direct)
                except nats.js.errors.BucketNotFoundError as exc:
                    raise TopologyMissing(f"no registry bucket ({self.stream}) on this NATS") from exc
                except nats.js.errors.APIError as exc:
                    raise TopologyError(
                        f"JetStream refused the registry bucket: {exc.description} (code {exc.err_code})"
                    ) from exc
            self._kv = kv
        return kv

    async def _create(self) -> KeyValue | None:
        """The bucket, made as configured (or found so); None if it exists with another configuration (10058)."""
        try:
            return await self._js.create_key_value(bucket_config(self.settings, self._replicas))
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != 10058:  # not "exists with a different configuration"
                raise
            return None

    async def put(self, info: NodeInfo) -> None:
        """Write ``info`` as the node's entry, and take a sample of nats-server's clock from it
        (:mod:`gamead_core.clock`): the put's round trip brackets the stamp the stored entry carries, read back
        (one direct get; a read that fails only skips the sample). The key is read first: another process's entry
        there raises :func:`~gamead_core.registry.owner.id_lost` (a ``ConfigError``) and nothing is written, then
        or later (:mod:`gamead_core.registry.owner`). The write goes over that read, a compare-and-set (review45: a
        beat answered late, landing after the id's next process had claimed the key, wrote over that healthy
        process's entry, which then ended exit 5 as if frozen; now the late one is refused and its next beat finds
        the key another's; as one frozen between its read and its write: fresh45c); written meanwhile (its own
        announcements, a replica's read behind the leader), read again, :data:`PUT_TRIES` times in all; then the key
        read once more: another process's (:func:`~.owner.id_lost`), or this one's last write, renewed since its
        read: the beat returns, not written and no failure (a worker that cannot beat takes no work). Never
        unconditional once its read answered (review46 F2: the last try was, and one frozen between that read and
        its write went over the new holder's entry); none once its clean stop began. Raises the gamead error tree."""
        await self.open()
        for _ in range(PUT_TRIES):
            last = await self.owner.check(info, self.revision)
            if self.owner.stopped(info.id, info):  # its clean stop began: nothing after its delete mark (reg54)
                return
            try:
                await self._write(info, last)
                return
            except Conflict:  # written since the read: read the key again
                continue
        await self.owner.check(info, self.revision)  # another's raises id_lost; this one's own: renewed meanwhile
        log.debug("the beat of %s not written: its key written %d times between its read and write (its own "
                  "announcements)", info.id, PUT_TRIES)

    async def put_raw_nowait(self, node_id: str, payload: bytes) -> None:
        """:meth:`put_nowait` of an entry already serialised (``payload``: a :class:`NodeInfo` as JSON, e.g. a
        worker's last beat with its held ads brought up to date). Never raises."""
        if self._kv is None or not await self.owner.may_send(node_id, self.revision):
            return
        try:
            await self._nc.publish(f"{self.prefix}{node_key(node_id)}", payload)
        except Exception as exc:  # noqa: BLE001 - best effort; the periodic beat follows
            log.debug("early heartbeat failed: %r", exc)

    async def put_nowait(self, info: NodeInfo) -> None:
        """Send ``info`` as the node's entry without waiting for the server's answer (a plain publish to the KV
        subject). Messages from one connection are applied in order, so a request sent after this call (e.g. the record
        write before an analysis) reaches the server after it. Does nothing before the bucket was opened, once another
        process took the id over or its clean stop began, and reads the key first when this process's last look at it is
        stale (:mod:`gamead_core.registry.owner`). Never raises: the next beat repairs a lost one."""
        await self.put_raw_nowait(info.id, info.model_dump_json().encode())

    async def put_over(self, info: NodeInfo, last: int) -> int:
        """Write ``info`` as the node's entry only while the key's last write is the one at stream sequence ``last``
        (0: nothing at all), a compare-and-set: the start's claim (:mod:`gamead_core.registry.claim`), which no
        rival start's write can slip between its read and its write. Samples nats-server's clock as :meth:`put`.
        Returns the entry's sequence. Raises ``Conflict`` (another write came first) and the gamead error tree."""
        await self.open()
        return await self._write(info, last)

    async def _write(self, info: NodeInfo, last: int | None) -> int:
        """``info`` written under its key, only over the write at sequence ``last`` (None: whatever is there), and
        nats-server's clock sampled from it (:meth:`put`). Returns its sequence. Raises ``Conflict`` and the gamead
        error tree."""
        expected = {} if last is None else {names.HDR_EXPECTED_LAST_SUBJECT_SEQ: str(last)}
        with self._boundary():
            sent = clock.local()
            seq = (await retry_busy(lambda: self._publish(node_key(info.id), info.model_dump_json().encode(),
                                                          expected))).seq
            received = clock.local()
        await sample_stamp(self._js, self.stream, seq, sent, received, direct=self._direct)
        return seq

    async def lookup(self, node_id: str) -> tuple[NodeInfo | None, bool]:
        """``(entry, deleted)`` for ``node_id``: its current entry (None when there is none), and whether
        the last thing written under its key was a deletion (a clean shutdown) rather than nothing at all
        (never written, or expired: the node went silent). Nothing under its key, and an id whose key an older
        gamead made otherwise (:func:`~gamead_core.registry.nodes.earlier_node_key`): that key is read too, an
        entry there counting only if it is ``node_id``'s (a rolling deploy: review42 F1), a delete mark only if it
        names no process (an older gamead's) or one of ``node_id`` (review42b F1). Raises the gamead error tree."""
        kv, key = await self.open(), node_key(node_id)
        entry, deleted = await self._read(kv, key)
        return (entry, deleted) if entry is not None or deleted else await self.lookup_earlier(node_id)

    async def lookup_earlier(self, node_id: str) -> tuple[NodeInfo | None, bool]:
        """:meth:`lookup` of ``node_id``'s earlier key alone (``(None, False)`` for an id whose key is the same)."""
        if (earlier := earlier_node_key(node_id)) == node_key(node_id):
            return None, False
        op, origin, data = await self._last(earlier)  # one read: the entry or the mark, and whose
        if op in ("DEL", "PURGE"):  # a mark naming another id's process is not this one's stop (review42b F1)
            return None, origin == "" or incarnation_id(origin) == node_id
        entry = _decode(data) if op is not None and data else None
        return (entry if entry is None or entry.id == node_id else None), False  # another id's: shared earlier key

    async def _read(self, kv: KeyValue, key: str) -> tuple[NodeInfo | None, bool]:
        """:meth:`lookup` of one key."""
        with self._boundary():
            try:
                entry = await kv.get(key)
            except nats.js.errors.KeyDeletedError:
                return None, True
            except nats.js.errors.KeyNotFoundError as exc:  # nats-py's get() turns a delete marker into this,
                return None, getattr(exc, "op", None) in ("DEL", "PURGE")  # with the marker's operation
        return (_decode(entry.value) if entry.value else None), False

    async def delete(self, node_id: str, incarnation: str | None = None, last: int | None = None) -> None:
        """Delete ``node_id``'s entry (a clean stop), under its key and, for an id whose key an older gamead made
        otherwise (:func:`~gamead_core.registry.nodes.earlier_node_key`), under that one too: where an older
        reaper of a rolling deploy looks for the mark (review42 F1), unless another id's live entry is the last
        write there (that key is many ids' earlier one and one id's own: ``w.1``'s beside ``w_1``, ``w:1``; its
        mark deleted a live node, which the reaper then took for dead: review42b F1), nor any entry of another process
        of this id (an older gamead's, started beside this one: review46 F4), written only if nothing was
        written there since it was read. ``incarnation`` (the stopping process's) goes in the mark as its
        ``Gamead-Origin``: :meth:`stopped` counts it for that process alone (review42 F3). ``last``: the mark under
        its key only while the key's last write is that sequence (0: none), else ``Conflict``. Raises the gamead
        error tree."""
        await self.open()
        key, earlier = node_key(node_id), earlier_node_key(node_id)
        headers = {names.HDR_KV_OPERATION: "DEL", **({names.HDR_ORIGIN: incarnation} if incarnation else {})}
        expected = {} if last is None else {names.HDR_EXPECTED_LAST_SUBJECT_SEQ: str(last)}
        with self._boundary():  # what KeyValue.delete publishes, with the incarnation beside it
            await asyncio.gather(self._publish(key, b"", {**headers, **expected}),
                                 *([self._mark_earlier(earlier, node_id, headers)] if earlier != key else []))

    async def _publish(self, key: str, payload: bytes, headers: dict[str, str]) -> Ack:
        """Every acknowledged registry write: ``payload`` under ``key``, its ack awaited within the registry's
        ``timeout``, sent again while answered "no responders" as the queue's writes are
        (:func:`~gamead_core.queue.acks.publish_acked`): a fresh replicated bucket's stream with no leader yet
        answers so, and a stop or mark failed ``TopologyMissing`` (left44). Raises nats-py's errors."""
        return await (await publish_acked(self._js, f"{self.prefix}{key}", payload, headers=headers,
                                          timeout=self._timeout))

    async def _mark_earlier(self, key: str, node_id: str, headers: dict[str, str]) -> None:
        """:meth:`delete`'s mark under ``node_id``'s earlier ``key``: not over another id's live entry, and lost
        (no error) to a write there between its read and its publish (a compare-and-set on the key's last
        sequence; a busy answer sent again, as every compare-and-set writer's is:
        :func:`~gamead_core.store.cas.retry_busy`; one still busy is lost too: review43 F2, it raised ``StillBusy``
        out of a clean stop whose own mark was written)."""
        last = await self._last_msg(key)
        if last is not None and (last.headers or {}).get(names.HDR_KV_OPERATION) not in ("DEL", "PURGE"):
            entry = _decode(last.data) if last.data else None
            if entry is not None and (entry.id, incarnation(entry.id, entry.pid, entry.started_at)) != (
                    node_id, headers.get(names.HDR_ORIGIN)):  # another id's, or an older process's of this id
                return
        expected = {names.HDR_EXPECTED_LAST_SUBJECT_SEQ: str(last.seq if last is not None else 0)}
        try:
            with nats_boundary():
                await retry_busy(lambda: self._publish(key, b"", {**headers, **expected}))
        except (Conflict, StillBusy):
            pass

    async def _last_msg(self, key: str) -> Any:
        """The last message written under ``key`` (nats-py's ``RawStreamMsg``), or None when there is none."""
        with self._boundary():
            try:
                return await self._js.get_last_msg(self.stream, f"{self.prefix}{key}", direct=self._direct)
            except nats.js.errors.NotFoundError:
                return None

    async def revision(self, node_id: str, earlier: bool = False) -> tuple[int, NodeInfo | None]:
        """``(sequence, entry)`` of the last write under ``node_id``'s key: 0 when there is none, entry None for a
        delete mark or an unreadable value; any write of the holder (a beat, an announcement) changes the sequence
        (:mod:`gamead_core.registry.claim`). ``earlier``: under the key an older gamead beats ``node_id`` under
        (:func:`earlier_node_key`), an entry there counting only if it is ``node_id``'s. Raises the gamead error
        tree."""
        await self.open()
        raw = await self._last_msg(earlier_node_key(node_id) if earlier else node_key(node_id))
        if raw is None or (raw.headers or {}).get(names.HDR_KV_OPERATION) in ("DEL", "PURGE"):
            return (raw.seq if raw is not None else 0), None
        entry = _decode(raw.data) if raw.data else None
        return raw.seq, entry if entry is None or not earlier or entry.id == node_id else None

    async def _last(self, key: str) -> tuple[str | None, str, bytes | None]:
        """The operation of the last write under ``key`` (``PUT``, ``DEL``, ``PURGE``; None when there is none), the
        process it names (its ``Gamead-Origin``; "" for none) and its data."""
        raw = await self._last_msg(key)
        if raw is None:
            return None, "", None
        headers = raw.headers or {}
        return headers.get(names.HDR_KV_OPERATION, "PUT"), headers.get(names.HDR_ORIGIN, ""), raw.data

    async def list(self, create: bool = True) -> list[NodeInfo]:
        """Every live node, sorted by role then id (``create`` False: the bucket is not made if missing, :meth:`open`).
        One request to the server, which must end within the registry's ``timeout`` (``nats.request_timeout``) for
        the whole listing. Raises ``QueueUnavailable`` when it did not (saying how many nodes arrived: a partial list
        must never be taken for the whole one, e.g. by the reaper, which would take the missing nodes for dead), and
        the gamead error tree."""
        kv = await self.open(create)
        with self._boundary():
            if self._direct:
                raw, complete = await last_values(self._nc, self.stream, self.prefix, batch=MAX_NODES,
                                                  timeout=self._timeout)
            else:
                raw, complete = await scan_values(kv, self._timeout)
        if not complete and not raw:  # nothing at all: NATS away or stalled, said as every other such read says it
            raise QueueUnavailable(f"NATS did not answer the registry listing within {self._timeout:g} s "
                                   "(nats.request_timeout)")
        if not complete:
            raise QueueUnavailable(f"the registry listing is incomplete: {len(raw)} node(s) arrived within "
                                   f"{self._timeout:g} s (nats.request_timeout), then JetStream stopped answering")
        nodes = [info for info in map(_decode, raw) if info is not None]
        nodes.sort(key=lambda n: (n.role, n.id))
        return nodes

    @contextmanager
    def _boundary(self) -> Iterator[None]:
        """:func:`~gamead_core.queue.connection.nats_boundary`, and on any NATS failure forget the bucket, so
        the next call re-creates it if it went missing (a memory-stored bucket does not survive a NATS
        restart)."""
        try:
            with nats_boundary():
                yield
        except GameadError:
            self._kv = None
            raise


def _decode(data: bytes) -> NodeInfo | None:
    try:
        return NodeInfo.model_validate_json(data)
    except ValidationError:
        log.debug("skipping an unreadable registry entry: %r", data[:200])
        return None


__all__ = ["MAX_NODES", "Registry", "bucket_config"]
