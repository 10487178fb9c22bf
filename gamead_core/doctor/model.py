"""What the doctor reports: the kinds of broken invariant it knows (a catalogue, one entry per kind), one
finding per kind found, and the whole report (the wire form of ``GET /v1/doctor``, camelCase).

Each kind names the invariant of ARCHITECTURE.md ("Invariants", 1-4) it breaks, says in one line what is
wrong, and what ``gamead doctor --repair`` does about it, or why it does nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from gamead_core.clock_offset import OFFSET_LIMIT

ItemKind = Literal["ad", "object", "job"]
#: Seconds past ``completedAt + ack_wait`` a lost ack stays the note ``ack_lost``: a worker's next pull of the ad's
#: level (:mod:`gamead_core.doctor.ack_lost`; the note's text below says it)
ACK_LOST_MARGIN: Final = 5.0
#: ``error``: a broken invariant of the ads or of what every node needs; ``warning``: the ads still flow, a
#: promise of the README does not hold meanwhile (``redis_unwritable``: rate limits are per node, no cache)
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Kind:
    """One kind of broken invariant."""

    code: str  #: stable, e.g. ``no_message``
    invariant: int  #: 1-4, as numbered in ARCHITECTURE.md "Invariants"
    what: str  #: one line: what is wrong with each item of this kind
    repair: str | None  #: what ``--repair`` does; None: not repaired (``why_not`` says why)
    why_not: str | None = None
    items: ItemKind = "ad"
    severity: Severity = "error"


def _k(code: str, invariant: int, what: str, repair: str | None, why_not: str | None = None,
       items: ItemKind = "ad", severity: Severity = "error") -> Kind:
    return Kind(code, invariant, what, repair, why_not, items, severity)


#: Every kind, in the order of the report (and of repairs: topology first, it is what everything else needs).
KINDS: Final[tuple[Kind, ...]] = (
    _k("topology_missing", 4, "a stream, consumer or bucket gamead needs is missing",
       "recreated with gamead's config (what the API nodes' topology watch does every few seconds)",
       items="object"),
    _k("topology_incompatible", 4, "a stream, consumer or bucket exists with a config gamead cannot use", None,
       "never overwritten: it may hold data or belong to someone else; delete it and it is recreated",
       items="object"),
    _k("store_full", 4, "a JetStream store (memory or file) is used up to its limit: the streams stored there "
       "refuse writes", None, "not a fault of the data: free room in that store (delete what fills it) or raise its "
       "limit (max_memory_store / max_file_store, or the account's)", items="object"),
    _k("registry_unwritable", 4, "the registry bucket refuses writes: no node can write its heartbeat, so every "
       "worker takes no work (it fences itself) and the queue waits", None,
       "nothing of gamead's to repair: fix what refuses the write (the detail says it; a JetStream memory store "
       "at its limit: delete what fills it); the nodes beat and work again by themselves", items="object"),
    _k("store_unwritable", 4, "JetStream's file store does not store a write to the work streams or the ad bucket "
       "(a full disk, a store at its limit, nats-server's file-size limit): every submit is refused (503) and no "
       "worker can record an outcome", None, "nothing of gamead's to repair: free space, or lift nats-server's "
       "file-size limit (the detail says which its log names, where, and whether nats-server must then be "
       "restarted: a full disk leaves each stream refusing writes until it restarts); every node recovers by "
       "itself once writes are stored", items="object"),
    _k("redis_unwritable", 4, "Redis (redis.url) refuses writes: ads still flow (submits, reads, analysis), but "
       "rate limits are counted per API node instead of shared, and GET /ads/{id} bypasses the cache", None,
       "nothing of gamead's to repair: fix what refuses the write (the detail says it: free memory or raise "
       "maxmemory, point redis.url at the primary, …); each API node uses Redis again once its health check's "
       "write is stored", items="object", severity="warning"),
    _k("records_filling", 4, "the ad-record bucket holds records.refuse_at or more of records.max_bytes and the "
       "records it would drop next include live ads' (queued or retrying): the API refuses new ads (503 "
       "records_full) so their budgets are not lost", None, "nothing of gamead's to repair: intake resumes as workers "
       "finish the oldest ads; for more room raise records.max_bytes (applied in place at the next start)",
       items="object", severity="warning"),
    _k("dlq_full", 2, "the DLQ (stream GAMEAD_DLQ) holds dlq.max_msgs entries and refuses every new one: ads that "
       "fail for good wait queued (error DlqFull, deadLetterError) instead of being dead-lettered, retried with "
       "back-off; every other ad is analysed as usual", None, "nothing of gamead's to repair: free room (gamead dlq "
       "export, then gamead dlq purge) or raise dlq.max_msgs (applied at the next start); the waiting ads are "
       "dead-lettered by themselves once there is room", items="object", severity="warning"),
    _k("no_message", 1, "record queued or processing, and no message of the ad in its work stream",
       "re-published from the record, keeping its analysis budget (or dead-lettered if the budget is spent)"),
    _k("stranded", 3, "message in a work stream past its consumer's delivery limit (no consumer delivers it)",
       "queued again (re-published, budget kept), dead-lettered if its analysis budget is spent, or removed if the "
       "ad is final"),
    _k("budget_spent", 1, "record queued with its analysis budget spent, due and not taken by a worker for longer "
       "than doctor.overdue_after", "dead-lettered (the DLQ copy, then the record `dead`, then its message removed)"),
    _k("duplicate_messages", 1, "more than one message of the ad in its work stream", None,
       "a worker acknowledges an obsolete copy when it is delivered (the record names the message it runs)"),
    _k("dead_without_entry", 2, "record `dead` with no DLQ entry",
       "a DLQ entry is written from the record (only if the ad still has none)"),
    _k("several_entries", 2, "more than one DLQ entry for one ad", None,
       "the DLQ keeps one entry per ad (max_msgs_per_subject 1); a stream with another limit is a topology problem"),
    _k("dead_with_message", 2, "record `dead` and a message of the ad still in its work stream",
       "the message is removed (the DLQ entry stays: replay it to run the ad again)"),
    _k("completed_with_message", 2, "record `completed` and a message of the ad still in its work stream",
       "the message is removed (a worker would acknowledge it unanalysed)"),
    _k("failed_with_message", 2, "record `failed` (purged) and a message of the ad still in its work stream",
       "the message is removed (a purge is final)"),
    _k("failed_with_entry", 2, "record `failed` (purged) and a DLQ entry still there",
       "the DLQ entry is removed (a purge is final)"),
    _k("entry_of_completed", 3, "DLQ entry of an ad whose record is `completed`",
       "the DLQ entry is removed (the ad completed after it was dead-lettered)"),
    _k("entry_of_live_ad", 3, "DLQ entry of an ad whose record is queued or processing",
       "the DLQ entry is removed when the record says it was replayed from that entry (an unfinished replay); "
       "otherwise left alone", None),
    _k("entry_without_record", 3, "DLQ entry of an ad that has no record",
       "the `dead` record is created from the entry (GET /ads/{id} then answers it)"),
    _k("analysed_without_record", 1, "ad its API withdrew (its client was told 'not queued: safe to resend', GET "
       "/ads/{id} answers 404) whose message waits in a work stream (a queuing that missed the create fence: a "
       "reaper of a gamead before it, a hand-made publish): a worker of a gamead before this one analyses it all the "
       "same, its record made again from the message", None, "a worker of this gamead acknowledges it at its "
       "delivery without analysing it or making its record (GET /ads/{id} stays 404, as its client was told); while "
       "workers of an older gamead run, remove the message (nats stream rmm STREAM SEQ, the detail names the "
       "sequence) or the ad may run behind its client's back, twice if it resent it"),
    _k("unreadable_dlq_entry", 3, "DLQ message that cannot be read as an entry (written by something other than "
       "gamead?), of an ad with no record: counted in the DLQ's size, shown by no listing", None,
       "there is nothing to make a record from: remove it with `gamead dlq purge ID --yes` (the detail names it)"),
    _k("record_key_mismatch", 1, "record whose body names another ad than its key: GET /ads/{id} answers the other "
       "ad, and the ad's own state is unknown", None, "which ad it holds is not gamead's to guess, and every repair "
       "is fenced by the ad's own record: delete the key (the detail names the command; a waiting message of the ad "
       "gets its record again from the message) or write the ad's record back"),
    _k("record_unreadable", 1, "record that cannot be read as an ad record (not JSON, not a record, or a value a "
       "newer gamead writes) of a live ad (a message waiting in its work stream, or a DLQ entry): GET /ads/{id} "
       "answers 409 record_unreadable and listings skip it", None, "a worker rebuilds it from the ad's message at "
       "its next delivery; with only a DLQ entry, delete the key and --repair makes the dead record from the entry "
       "(the detail names the command); find what writes to the bucket besides gamead"),
    _k("unpulled_ads", 1, "ads wait in a work stream that no live worker pulls from (none runs, or every one's "
       "queue.partitions differs from the queue's): nothing will take them", None,
       "nothing in the data is wrong: start a worker with the queue's queue.partitions (a worker Deployment at 0: "
       "`gamead scale status` says why; `gamead scale set` overrides it)", items="object"),
    _k("partitions_disagree", 4, "a running node's queue.partitions differs from the queue's (an API node takes no "
       "submit; a worker exits, and its restart is refused while the setting stays)", None,
       "a process's setting: restart it with the queue's queue.partitions (README: Partitions)", items="object"),
    _k("clock_offset", 4, f"a running node's host clock differs from nats-server's by more than {OFFSET_LIMIT:g} s "
       "(clock_offset.OFFSET_LIMIT): gamead corrects it (every time it stamps or compares is nats-server's), but the "
       "host's own times are off: its logs' timestamps, its startedAt, anything else on it that reads the clock", None,
       "nothing of gamead's to repair: fix the host's time (NTP: chronyc tracking / timedatectl); the detail says by "
       "how much and which way", items="object", severity="warning"),
    _k("unfenced_node", 4, "a running node of a gamead before the create fence (its registry entry has no `fence`): "
       "during a rolling upgrade its reaper queues a dead API's records again without compare-and-set, or its API "
       "withdraws an unanswered create by a blind delete, so an ad may be analysed without a record "
       "(analysed_without_record) or a completed record deleted", None,
       "nothing of gamead's to repair: finish the upgrade (replace or stop each node named)", items="object",
       severity="warning"),
    _k("job_lease_expired", 4, "operator job still queued or running whose runner's lease expired longer than "
       "jobs.lease ago (no API node took it over), or with no live runner while its lease lasts: its runner's node "
       "is gone, or its leaseUntil lies further ahead than 10 × jobs.lease",
       "taken over by the API node running the repair: resumed, or ended `interrupted`/`cancelled` (jobs.max_resumes)",
       items="job"),
    _k("lease_stuck", 4, "a leader lease (the reaper's, the autoscaler's, the suspect ads') held by a node that is "
       "gone, renewed ahead of now, or with a TTL no node writes, or the suspect lease held by a live worker that runs "
       "no suspect ad with it: until a node takes it over, nobody reaps (a dead node's ads), heals the DLQ, scales or "
       "runs a suspect ad alone",
       "released by compare-and-set at the revision read: the suspect lease at once when a fresh look at its "
       "holder's registry entry proves no run needs it (left if its holder holds its ad by then), any other once it "
       "stood unchanged for its own TTL: a live node takes it at its next step", items="object"),
)

KIND_BY_CODE: Final[dict[str, Kind]] = {k.code: k for k in KINDS}

#: Things worth knowing that break no invariant: reported as notes, never change the exit code.
NOTES: Final[dict[str, str]] = {
    "topology_limits": "a limit differs from this API node's config (a start raises the shared limits (work streams, "
                       "level consumers, DLQ, audit, records, registry, jobs) to its own, lowers them only with "
                       "queue.lower_limits; updates the others)",
    "obsolete_object": "an object gamead no longer uses (`--repair` deletes it)",
    "message_without_record": "message waiting in a work stream whose record is missing (the worker recreates "
                              "the record from the message: a 202 is never lost)",
    "unreadable_message": "message in a work stream outside its ad's partition (a worker terminates it on delivery)",
    "poison_message": "message waiting in a work stream that no API published: no ad id the API issues, or its ad has "
                      "no record and its body is not that ad's record as the API writes it (another ad's, or outside "
                      "the API's rules). A worker terminates it on delivery and creates nothing from it (counted in "
                      "gamead_poison_messages_total); find what publishes to gamead.ads.* besides the API",
    "poison_terminated": "work-stream messages workers terminated as not an ad since the stack was made (nothing was "
                         "analysed or created): the count, and the last one's stream sequence, reason, subject, size, "
                         "headers and first bytes; find what publishes to gamead.ads.* besides the API",
    "unreadable_record": "record that cannot be read as an ad record (written by something other than gamead?) of an "
                         "ad with no message and no DLQ entry (one with either is the finding record_unreadable)",
    "unusable_shared_value": "a shared value every node reads (KV gamead_scaling / gamead_leases) that gamead "
                             "cannot use: read as none (a counter as 0) until its next write replaces it",
    "ack_pending_unheld": "deliveries acknowledgement-pending at JetStream that no live worker holds (by stream "
                          "sequence: pending in two readings 0.5 s apart and announced by no worker meanwhile, held "
                          "or handed back in its last 30 s; timed retries left out): a dead worker's last "
                          "deliveries, not announced before it died, or ads a busy worker handed back over 30 s ago "
                          "(its log: 'handing back … beyond the buffer's bound') or keeps in a long poll's inbox "
                          "(its unstartedSince) that no pull took yet; "
                          "JetStream redelivers a dead worker's within its consumer's ack_wait (below)",
    "ack_lost": "completed or dead ad whose message is still ack-pending under the very delivery that ended it, "
                "younger than its consumer's ack_wait: that delivery's acknowledgement was lost (a stream leader's "
                "fail-over); JetStream delivers it again and a worker acknowledges it unanalysed. Past ack_wait "
                f"(+{ACK_LOST_MARGIN:g} s) it is the error completed_with_message or dead_with_message (--repair "
                "removes the message either way; a dead ad's DLQ entry stays)",
    "dead_letter_unfinished": "queued or processing ad with a DLQ entry made from its one message, still "
                              "ack-pending, younger than its consumer's ack_wait: its worker died between the DLQ "
                              "entry and the record (a SIGKILL, a crash); JetStream delivers it again and a worker "
                              f"ends it. Past ack_wait (+{ACK_LOST_MARGIN:g} s) it is the error entry_of_live_ad",
}


@dataclass
class Finding:
    """Every item of one kind found (ids, object labels or job ids), checked twice."""

    kind: Kind
    items: list[str] = field(default_factory=list)  #: every item found, up to the repair cap
    count: int = 0  #: how many (may exceed ``len(items)``)
    lower_bound: bool = False  #: True when the read stopped early: there may be more
    details: dict[str, str] = field(default_factory=dict)  #: per item (a topology problem's reason…)

    def wire(self, sample: int) -> dict[str, Any]:
        k = self.kind
        out: dict[str, Any] = {
            "kind": k.code,
            "invariant": k.invariant,
            "what": k.what,
            "count": self.count,
            "countIsLowerBound": self.lower_bound,
            "itemKind": k.items,
            "severity": k.severity,
            "sample": self.items[:sample],
            "repair": k.repair,
            "notRepairedBecause": k.why_not,
        }
        if self.details:
            out["details"] = {i: self.details[i] for i in self.items[:sample] if i in self.details}
        return out


@dataclass
class Note:
    """A note: ``count`` things of its kind, ``items`` a sample of them (``details`` per item). ``where``: the
    items are not counted things but where they are (``ack_pending_unheld`` counts deliveries and names the levels
    they are on), so nothing is "more" than the sample (attack37 F2: "… and 14 more" of 5 levels)."""

    code: str
    items: list[str] = field(default_factory=list)
    count: int = 0
    details: dict[str, str] = field(default_factory=dict)
    where: bool = False

    def wire(self, sample: int) -> dict[str, Any]:
        """The note as the report carries it: ``more`` is how many counted things the sample leaves unnamed."""
        shown = self.items[:sample]
        more = len(self.items) - len(shown) if self.where else max(0, self.count - len(shown))
        out: dict[str, Any] = {"kind": self.code, "what": NOTES[self.code], "count": self.count,
                               "sample": shown, "more": more}
        if self.details:
            out["details"] = {i: self.details[i] for i in self.items[:sample] if i in self.details}
        return out


@dataclass
class ReadStats:
    """What one run read, for the report and the benchmark. ``payloadBytes``: message bodies the NATS
    connection received during the run (nats-py's ``in_bytes``: headers and protocol lines not counted; on an
    API node, its other traffic meanwhile included); ``apiCalls``: JetStream API requests made, direct gets of
    whole records aside (``recordReads``)."""

    records: int = 0  #: record keys listed (headers only)
    work_messages: int = 0  #: summed over ``work_streams``
    #: the work streams listed, one per partition (``queue.partitions``; a missing one is not listed)
    work_streams: list[str] = field(default_factory=list)
    dlq_entries: int = 0
    record_reads: int = 0  #: whole records read (direct gets) at the first look, each once
    #: whole records read again at the second look (a finding's, from the stream leader): not more records read
    #: (newcomer58: 4 dead ads without an entry said "8 of them read whole")
    record_rereads: int = 0
    api_calls: int = 0
    payload_bytes: int = 0
    jobs: int = 0

    def wire(self) -> dict[str, Any]:
        return {"records": self.records, "workMessages": self.work_messages,
                "workStreams": list(self.work_streams), "dlqEntries": self.dlq_entries,
                "recordReads": self.record_reads, "recordRereads": self.record_rereads, "apiCalls": self.api_calls,
                "payloadBytes": self.payload_bytes, "jobs": self.jobs}


@dataclass
class Report:
    """One doctor run. ``ok`` when every invariant holds *and* everything was read (``complete``)."""

    checked_at: str
    elapsed: float = 0.0
    settle: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)  #: why the read stopped early (empty: it read everything)
    read: ReadStats = field(default_factory=ReadStats)
    #: the work streams do not fit this node's ``queue.partitions`` (one line, both settings): the per-ad checks
    #: were not run (they would look for each ad in the wrong partition) and ``--repair`` refuses. None: they fit
    topology_changed: str | None = None

    @property
    def complete(self) -> bool:
        return not self.partial

    @property
    def ok(self) -> bool:
        return self.complete and not any(f.count for f in self.findings)

    def finding(self, code: str) -> Finding | None:
        return next((f for f in self.findings if f.kind.code == code), None)

    def wire(self, sample: int) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "complete": self.complete,
            "partial": list(self.partial),
            "checkedAt": self.checked_at,
            "elapsedSeconds": round(self.elapsed, 3),
            "settleSeconds": self.settle,
            "problems": sum(f.count for f in self.findings),
            "findings": [f.wire(sample) for f in self.findings if f.count],
            "notes": [n.wire(sample) for n in self.notes if n.count],
            "read": self.read.wire(),
            "topologyChanged": self.topology_changed,
        }


__all__ = ["ACK_LOST_MARGIN", "KINDS", "KIND_BY_CODE", "NOTES", "Finding", "Kind", "Note", "ReadStats", "Report"]
