"""The doctor's reading of whole records, in memory bounded whatever the store holds (attack31b F9).

The rules read a handful of a record's fields (:class:`~gamead_core.doctor.checks.Facts`: status, attempts, a
few times, the revision), never the ad's texts, analysis or error, which make up nearly all of it (a record at
the field limits is ~15 KB as JSON, ~25 KB decoded). So :func:`read_facts` reduces each record to its facts as
soon as its direct get answers and drops the rest, and the first look (:func:`first_look`) judges each ad there
and then and keeps only what it found. At most ``doctor.concurrency`` whole records (64) are in memory at any
moment, however many a run reads. What a run keeps: the suspects and their codes, the ``retryAt`` of each queued
record waiting out a retry (8 bytes each, for :mod:`gamead_core.doctor.unheld`), and in the second look the
facts of its suspects (a few hundred bytes each). The key listings (ids, ~100 bytes each) are kept as before.

Before, every record read was kept whole until the run ended: 20,000 dead ads of ~15 KB took a fresh API node
from 87 MB to 584 MB RSS (665 MB in the drill, 1.1 GB when each was a finding), past the 512 MiB limit of
``manifests/base/api.yaml``. Measured with ``benchmarks/doctor_memory.py`` (README, "What `gamead doctor` checks").
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from gamead_core import clock
from gamead_core.doctor.checks import Facts, Rules
from gamead_core.doctor.model import ReadStats
from gamead_core.doctor.read import ReadBudget
from gamead_core.doctor.verdict import Look, judge_one
from gamead_core.errors import NotFound
from gamead_core.models import AdStatus
from gamead_core.store.ads import AdStore
from gamead_core.store.unreadable import UnreadableRecord

#: Called with an ad id and the facts of its record (None: the ad has no record) as each read answers.
OnFacts = Callable[[str, Facts | None], None]


async def _facts(store: AdStore, ad_id: str, consistent: bool) -> Facts | None:
    """The facts of ``ad_id``'s record (None: no record); the decoded record is dropped on return. Raises
    :class:`ValidationError` for a record that is not an ad record."""
    try:
        versioned = await store.get(ad_id, consistent=consistent)
    except NotFound:
        return None
    return Facts.of(versioned.record, versioned.revision)


async def read_facts(store: AdStore, ids: Iterable[str], *, concurrency: int, stats: ReadStats, on_facts: OnFacts,
                     budget: ReadBudget | None = None, consistent: bool = False, again: bool = False) -> list[str]:
    """Read the record of each of ``ids`` (``concurrency`` direct gets in flight; ``consistent``: ask the stream
    leader, see ``AdStore.get``) and call ``on_facts(id, facts)`` as each answers, keeping nothing of it. Returns
    the ids whose record could not be decoded. Stops at the budget's deadline (``budget.partial`` says so); NATS
    errors leave as gamead errors. ``again``: the second look's reads, counted in ``stats.record_rereads``."""
    pending = iter(ids)
    unreadable: list[str] = []
    state = {"read": 0, "stopped": False}

    async def reader() -> None:
        for ad_id in pending:
            if budget is not None and budget.left() <= 0:
                if not state["stopped"]:
                    state["stopped"] = True
                    budget.stop(f"records: read {state['read']} of them, then stopped at doctor.scan_time")
                return
            if again:  # the second look's: counted apart (ReadStats.record_rereads)
                stats.record_rereads += 1
            else:
                stats.record_reads += 1
            try:
                facts = await _facts(store, ad_id, consistent)
            except (ValidationError, UnreadableRecord):  # a record that is no ad record (attack31a F8)
                unreadable.append(ad_id)
                continue
            state["read"] += 1
            on_facts(ad_id, facts)

    await asyncio.gather(*(reader() for _ in range(max(1, concurrency))))
    return unreadable


@dataclass
class FirstLook:
    """What the first look at the records found: ad id → the codes it breaks, the ``retryAt`` (epoch seconds)
    of every ``queued`` record that has one, and the ids of records that are not ad records."""

    suspects: dict[str, list[str]] = field(default_factory=dict)
    retry_at: array[float] = field(default_factory=lambda: array("d"))
    unreadable: list[str] = field(default_factory=list)


async def first_look(store: AdStore, ids: Iterable[str], look: Look, rules: Rules, *, work_whole: bool,
                     concurrency: int, stats: ReadStats, budget: ReadBudget) -> FirstLook:
    """Read the records of ``ids`` and judge each ad as its record arrives
    (:func:`~gamead_core.doctor.verdict.judge_one`, with ``look``'s messages and DLQ entries, at the time of its
    reading); no record is kept (module doc). Errors as :func:`read_facts`."""
    out = FirstLook()

    def on_facts(ad_id: str, facts: Facts | None) -> None:
        if facts is not None and facts.status == AdStatus.QUEUED and facts.retry_at is not None:
            out.retry_at.append(facts.retry_at.timestamp())
        if codes := judge_one(look, ad_id, facts, clock.now(), rules, work_whole=work_whole):
            out.suspects[ad_id] = codes

    out.unreadable = await read_facts(store, ids, concurrency=concurrency, stats=stats, on_facts=on_facts,
                                      budget=budget)
    return out


__all__ = ["FirstLook", "OnFacts", "first_look", "read_facts"]
