"""The pure half of a doctor run: what one look found (:class:`Look`), which ads break which rule
(:func:`judge`), the repair actions a confirmed finding calls for (:func:`actions_for`), in which order they run
(:data:`REPAIR_ORDER`), and the one-line :func:`summary`. No I/O: ``diagnose`` reads, this module decides.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gamead_core import names
from gamead_core.config import GameadSettings
from gamead_core.doctor.checks import Facts, Rules, WorkMsg, classify
from gamead_core.doctor.model import KIND_BY_CODE, Finding, Note, Report

#: Most items (ad ids, messages, objects) one kind keeps for the repair; its count stays exact beyond it.
MAX_ITEMS = 100_000


@dataclass
class Diagnosis:
    """A report, and the repair actions its findings call for (``[kind, item, fence, …]``, see
    :mod:`gamead_core.doctor.repair`), in the order they should run."""

    report: Report
    actions: list[list[Any]] = field(default_factory=list)


@dataclass
class Look:
    """What one look at a set of ads found: work messages per ad id, the facts of their records (``None``: no
    record; the first look judges each as it reads it and keeps none, :mod:`gamead_core.doctor.records`), DLQ
    entry counts, the stream sequence of each ad's current DLQ entry, and the ads whose current entry cannot be read."""

    work: dict[str, list[WorkMsg]] = field(default_factory=lambda: defaultdict(list))
    records: dict[str, Facts | None] = field(default_factory=dict)
    entries: dict[str, int] = field(default_factory=dict)
    entry_seq: dict[str, int] = field(default_factory=dict)
    unreadable_entries: set[str] = field(default_factory=set)
    #: ad id → its current DLQ entry's ``sourceSeq`` and ``deadAt`` (epoch s), read by the second look
    entry_from: dict[str, tuple[int | None, float]] = field(default_factory=dict)
    #: ad id → the API that withdrew it (its key's delete marker's ``Gamead-Withdrawn``), from the key listing
    withdrawn: dict[str, str] = field(default_factory=dict)


def rules_of(settings: GameadSettings) -> Rules:
    """The doctor's :class:`Rules` from the settings (attempts budget, overdue grace, ack wait, time limit)."""
    return Rules(max_attempts=settings.worker.max_attempts, overdue_after=settings.doctor.overdue_after,
                 ack_wait=settings.queue.ack_wait, task_timeout=settings.worker.task_timeout)


def judge(look: Look, now: float, rules: Rules, *, work_whole: bool) -> dict[str, list[str]]:
    """Ad id → codes of what it breaks, for every ad whose record was read (``now``: epoch seconds). When the
    work stream was not read whole (``work_whole`` false), "no message" cannot be told (the message may be in
    the part not read): not judged. Data no repair can act on is named as what it is (attack31b F3): a record whose
    body names another ad is ``record_key_mismatch`` alone (every other rule would judge that other ad's state),
    the unreadable entry of an ad with no record ``unreadable_dlq_entry`` (no record can be made from it)."""
    out: dict[str, list[str]] = {}
    for ad_id, facts in look.records.items():
        if codes := judge_one(look, ad_id, facts, now, rules, work_whole=work_whole):
            out[ad_id] = codes
    return out


def judge_one(look: Look, ad_id: str, facts: Facts | None, now: float, rules: Rules, *,
              work_whole: bool) -> list[str]:
    """What ``ad_id`` breaks, its record's ``facts`` given (None: no record) and its messages and DLQ entries
    from ``look`` (see :func:`judge`); [] when healthy."""
    if facts is not None and facts.id != ad_id:
        return ["record_key_mismatch"]
    codes = classify(facts, look.work.get(ad_id, []), look.entries.get(ad_id, 0), now, rules)
    if ad_id in look.unreadable_entries:
        codes = ["unreadable_dlq_entry" if c == "entry_without_record" else c for c in codes]
    if not work_whole:
        codes = [c for c in codes if c != "no_message"]
    if facts is None and look.work.get(ad_id):  # withdrawn: its client was told "not queued" (fix34b item 2)
        codes.append("analysed_without_record" if ad_id in look.withdrawn else "message_without_record")
    return codes


