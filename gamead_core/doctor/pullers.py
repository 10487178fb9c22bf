"""Who pulls the waiting ads: work streams holding ads that no live worker pulls from, and running nodes whose
``queue.partitions`` differs from the queue's, for the doctor (attack28b F3).

A node left on an old ``queue.partitions`` after a repartition (README, "Partitions") once led the autoscaler,
scaled the worker Deployment to 0 and left 40 ads waiting in ``GAMEAD_ADS_1``/``_2`` while ``gamead doctor`` said
every invariant held: no record or message was wrong, yet nothing would ever take them. Two findings say so:

* ``unpulled_ads``: a work stream (partition p) has an ad waiting past its level's promised wait (the aging
  horizon ``gamead top`` marks with ``!``: ads just queued while the workers start are no finding) and no live
  worker pulls from it: none is registered but draining ones, or every one's ``queue.partitions`` differs from
  the queue's (a worker exits once it sees the change). A worker of an older version, whose entry does not say
  its setting, is taken to pull every partition.
* ``partitions_disagree``: a registered node (API or worker) whose ``queue.partitions`` is not the queue's.
* ``unfenced_node`` (a warning, fix34b item 3): a registered node of a gamead before the create fence (its entry
  has no ``fence``): during a rolling upgrade its reaper queues a dead API's records again without compare-and-set,
  or its API withdraws an unanswered create with a blind delete, so an ad can be analysed without a record
  (``analysed_without_record``) or its completed record deleted. Finish the upgrade (the finding names each node).
* ``clock_offset`` (a warning, attack33a): a registered node whose heartbeat says its host clock is more than
  :data:`~gamead_core.clock_offset.OFFSET_LIMIT` off nats-server's (corrected, but its host's NTP needs fixing).

The doctor reads this only on a node that fits the queue (otherwise it reports ``topology_incompatible`` and
stops), so the queue's partitions are the node's. Both are read twice (:meth:`Pullers.first` from the consumer
infos the stranded check read, plus one registry listing, and the heads of the partitions holding ads when no
worker pulls; :meth:`Pullers.confirm` after the doctor's settle, the same for the suspected partitions), and
only what both readings show is reported: a worker starting, or a node being restarted with the new setting, is
seconds. Neither is repaired: the fix is a worker, or a restart with the right setting (the finding says which).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from gamead_core import clock, names
from gamead_core.clock_offset import offset_words, past_limit
from gamead_core.doctor.model import Finding, ReadStats
from gamead_core.doctor.verdict import add
from gamead_core.errors import GameadError
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.depth import LevelDepth, level_depth
from gamead_core.registry import NodeInfo, Registry
from gamead_core.scaling.reason import every_quiet
from gamead_core.stats.rates import aging_horizon

log = logging.getLogger(__name__)


def pending_by_partition(infos: Mapping[tuple[int, int], ConsumerInfo]) -> dict[int, int]:
    """Ads never delivered per partition, summed over its levels' consumer ``infos`` ((level, partition) →
    info). Pure."""
    out: dict[int, int] = {}
    for (_, p), info in infos.items():
        out[p] = out.get(p, 0) + int(info.num_pending or 0)
    return out


NONE_RUNS = "no worker is running"


def nobody_pulls(nodes: Sequence[NodeInfo], partitions: int) -> str | None:
    """Why no live worker among ``nodes`` (the registry's entries) pulls the queue's ``partitions``, or None when
    one does: a worker not draining whose setting is the queue's (None, an older worker: taken to pull every
    partition). Pure."""
    live = [n for n in nodes if n.role == "worker" and n.state not in ("draining", "gone")]
    workers = [n for n in live if not n.quiet]  # a quiet one pulls nothing (gamead_core.worker.quiet)
    if any(w.partitions in (None, partitions) for w in workers):
        return None
    if not workers:  # every live one quiet (gamead_core.worker.quiet): said so, with how to resume them
        return every_quiet(live) or NONE_RUNS  # the sentence of `gamead scale status` (probe49 F8)
    set_to = "/".join(sorted({str(w.partitions) for w in workers}))
    return f"every live worker ({len(workers)}) is configured for queue.partitions {set_to}, the queue has {partitions}"


def late_text(depths: Sequence[LevelDepth], aging_step: float) -> str | None:
    """What waits past its level's promised wait (:func:`~gamead_core.stats.rates.aging_horizon` of
    ``aging_step``) among one partition's ``depths``: ``"12 ad(s) wait, the oldest 35 s (priority 1 promises
    10 s)"``; None when none does. Pure."""
    late = [d for d in depths if d.pending and d.oldest_age is not None
            and d.oldest_age > aging_horizon(d.level, aging_step)]
    if not late:
        return None
    worst = max(late, key=lambda d: (d.oldest_age or 0.0) - aging_horizon(d.level, aging_step))
    return (f"{sum(d.pending for d in depths)} ad(s) wait, the oldest {worst.oldest_age:.0f} s (priority "
            f"{worst.level} promises {aging_horizon(worst.level, aging_step):g} s)")


def disagreeing(nodes: Sequence[NodeInfo], partitions: int) -> dict[str, str]:
    """Node id → what differs, for each entry of ``nodes`` whose ``queue.partitions`` is known and is not the
    queue's ``partitions``. Pure."""
    return {n.id: (f"{n.role} on {n.host} (pid {n.pid}) is configured for queue.partitions {n.partitions}, the "
                   f"queue has {partitions}: restart it with queue.partitions={partitions}")
            for n in nodes if n.partitions is not None and n.partitions != partitions}


