"""What a dead process leaves behind, for the doctor: messages stranded on a level (``gamead_core.worker.mover``'s
reading) and operator jobs whose runner's lease expired (``gamead_core.jobs.policy.lease_expired``).

Each check has a first reading (cheap: counts, a list of jobs) and a confirmation after ``doctor.settle``
that writes the finding and its repair actions; :class:`~gamead_core.doctor.diagnose.Doctor` runs both.
Reading errors never fail a run: a missing stream or bucket is the topology check's finding.
"""

from __future__ import annotations

import logging
from typing import Any

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.doctor.checks import WorkMsg, stranded_reading
from gamead_core.doctor.model import Finding, ReadStats
from gamead_core.doctor.verdict import MAX_ITEMS, add
from gamead_core.errors import GameadError, NotFound
from gamead_core.ids import is_job_id
from gamead_core.jobs.policy import lease_expired, lease_key, stuck_text
from gamead_core.jobs.store import JobStore
from gamead_core.queue.partitions import partition_of
from gamead_core.store.ads import AdStore
from gamead_core.times import clock_utc
from gamead_core.worker.mover import stranded, stranded_count

log = logging.getLogger(__name__)


async def stranded_on(js: JetStreamContext, level: int, stats: ReadStats, partition: int = 0,
                      infos: dict[tuple[int, int], ConsumerInfo] | None = None) -> int:
    """How many messages of priority ``level`` are stranded in work-stream ``partition`` (3 JetStream API
    calls; at most the true count: :func:`~gamead_core.worker.mover.stranded_bound`); 0 when it cannot be read. The consumer info it read goes into ``infos`` under ``(level, partition)``
    (the ack-pending check reuses it: :mod:`gamead_core.doctor.unheld`)."""
    stats.api_calls += 3
    try:
        count, info = await stranded_count(js, level, partition)
    except GameadError as exc:  # a missing stream is a topology finding; anything else: this level only
        log.debug("doctor: stranded count of level %d: %s", level, exc.message)
        return 0
    if infos is not None and info is not None:
        infos[(level, partition)] = info
    return count


async def confirm_stranded(js: JetStreamContext, settings: GameadSettings, store: AdStore,
                           levels: dict[tuple[int, int], int], work: dict[str, list[WorkMsg]], stats: ReadStats,
                           finding: Finding, actions: list[list[Any]]) -> None:
    """Count again each (level, partition) of ``levels`` (→ first count) and add what both readings agree on
    to ``finding`` (items: ad ids from the first listing ``work``, else ``seq N`` / ``<stream> seq N``) and one
    ``stranded`` action per message to ``actions`` (``["stranded", label, seq]``, plus the partition when it
    is not 0)."""
    parts = settings.queue.partitions
    ad_of = {(partition_of(ad, parts), m.seq): ad for ad, msgs in work.items() for m in msgs}
    for (level, p), count in levels.items():
        count = stranded_reading(count, await stranded_on(js, level, stats, p))
        if not count:
            continue
        try:
            seqs = await stranded(js, level, settings, store, limit=MAX_ITEMS, partition=p)
        except GameadError as exc:
            log.debug("doctor: stranded messages of level %d: %s", level, exc.message)
            seqs = []
        finding.count += count
        for seq in seqs[:count]:
            label = ad_of.get((p, seq)) or (f"seq {seq}" if not p else f"{names.work_stream(p)} seq {seq}")
            if len(finding.items) < MAX_ITEMS:
                finding.items.append(label)
                finding.details[label] = f"priority {level}, work-stream seq {seq}" + (
                    f" of partition {p}" if p else "")
            actions.append(["stranded", label, seq] + ([p] if p else []))


async def expired_jobs(js: JetStreamContext, now: float, grace: float, stats: ReadStats,
                       nodes: Any = None) -> dict[str, Any]:
    """The jobs not finished whose lease ended more than ``grace`` seconds (``jobs.lease``) before ``now`` (Unix
    seconds): every API node's sweeper had time to take them over; and those with no live runner while their
    lease lasts (:func:`~gamead_core.jobs.policy.stuck_text`, attack31b F2b; ``nodes``: a
    :class:`~gamead_core.doctor.leases.Leases`, whose ``registered()`` lists the live nodes once some job is
    unfinished; a runner's node missing from a registry bucket younger than ``registry.ttl`` may be live:
    :meth:`~gamead_core.doctor.leases.Leases.young`, lease51). Each id → its lease as read
    (:func:`~gamead_core.jobs.policy.lease_key`). {} when unreadable."""
    try:
        jobs = await (await JobStore.open(js)).list(limit=10**9)
    except GameadError:
        return {}
    stats.api_calls += 2
    stats.jobs = len(jobs)
    live = any(not j.state.terminal for j in jobs)
    registered = await nodes.registered(stats) if nodes is not None and live else None
    unproven = any(_for_absence(j, now, grace, registered) for j in jobs) and await _young(nodes, registered, stats)
    return {j.id: lease_key(j) for j in jobs
            if lease_expired(j, now - grace) or stuck_text(j, now, grace, registered, unproven) is not None}


def _for_absence(job: Any, now: float, grace: float, registered: set[str] | None) -> bool:
    """Whether ``job`` is named for its runner not listed in the registry, and for that alone (pure)."""
    return stuck_text(job, now, grace, registered) is not None and stuck_text(job, now, grace, registered, True) is None


async def _young(nodes: Any, registered: set[str] | None, stats: ReadStats) -> bool:
    """Whether the registry's bucket is too young to prove a runner's node gone (``nodes``: as for
    :func:`expired_jobs`; False when the registry was not read): read once some job would be named for it."""
    return nodes is not None and registered is not None and bool(await nodes.young(stats))


async def confirm_jobs(js: JetStreamContext, job_ids: dict[str, Any], grace: float, stats: ReadStats,
                       finding: Finding, actions: list[list[Any]], nodes: Any = None) -> None:
    """Read each job of ``job_ids`` again; one still past its lease by ``grace`` seconds goes into ``finding``
    with a ``job_lease_expired`` action; one still with no live runner (``stuck_text``) and its lease as first read
    (its runner renewed nothing meanwhile) too, with the revision read (the repair takes it over only at that).
    ``nodes``: as for :func:`expired_jobs`."""
    if not job_ids:
        return
    try:
        store = await JobStore.open(js)
    except GameadError:  # the bucket went meanwhile: a topology finding of the next run
        return
    registered = await nodes.registered(stats) if nodes is not None else None
    unproven: bool | None = None  # the registry bucket's youth (_young): read at the first job named
    now = clock.now()
    for job_id, first in job_ids.items():
        stats.api_calls += 1
        try:
            job, revision = await store.get(job_id)
        except NotFound:
            continue
        if not is_job_id(job.id):
            continue
        if lease_expired(job, now - grace):
            add(finding, job.id,
                f"{job.kind.value} job {job.state.value}, runner {job.runner}, lease ended "
                f"{clock_utc(job.lease_until, now)}")
            actions.append(["job_lease_expired", job.id, None])
        elif lease_key(job) == tuple(first) and stuck_text(job, now, grace, registered) is not None:
            if unproven is None and _for_absence(job, now, grace, registered):
                unproven = await _young(nodes, registered, stats)
            if (why := stuck_text(job, now, grace, registered, bool(unproven))) is not None:
                add(finding, job.id, f"{why}. Fix: gamead doctor --repair (takes it over)")
                actions.append(["job_lease_expired", job.id, revision])
