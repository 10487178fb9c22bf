"""Ads waiting for redelivery in a level's oldest age (attack32b F6): handed back, ``nak``'ed and due, lease lost.

A worker whose slots stay busy hands the ads it holds unstarted back (``nak``: its buffer stalled, beyond its bound;
:mod:`gamead_core.worker.handback`). Such an ad is neither pending (JetStream counts it ack pending) nor held
unstarted by any worker (no heartbeat's ``unstartedSince`` counts it), so before, it left every age figure: a P5 ad
waited 46 s past its 40 s horizon with ``oldestAgeSeconds`` null, top's OLDEST ``-`` and
``gamead_queue_oldest_age_seconds`` 0.0; only ``/v1/levels/5/oldest`` showed it. :func:`waiting_since` finds it as that
drill-down does (:mod:`gamead_core.api.routes_levels`): the level's unacknowledged messages from its consumer's ack
floor, oldest first, aged from the message's time stamp (its first publish: the aging order's key too,
:func:`~gamead_core.queue.aging.delivery_key`), each judged by its record (:func:`waits_again`).

Bounded, as the sampler runs once a second: nothing is read unless the levels' ack pending ads outnumber the ads the
workers announce they hold (their heartbeats' ``holding``: running or held unstarted), and then per (level,
partition) with ack pending ads at most :data:`MAX_READS` message heads (the ads a worker holds are skipped) and
:data:`PROBE` record reads; the first that waits is the oldest of its partition (a stream's sequences are in publish
order). A retry still waiting out its back-off does not count (it is not due: see **queue wait**).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gamead_core import names
from gamead_core.models import AdRecord, AdStatus
from gamead_core.queue.depth import LevelDepth, peek_next
from gamead_core.registry import NodeInfo
from gamead_core.store.ads import AdStore

#: Records read per (level, partition) and sample, at most
PROBE = 4
#: Message heads read per (level, partition) and sample, at most (the ads workers hold are skipped)
MAX_READS = 32


def waits_again(record: AdRecord | None, now: float, *, ack_wait: float, task_timeout: float) -> bool:
    """Whether an unacknowledged ad no worker announces holding waits for a worker (pure; ``now`` epoch s): ``queued``
    with no ``retryAt`` (handed back) or one passed (a retry due), or ``processing`` for longer than ``task_timeout +
    ack_wait`` s (its worker stopped renewing its lease: JetStream redelivers it). A retry whose back-off runs, a
    running or final ad, or a record that cannot be read (None) does not."""
    if record is None:
        return False
    if record.status == AdStatus.QUEUED:
        return record.retry_at is None or record.retry_at.timestamp() <= now
    if record.status == AdStatus.PROCESSING and record.started_at is not None:
        return record.started_at.timestamp() + task_timeout + ack_wait <= now
    return False


def held_ids(nodes: Iterable[NodeInfo]) -> set[str]:
    """The ad ids every worker among ``nodes`` (the registry's entries) announces holding."""
    return {h.ad_id for n in nodes if n.role == "worker" for h in n.holding}


@dataclass(frozen=True)
class Redeliveries:
    """How the sampler finds ads waiting again: the ad-record ``store``, ``queue.ack_wait`` and
    ``worker.task_timeout`` (s)."""

    store: AdStore
    ack_wait: float
    task_timeout: float

    async def since(self, js: object, levels: Mapping[int, Mapping[int, LevelDepth]], nodes: Iterable[NodeInfo],
                    now: float) -> dict[int, float]:
        """Level → the publish time (epoch s) of its oldest ad waiting again, for the levels where one was found.
        ``levels``: level → partition → its reading (at ``now``); ``nodes``: the registry's entries. Raises what
        NATS raises (the caller leaves the figure out)."""
        held = held_ids(nodes)
        if sum(d.ack_pending for parts in levels.values() for d in parts.values()) <= len(held):
            return {}  # every ack pending ad may be one a worker holds: nothing to look for
        out: dict[int, float] = {}
        for level, parts in levels.items():
            for partition, depth in parts.items():
                at = await self._oldest(js, level, partition, depth, held, now) if depth.ack_pending else None
                if at is not None and (level not in out or at < out[level]):
                    out[level] = at
        return out

    async def _oldest(self, js: object, level: int, partition: int, depth: LevelDepth, held: set[str],
                      now: float) -> float | None:
        stream, subject = names.work_stream(partition), names.level_subject(level, partition)
        seq, reads, probed = depth.ack_floor, 0, 0
        while reads < MAX_READS and probed < PROBE and seq < depth.delivered_seq:
            reads += 1
            raw = await peek_next(js, stream, subject, seq)  # type: ignore[arg-type]
            if raw is None or not raw.seq or raw.seq > depth.delivered_seq:
                return None
            seq = raw.seq
            ad_id = (raw.headers or {}).get(names.HDR_AD_ID)
            if not ad_id or ad_id in held:
                continue
            probed += 1
            try:
                record: AdRecord | None = (await self.store.get(ad_id)).record
            except Exception:  # noqa: BLE001 - unreadable (gone, storage away): not counted
                record = None
            if waits_again(record, now, ack_wait=self.ack_wait, task_timeout=self.task_timeout):
                return raw.time.timestamp() if raw.time is not None else now
        return None


def redeliveries(link: object, ack_wait: float, task_timeout: float) -> Redeliveries | None:
    """:class:`Redeliveries` over ``link``'s ad store (the API's ``QueueLink.store``), or None when it has none now."""
    try:
        store = getattr(link, "store", None)
    except Exception:  # noqa: BLE001 - QueueUnavailable while NATS is away
        return None
    return None if store is None else Redeliveries(store, ack_wait, task_timeout)


__all__ = ["MAX_READS", "PROBE", "Redeliveries", "held_ids", "redeliveries", "waits_again"]