def clocks_off(nodes: Sequence[NodeInfo]) -> dict[str, str]:
    """Node id → ``"worker on vm-3 (pid 41): host clock 300.0 s behind nats-server's (…)"``, for each entry of
    ``nodes`` whose measured ``clockOffsetSeconds`` is past :data:`~gamead_core.clock_offset.OFFSET_LIMIT`. Pure."""
    return {n.id: f"{n.role} on {n.host} (pid {n.pid}): {offset_words(n.clock_offset_seconds or 0.0)}"
            for n in nodes if past_limit(n.clock_offset_seconds)}


def unfenced(nodes: Sequence[NodeInfo]) -> dict[str, str]:
    """Node id → what it does without the create fence, for each entry of ``nodes`` (the registry's) that does not
    say it keeps it (``fence`` None: a gamead before it; :data:`~gamead_core.registry.wire.CREATE_FENCE`). Pure."""
    does = {"worker": "its reaper queues a dead API's records again without compare-and-set",
            "api": "it withdraws a create it got no answer for by a blind delete"}
    return {n.id: (f"{n.role} on {n.host} (pid {n.pid}), gamead {n.version[:40]}, keeps no create fence: "
                   f"{does.get(n.role, 'it writes records without compare-and-set')}, so an ad may be analysed "
                   "without a record or a completed record deleted: upgrade or stop it")
            for n in nodes if n.fence is None and n.state != "gone"}


class Pullers:
    """The two checks over one doctor run: :meth:`first` after the stranded check filled the consumer infos,
    :meth:`confirm` in the second look (:attr:`suspect`: whether it is needed)."""

    def __init__(self, js: JetStreamContext, registry: Registry, partitions: int, aging_step: float) -> None:
        self._js, self._registry, self._partitions, self._step = js, registry, partitions, aging_step
        self._unpulled: dict[int, str] = {}
        self._disagree: dict[str, str] = {}
        self._clocks: dict[str, str] = {}
        self._unfenced: dict[str, str] = {}

    @property
    def suspect(self) -> bool:
        return bool(self._unpulled or self._disagree or self._clocks or self._unfenced)

    async def _nodes(self, stats: ReadStats) -> list[NodeInfo] | None:
        stats.api_calls += 1
        try:
            return await self._registry.list()
        except GameadError as exc:  # the registry's own trouble is the registry check's to report
            log.debug("doctor: registry listing: %s", exc.message)
            return None

    async def _unpulled_now(self, nodes: Sequence[NodeInfo], parts: Iterable[int], stats: ReadStats) -> dict[int, str]:
        """Partition → detail, for each of ``parts`` with an ad past its promised wait, when no worker pulls."""
        why = nobody_pulls(nodes, self._partitions)
        out: dict[int, str] = {}
        if why is None:
            return out
        now = clock.now()
        for p in parts:
            depths = []
            for level in names.LEVELS:
                stats.api_calls += 2
                try:
                    with nats_boundary():
                        depths.append(await level_depth(self._js, level, now, p))
                except (GameadError, nats.errors.Error) as exc:
                    log.debug("doctor: priority %d of partition %d: %r", level, p, exc)
            if (late := late_text(depths, self._step)) is not None:
                out[p] = f"{late}; {why}"
        return out

    async def first(self, infos: Mapping[tuple[int, int], ConsumerInfo], stats: ReadStats) -> None:
        """The first reading: ``infos`` as the stranded check read them (which partitions hold pending ads),
        the registry, and the heads of the partitions that hold some when no worker pulls them."""
        nodes = await self._nodes(stats)
        if nodes is None:
            return
        waiting = [p for p, n in sorted(pending_by_partition(infos).items()) if n]
        self._unpulled = await self._unpulled_now(nodes, waiting, stats) if waiting else {}
        self._disagree = disagreeing(nodes, self._partitions)
        self._clocks = clocks_off(nodes)
        self._unfenced = unfenced(nodes)

    async def confirm(self, stats: ReadStats, unpulled_ads: Finding, partitions_disagree: Finding,
                      clock_offset: Finding | None = None, unfenced_node: Finding | None = None) -> None:
        """The second reading: what it shows and the first did goes into the findings (items: the work streams,
        the node ids)."""
        if not self.suspect:
            return
        nodes = await self._nodes(stats)
        if nodes is None:
            return
        for p, why in (await self._unpulled_now(nodes, sorted(self._unpulled), stats)).items():
            add(unpulled_ads, names.work_stream(p), why)
        for node_id, why in disagreeing(nodes, self._partitions).items():
            if node_id in self._disagree:
                add(partitions_disagree, node_id, why)
        for node_id, why in clocks_off(nodes).items():
            if node_id in self._clocks and clock_offset is not None:
                add(clock_offset, node_id, why)
        for node_id, why in unfenced(nodes).items():
            if node_id in self._unfenced and unfenced_node is not None:
                add(unfenced_node, node_id, why)


__all__ = ["Pullers", "clocks_off", "unfenced", "disagreeing", "late_text", "nobody_pulls", "pending_by_partition"]