def unsettled(suspects: dict[str, list[str]], again: Look, *, work_whole: bool) -> str | None:
    """Why some suspects of the first look were neither confirmed nor cleared by the second (``again``), for the
    report's ``partial`` (doctor36: before, such a suspect was dropped without a word); None when every one was
    settled. A suspect is unsettled when its record was not read again (the run's ``doctor.scan_time`` ran out,
    or it could not be decoded), or when its ``no_message`` was not judged again because the second listing of
    the work streams was cut short. Pure."""
    unread = sum(ad_id not in again.records for ad_id in suspects)
    no_msg = 0 if work_whole else sum("no_message" in codes for ad_id, codes in suspects.items()
                                      if ad_id in again.records)
    parts = []
    if unread:
        parts.append(f"{unread} suspect ad(s) whose record could not be read again")
    if no_msg:
        parts.append(f"{no_msg} ad(s) seen without a message whose work stream could not be listed whole again")
    if not parts:
        return None
    return f"second look: {' and '.join(parts)}: neither reported nor cleared (run the doctor again)"


def actions_for(code: str, ad_id: str, look: Look) -> list[list[Any]]:
    """The repair actions of one confirmed finding (none for kinds the repair leaves alone)."""
    kind = KIND_BY_CODE[code]
    if kind.repair is None:
        return []
    facts = look.records.get(ad_id)
    revision = facts.revision if facts is not None else 0
    seqs = [m.seq for m in look.work.get(ad_id, [])]
    if code in ("no_message", "dead_without_entry"):
        return [[code, ad_id, revision]]
    if code == "budget_spent":
        return [[code, ad_id, revision, seqs]]
    if code in ("dead_with_message", "completed_with_message", "failed_with_message"):
        return [[code, ad_id, seq] for seq in seqs]
    if code in ("failed_with_entry", "entry_of_completed", "entry_of_live_ad", "entry_without_record"):
        return [[code, ad_id, look.entry_seq.get(ad_id, 0)]]
    return []


def suspected(code: str, first: list[str]) -> bool:
    """Whether a code the second look found was suspected by the first (``first``: its codes for that ad): the same
    code, or an unreadable entry the first look (which reads no entry) took for an ``entry_without_record``."""
    return code in first or (code == "unreadable_dlq_entry" and "entry_without_record" in first)


def detail_for(code: str, ad_id: str, look: Look) -> str | None:
    """What to do about a finding no repair acts on, for its ad (None for the others). Pure."""
    if code == "unreadable_dlq_entry":
        return (f"DLQ seq {look.entry_seq.get(ad_id, '?')} is not an entry: remove it with "
                f"gamead dlq purge {ad_id} --yes")
    if code == "analysed_without_record":
        seqs = ", ".join(str(m.seq) for m in look.work.get(ad_id, [])[:5])
        return (f"withdrawn by API {look.withdrawn.get(ad_id, '?')[:120]} (GET /ads/{ad_id} answers 404, its client "
                f"told 'not queued: safe to resend'), yet its message waits in its work stream (seq {seqs})")
    facts = look.records.get(ad_id)
    if code == "record_key_mismatch" and facts is not None:
        return (f"its record names ad {facts.id[:40]}: GET /ads/{ad_id} answers that ad; delete the key "
                f"(nats kv del {names.ADS_BUCKET} {ad_id}) or write the ad's own record back")
    return None


def add(finding: Finding | Note, item: str, detail: str | None = None) -> None:
    """Count ``item`` under a finding or note; keep it (and its detail) while fewer than :data:`MAX_ITEMS`."""
    finding.count += 1
    if len(finding.items) < MAX_ITEMS:
        finding.items.append(item)
        if detail:
            finding.details[item] = detail


#: The order repairs run in: the topology first (everything else needs it), then the DLQ before the work
#: stream (an entry is written before a message it backs up is removed).
REPAIR_ORDER = {code: i for i, code in enumerate((
    "topology_missing", "job_lease_expired", "lease_stuck", "entry_without_record", "dead_without_entry", "no_message",
    "stranded", "budget_spent", "entry_of_completed", "failed_with_entry", "entry_of_live_ad",
    "dead_with_message", "completed_with_message", "failed_with_message",
))}


def summary(report: Report) -> str:
    """One line: ``3 problems: no_message 2, dead_without_entry 1`` or ``every invariant holds``."""
    parts = [f"{f.kind.code} {f.count}{'+' if f.lower_bound else ''}" for f in report.findings if f.count]
    if not parts:
        return "every invariant holds" if report.complete else "no problem found in what was read (partial)"
    total = sum(f.count for f in report.findings)
    return f"{total} problem{'s' if total != 1 else ''}: " + ", ".join(parts)
