"""One doctor run: read everything, apply the rules, wait ``doctor.settle``, check every finding again, report.

The order of the reads matters (ads move while the doctor reads): the work stream is listed *before* the
record bucket, as most paths write in the opposite order (a keyed submit publishes, then records; a worker
records ``completed``, then acks; a dead-lettering copies to the DLQ, records ``dead``, then acks). So a record
read is never older than the message list, but for publishes after the listing: what the second look reads (the
stream's tail past the first listing, and every candidate's record, messages and DLQ entry again). An un-keyed
submit records, then publishes: its record read between the two is a ``no_message`` suspect, cleared by the
second look's whole listing. A finding is reported only if the second look still finds it: a busy, healthy
system reports nothing.

Cost, for a store of R records, B waiting ads (the work streams), D dead-lettered ads and F findings:

* JetStream API calls: 3 (topology) + 5 × 2 × N (consumers and their subject counts, N = ``queue.partitions``) + 2
  per listing (each work stream, records) + ⌈D / 100,000⌉ (DLQ subjects) + 1 (jobs) + a direct get per record + 4
  (registry probe) + 2 × (N + 1) (the write check, :mod:`gamead_core.doctor.writable`; twice if it fails); + 1
  registry listing when some delivery is ack-pending, and 5 × N + 1 more when more are than the live workers hold
  (:mod:`gamead_core.doctor.unheld`, a note); + 1 registry listing, and 5 per partition + 1 more when ads wait
  where no live worker pulls or a node's ``queue.partitions`` differs (:mod:`gamead_core.doctor.pullers`); + 2
  and a get per lease key, 1 registry listing when a lease is live (+ 1 stream info when one, or a job's, is named
  for a holder not listed: :mod:`gamead_core.doctor.leases`);
* records read whole: the non-final ones (≈ B + D) and those of ads with a message or a DLQ entry; completed
  and failed ones are only listed (~200 bytes each). Each is judged as it arrives, only a suspect's facts kept
  (:mod:`gamead_core.doctor.records`): memory does not grow with the records' size;
* the second look: per finding, one record read (one per unreadable record of a live ad), one DLQ read and
  one read per message it names; one ``CONSUMER.INFO`` per level holding a completed or dead ad's message
  (:mod:`gamead_core.doctor.ack_lost`: a lost ack is a note until ``ack_wait``; none the unheld check read again).

So a run costs ≈ 200 bytes × R + (0.5-3 KB) × (B + D): the store's *open* work, not its history (bench_doctor.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.doctor import writable
from gamead_core.doctor.ack_lost import FINDINGS as ACK_LOST_FINDINGS
from gamead_core.doctor.ack_lost import AckLost
from gamead_core.doctor.checks import WorkMsg, records_to_read
from gamead_core.doctor.keys import Keys, list_keys
from gamead_core.doctor.leases import Leases
from gamead_core.doctor.leftovers import confirm_jobs, confirm_stranded, expired_jobs, stranded_on
from gamead_core.doctor.model import KINDS, NOTES, Finding, Note, ReadStats, Report
from gamead_core.doctor.poison import BAD_ID, id_is_poison, note_terminated, note_unrecorded
from gamead_core.doctor.read import ReadBudget, list_messages, subject_counts
from gamead_core.doctor.records import FirstLook, first_look, read_facts
from gamead_core.doctor.shared import unusable_values
from gamead_core.doctor.pullers import Pullers
from gamead_core.doctor.unheld import Unheld, naks_unheard
from gamead_core.doctor.unreadable import UnreadableRecords
from gamead_core.doctor.verdict import (MAX_ITEMS, REPAIR_ORDER, Diagnosis, Look, actions_for, add, detail_for, judge,
                                        rules_of, summary, suspected, unsettled)
from gamead_core.errors import TopologyMissing
from gamead_core.models import utc_iso
from gamead_core.queue.atomic import server_takes_atomic
from gamead_core.queue.connection import nats_boundary
from gamead_core.queue.dlq import DeadLetters
from gamead_core.queue.partitions import partition_of
from gamead_core.queue.repartition import ads_held
from gamead_core.queue.topology import (Verdict, Wanted, is_missing, limit_differs, partition_change, plan,
                                        read_topology, wanted_topology)
from gamead_core.queue.write_check import is_check_subject
from gamead_core.stats.dlq_room import dlq_full_detail
from gamead_core.stats.records_room import room_detail
from gamead_core.store.ads import AdStore
from gamead_core.worker.naks_seen import NaksSeen

_DLQ_PREFIX = f"{names.DLQ_SUBJECT_PREFIX}."
_WHOLE = ("no_message", "message_without_record", "analysed_without_record")  #: codes a whole listing confirms


async def _confirm_missing(js: JetStreamContext, w: Wanted, stats: ReadStats) -> bool:
    """True if ``w`` really is missing (one INFO call: a cluster may list incompletely)."""
    stats.api_calls += 1
    return await is_missing(js, w)


class Doctor:
    """Runs :meth:`diagnose` over one NATS connection (an API node's, or a CLI's own)."""

    def __init__(self, nc: NATS, js: JetStreamContext, settings: GameadSettings, store: AdStore | None = None) -> None:
        self.nc = nc
        self.js = js
        self.settings = settings
        self.store = store or AdStore(nc, js)
        self.dlq = DeadLetters(js)
        self.rules = rules_of(settings)
        self._work_whole = True  #: the last listing of the work streams read all of them
        self._parts = range(settings.queue.partitions)  #: the work-stream partitions (queue.partitions)

    async def diagnose(self, *, settle: float | None = None) -> Diagnosis:
        """Check every invariant (module doc). Raises a :class:`GameadError` only when NATS cannot be read at
        all; a missing stream or bucket is a finding, a listing cut short by the budget makes the report
        partial."""
        naks = NaksSeen(say=naks_unheard)  # from before the first read: each nak a retry unheld leaves out (chaos48)
        await naks.start(self.nc, self.settings.nats.request_timeout)
        try:
            return await self._diagnose(settle, naks)
        finally:
            await naks.stop()

    async def _diagnose(self, settle: float | None, naks: NaksSeen) -> Diagnosis:
        ds = self.settings.doctor
        settle = ds.settle if settle is None else settle
        started = time.monotonic()
        bytes_before = int(self.nc.stats.get("in_bytes", 0))
        budget = ReadBudget.of(ds.scan_time, ds.scan_limit)
        report = Report(checked_at=utc_iso(clock.now(), "milliseconds"), settle=settle)
        stats = report.read
        found = {k.code: Finding(k) for k in KINDS}
        notes = {code: Note(code) for code in NOTES}
        actions: list[list[Any]] = []

        # 1. the topology, read-only (gamead_core.queue.topology's own plan)
        snapshot = await read_topology(self.js)
        stats.api_calls += snapshot.calls
        verdicts = plan(wanted_topology(self.settings, atomic=server_takes_atomic(self.js)), snapshot)
        missing: list[Verdict] = []
        for v in verdicts:
            if v.state == "missing" and await _confirm_missing(self.js, v.wanted, stats):
                missing.append(v)
            elif v.state == "incompatible":
                add(found["topology_incompatible"], v.wanted.label, v.difference.incompatible)
            elif v.state == "limits":
                add(notes["topology_limits"], v.wanted.label, limit_differs(v, snapshot))
        absent = {v.wanted.stream for v in missing if v.wanted.kind != "consumer"}
        for code, items in (await writable.check(self.js, stats, self.settings.nats.request_timeout, settle=settle,
                                                 partitions=len(self._parts))).items():
            for item, detail in items.items():  # JetStream takes the writes every node needs (attack27b F1, 29b F1)
                add(found[code], item, detail)
        if (room := await room_detail(self.js, self.settings)) is not None:  # intake refused (attack31a F1)
            add(found["records_filling"], f"bucket {names.ADS_BUCKET}", room)
        if (full := await dlq_full_detail(self.js)) is not None:  # dead-letterings wait (attack31a F5)
            add(found["dlq_full"], f"stream {names.DLQ_STREAM}", full)
        change = await ads_held(self.js, partition_change(self.settings.queue.partitions, snapshot.work_streams()))
        if change is not None:
            add(found["topology_incompatible"], "queue.partitions", change.describe())
        for name in names.OBSOLETE_STREAMS:
            if name in snapshot.streams:
                add(notes["obsolete_object"], f"stream {name}", "unused since the level consumers have "
                    "no delivery limit (the reaper's sweep finds stranded messages instead)")
        if change is not None:  # each ad would be looked for in the wrong partition: no per-ad check, no action
            report.topology_changed = change.stale_node()
            return self._finish(report, found, notes, [], budget, started, bytes_before)

        # 2. the work streams (one per partition), then 3. the record keys (order: the module doc), 4. DLQ subjects
        first = Look()
        unreadable: list[str] = []
        work_last: dict[int, int] = {}
        for p in self._parts:
            if names.work_stream(p) not in absent:
                stats.work_streams.append(names.work_stream(p))
                stops = len(budget.partial)
                work_last[p] = await self._list_work(first.work, unreadable, budget, stats, partition=p)
                self._work_whole = self._work_whole and len(budget.partial) == stops
        keys = Keys()
        if names.ADS_BUCKET_STREAM not in absent:  # each key by its last message (rewrites during the read: doctor36)
            keys = await list_keys(self.js, budget, stats, first.withdrawn)
        if names.DLQ_STREAM not in absent:
            first.entries = await self._dlq_counts(names.DLQ_SUBJECT_WILDCARD, stats)
        stats.dlq_entries = sum(first.entries.values())
        for label in unreadable:  # poison: no ad id the API issues (gamead_core.doctor.poison); else a partition's
            poison = label.startswith("poison ")
            add(notes["poison_message" if poison else "unreadable_message"], label.removeprefix("poison "),
                BAD_ID if poison else None)
        await note_terminated(self.js, notes["poison_terminated"])
        for item, detail in (await unusable_values(self.js, stats)).items():  # attack31b F5
            add(notes["unusable_shared_value"], item, detail)

        # 5. whole records where the rules need them, 6. the rules, each ad as its record arrives (none kept)
        wanted = records_to_read(keys.other, keys.final, first.work, first.entries)
        del keys  # only the ids to read are kept
        seen = FirstLook()
        if names.ADS_BUCKET_STREAM not in absent:
            seen = await first_look(self.store, wanted, first, self.rules, work_whole=self._work_whole,
                                    concurrency=ds.concurrency, stats=stats, budget=budget)
        unread = UnreadableRecords(self.store, seen.unreadable, first, notes["unreadable_record"])  # attack31a F8
        now, suspects = clock.now(), seen.suspects

        # 7. levels with stranded messages (and ack-pending deliveries nobody holds), 8. jobs whose lease expired
        infos: dict[tuple[int, int], Any] = {}
        levels = {(lvl, p): n for p in self._parts for lvl in names.LEVELS
                  if (n := await stranded_on(self.js, lvl, stats, p, infos))}
        unheld = Unheld(self.nc, self.js, self.settings, naks)
        await unheld.first(infos, seen.retry_at, stats)
        pullers = Pullers(self.js, unheld.registry, len(self._parts), self.settings.queue.aging_step)  # attack28b F3
        await pullers.first(infos, stats)
        leases = Leases(self.js, self.settings, unheld.registry)  # held by a node that is gone (attack31b F2)
        await leases.first(stats)
        grace = self.settings.jobs.lease
        jobs = await expired_jobs(self.js, now, grace, stats, leases) if names.JOBS_BUCKET not in {
            v.wanted.name for v in missing} else {}

        # the second look, after the system had time to finish what it was doing
        if suspects or levels or jobs or missing or any(c.suspect for c in (unheld, pullers, leases, unread)):
            await asyncio.sleep(settle)
            await unread.confirm(stats, found["record_unreadable"])
            await unheld.read_again(stats)  # its consumer infos, the lost-ack check's too
            await self._second_look(first, suspects, work_last, budget, stats, found, notes, actions, unheld.again)
            await unheld.confirm(stats, notes["ack_pending_unheld"], notes["ack_lost"].count)
            await pullers.confirm(stats, found["unpulled_ads"], found["partitions_disagree"], found["clock_offset"],
                                  found["unfenced_node"])
            await confirm_stranded(self.js, self.settings, self.store, levels, first.work, stats,
                                   found["stranded"], actions)
            await confirm_jobs(self.js, jobs, grace, stats, found["job_lease_expired"], actions, leases)
            await leases.confirm(stats, found["lease_stuck"], actions)
            for v in missing:
                if await _confirm_missing(self.js, v.wanted, stats):
                    add(found["topology_missing"], v.wanted.label, "missing")
                    actions.append(["topology_missing", v.wanted.label, None])
        actions.sort(key=lambda a: REPAIR_ORDER.get(a[0], len(REPAIR_ORDER)))
        actions += [["obsolete_object", label.split(" ", 1)[1], None] for label in notes["obsolete_object"].items]
        return self._finish(report, found, notes, actions, budget, started, bytes_before)

    def _finish(self, report: Report, found: dict[str, Finding], notes: dict[str, Note], actions: list[list[Any]],
                budget: ReadBudget, started: float, bytes_before: int) -> Diagnosis:
        """The report's findings, notes and figures, with its repair ``actions``."""
        stats = report.read
        report.partial = list(budget.partial)
        for f in found.values():
            f.lower_bound = bool(report.partial) and f.kind.items == "ad"
        report.findings = [found[k.code] for k in KINDS]
        report.notes = [notes[code] for code in NOTES]
        report.elapsed = time.monotonic() - started
        stats.payload_bytes = int(self.nc.stats.get("in_bytes", 0)) - bytes_before
        return Diagnosis(report, actions)

    # --- reading -------------------------------------------------------------------------------------

    async def _list_work(self, work: dict[str, list[WorkMsg]], unreadable: list[str], budget: ReadBudget,
                         stats: ReadStats, start_seq: int | None = None, partition: int = 0,
                         counted: bool = True) -> int:
        """``counted``: add the messages to ``stats.work_messages`` (the first listing only)."""
        stream = names.work_stream(partition)  # a message outside its ad's partition is only noted
        def on_msg(subject: str, headers: dict[str, str] | None, seq: int, at: float) -> None:
            if is_check_subject(subject):
                return  # a storage write check's message stored late: never an ad (the probe purges it)
            stats.work_messages += counted
            ad_id = (headers or {}).get(names.HDR_AD_ID)
            if id_is_poison(ad_id) or partition_of(str(ad_id), len(self._parts)) != partition:
                unreadable.append(f"{'poison ' * id_is_poison(ad_id)}{stream} seq {seq}")
                return
            try:
                level = names.level_of_subject(subject)
            except (IndexError, ValueError):
                level = 0
            work[ad_id].append(WorkMsg(seq, level, ad_id, at))

        try:
            return await list_messages(self.nc, self.js, stream, names.work_wildcard(partition),
                                       on_msg=on_msg, budget=budget, stats=stats, what=f"work stream {stream}",
                                       timeout=self.settings.nats.request_timeout, start_seq=start_seq)
        except TopologyMissing:
            return 0

    async def _dlq_counts(self, subjects: str, stats: ReadStats) -> dict[str, int]:
        try:
            counts = await subject_counts(self.nc, names.DLQ_STREAM, subjects,
                                          timeout=self.settings.nats.request_timeout, stats=stats)
        except TopologyMissing:
            return {}
        return {s[len(_DLQ_PREFIX):]: int(n) for s, n in counts.items() if s.startswith(_DLQ_PREFIX) and n}

    async def _second_look(self, first: Look, suspects: dict[str, list[str]], work_last: dict[int, int],
                           budget: ReadBudget,
                           stats: ReadStats, found: dict[str, Finding], notes: dict[str, Note],
                           actions: list[list[Any]], infos: dict[tuple[int, int], Any]) -> None:
        if not suspects:
            return
        again = Look(withdrawn=first.withdrawn)
        if any(c in _WHOLE for codes in suspects.values() for c in codes):
            # "no message": only a whole listing again can say so (a replica answering the first one may
            # have lagged behind a publish)
            stops = len(budget.partial)
            for p in self._parts:
                await self._list_work(again.work, [], budget, stats, partition=p, counted=False)
            self._work_whole = self._work_whole and len(budget.partial) == stops
            again.work = defaultdict(list, {ad: msgs for ad, msgs in again.work.items() if ad in suspects})
        else:  # whether the messages the first listing saw are still there, and any published since
            for p in self._parts:
                await self._list_work(again.work, [], budget, stats, start_seq=work_last.get(p, 0) + 1, partition=p,
                                      counted=False)
            again.work = defaultdict(list, {ad: msgs for ad, msgs in again.work.items() if ad in suspects})
            for ad_id in suspects:
                for m in first.work.get(ad_id, []):
                    if await self._message_there(m.seq, stats, ad_id):
                        again.work[ad_id].append(m)
        for msgs in again.work.values():
            msgs.sort(key=lambda m: m.seq)
        # records from the stream leader, and each ad's DLQ entries
        await read_facts(self.store, suspects, concurrency=self.settings.doctor.concurrency, stats=stats,
                         on_facts=again.records.__setitem__, budget=budget, consistent=True, again=True)
        for ad_id in suspects:
            stats.api_calls += 1
            current = await self.dlq.current(ad_id)
            again.entries[ad_id] = 0 if current is None else 1
            if current is not None:
                again.entry_seq[ad_id] = current.seq
                if current.entry is None:  # not an entry: no record can be made from it (attack31b F3)
                    again.unreadable_entries.add(ad_id)
                else:  # a dead-lettering its worker's death cut short: a note until ack_wait (attack58)
                    again.entry_from[ad_id] = (current.entry.source_seq, current.entry.dead_at.timestamp())
                if first.entries.get(ad_id, 0) > 1:
                    again.entries[ad_id] = sum((await self._dlq_counts(names.dlq_subject(ad_id), stats)).values())
        if (why := unsettled(suspects, again, work_whole=self._work_whole)) is not None:
            budget.stop(why)  # said, not guessed: the report is partial (doctor36)
        confirmed = judge(again, clock.now(), self.rules, work_whole=self._work_whole)
        acks = AckLost(self.js, len(self._parts), infos)  # an ended ad's lost ack: a note until ack_wait (chaos48 F3)
        for ad_id in sorted(confirmed):
            for code in confirmed[ad_id]:
                if not suspected(code, suspects[ad_id]):
                    continue  # new since the first look: the next run judges it
                if code == "message_without_record":  # or poison, when its body is not its ad's record
                    await note_unrecorded(self.js, names.work_stream(partition_of(ad_id, len(self._parts))),
                                          again.work.get(ad_id, []), ad_id, stats, notes)
                    continue
                if code in ACK_LOST_FINDINGS:  # a lost ack, a dead-lettering cut short: a note until ack_wait
                    await acks.judge(ad_id, again, stats, found[code], notes)
                else:
                    add(found[code], ad_id, detail_for(code, ad_id, again))
                actions.extend(actions_for(code, ad_id, again))

    async def _message_there(self, seq: int, stats: ReadStats, ad_id: str) -> bool:
        stats.api_calls += 1
        with nats_boundary():
            try:
                await self.js.get_msg(names.work_stream(partition_of(ad_id, len(self._parts))), seq)
            except nats.js.errors.NotFoundError:
                return False
        return True


async def diagnose(nc: NATS, js: JetStreamContext, settings: GameadSettings, *, settle: float | None = None,
                   store: AdStore | None = None) -> Diagnosis:
    """:meth:`Doctor.diagnose` in one call."""
    return await Doctor(nc, js, settings, store).diagnose(settle=settle)


__all__ = ["MAX_ITEMS", "Diagnosis", "Doctor", "diagnose", "rules_of", "summary"]
