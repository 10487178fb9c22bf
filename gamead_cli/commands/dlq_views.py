"""``gamead dlq`` for people: the DLQ's entries and the jobs as tables, one job's view and outcome in words,
and what a dry run or an empty count says (``-o json`` keeps the wire documents)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from gamead_cli.api_words import cli_words
from gamead_cli.fitted import FittedTable
from gamead_cli.formats import (clip, count_text, counted, empty_text, flags_given, month_time, page_now, plain,
                                replay_count, rows_shown, time_column, utc_when, window_text)
from gamead_cli.program import follow_up
from gamead_cli.tui.view import DLQ_LEGEND, Legend
from gamead_core.errors import NotFound

if TYPE_CHECKING:
    from gamead_cli.client import ApiClient

#: the columns of `gamead dlq list`, and the order a narrower terminal drops them in (k9s-like: whole labels and
#: ids, fewer columns; gamead_cli.fitted); the message wraps, at least MESSAGE_MIN cells wide, or goes too
ENTRY_COLUMNS = ("ID", "P", "ATT", "ERROR", "MESSAGE", time_column("DEAD AT"), "TITLE")
ENTRY_DROPS = ("TITLE", "ATT", "P", time_column("DEAD AT"), "MESSAGE")
MESSAGE_MIN = 20
ERROR_CLASS_SHOWN = 32  #: longest error class a row shows (up to 200: gamead dlq show has it whole)
#: longest message a row shows, on one line, wrapped in at most ~5 lines of MESSAGE (up to 4,000 characters: gamead
#: dlq show has it whole); before (attack47 F4) a 4,000-character message made its row ~80 lines long
MESSAGE_SHOWN = 240


def skipped_words(reasons: dict[str, int], of: int | None = None) -> str:
    """A job's ``skippedReasons`` (reason → entries) in words, each reason then its count: ``the ad was purged here
    before: a purge is final — 5; …``, never a count glued to a sentence (``5 the ad was purged …``). One reason
    for all the ``of`` skipped the line has counted already: the reason alone (newcomer58: ``skipped 5: already in
    the DLQ, identical — 5``). Pure."""
    if of is not None and len(reasons) == 1 and list(reasons.values()) == [of]:
        return next(iter(reasons))
    return "; ".join(f"{why} — {count_text(n)}" for why, n in reasons.items())


def attempts_cell(entry: dict[str, Any]) -> str:
    """ATT of ``dlq list``: the attempts, and for a repeat death how often it was replayed (``3 ↻1``: 3 attempts
    since its one replay; ``dlq show`` says when). Pure."""
    replays = replay_count(entry)
    return f"{entry['attempts']} ↻{replays}" if replays else str(entry["attempts"])


def entries_table(body: dict[str, Any]) -> RenderableType:
    """One row per entry; every label and id whole at any width: the message wraps (its first MESSAGE_SHOWN
    characters), the title, the attempts, the priority and the time go first when the terminal is narrow, then the
    message (``gamead dlq show ID`` or ``-o json`` have everything)."""
    rows = [(plain(e["adId"]), str(e["priority"]), attempts_cell(e), plain(clip(e["errorClass"], ERROR_CLASS_SHOWN)),
             plain(clip(e["errorMessage"], MESSAGE_SHOWN)), plain(month_time(e["deadAt"])), plain(clip(e["title"], 30)))
            for e in body["items"]]
    return FittedTable(ENTRY_COLUMNS, rows, flex="MESSAGE", drop=ENTRY_DROPS, flex_max=60, wrap=True,
                       flex_min=MESSAGE_MIN, right=("P", "ATT"))


def list_view(body: dict[str, Any], flags: dict[str, Any] | None = None) -> Any:
    from rich.console import Group

    more = " · more exist; the next page:" if body.get("nextCursor") else ""  # the command follows the table
    scanned = body.get("scanned")
    stopped = ("" if body.get("complete", True)
               else f" · read {counted(scanned, 'entry', 'entries')}, then stopped at "
                    f"{_bound(body)}")
    notes = [t for t in (full_text(body), unreadable_text(body.get("unreadable") or [])) if t is not None]
    full = ": full" if body.get("full") else ""
    if not body.get("items"):
        if _in_dlq(body) == 0 and not body.get("nextCursor"):
            return empty_text("the DLQ is empty", None, "0 entries")
        said = window_text(body)  # the absolute window an age (--since 2m) stood for
        empty = empty_text("no DLQ entries", flags, f"{said + '; ' if said else ''}{count_text(_in_dlq(body))} in "
                                                    f"the DLQ{full}{stopped}{more}")
        return Group(empty, *notes)
    at_least = "" if body.get("complete", True) else "at least "  # the count stopped with the read
    after_cursor = bool((flags or {}).get("--cursor"))
    of = f"{at_least}{count_text(body['total'])} matching" if body.get("total") is not None else None
    shown = rows_shown(body["count"], of, body.get("offset"), after_cursor) + (
        "" if of is not None else " (the matches before the cursor were not all counted: dlq.scan_limit / "
                                  "dlq.scan_time)")
    window = f" · {window_text(body)}" if window_text(body) else ""  # what an age (--since 2m) stood for
    said = plain(f"{shown}{window} ({count_text(_in_dlq(body))} in the DLQ{full}){more}{stopped}")
    table = entries_table(body)
    return Group(table, Legend(table, DLQ_LEGEND), said, *notes)  # what P and ATT are, as gamead top --once says


def full_text(body: dict[str, Any]) -> Text | None:
    """The line saying that the DLQ of a ``GET /v1/dlq`` answer is full (``full``, ``maxMsgs``), what that does and
    what to do; None when it is not (or an older API does not say). Pure (tui42 F4: ``dlq list`` said ``300 in the
    DLQ`` while every failing ad waited queued, as only ``gamead workers``, ``top`` and ``doctor`` said)."""
    if not body.get("full"):
        return None
    from gamead_core.full_stores import DLQ_REMEDY  # (imports nats-py: only for a full DLQ)

    return Text(f"the DLQ is full ({count_text(_in_dlq(body))} of dlq.max_msgs {count_text(body.get('maxMsgs'))}): "
                f"every new dead-lettering is refused and the ads it refuses wait queued; {DLQ_REMEDY}",
                style="bold red")


def _bound(answer: dict[str, Any]) -> str:
    """The bound that stopped a DLQ read, as the API names it (``stoppedAt``), or both settings for an API that
    does not say (attack38b F7: "scan limit" was printed for reads stopped by ``dlq.scan_time``)."""
    return str(answer.get("stoppedAt") or "dlq.scan_limit / dlq.scan_time")


def unreadable_text(unreadable: list[dict[str, Any]]) -> Text | None:
    """The line naming the entries a ``GET /v1/dlq`` page could not read (``unreadable``: ``{seq, adId}``), with the
    command that removes them; None when there are none. Pure (attack31b F3: such an entry was counted in the DLQ's
    size and shown nowhere)."""
    if not unreadable:
        return None
    n = len(unreadable)
    ids = " ".join(str(u.get("adId")) for u in unreadable[:5]) + (" …" if n > 5 else "")
    seqs = ", ".join(str(u.get("seq")) for u in unreadable[:5])
    return Text(f"{n}{'+' if n >= 100 else ''} entr{'y' if n == 1 else 'ies'} cannot be read as a DLQ entry (not "
                f"shown; DLQ seq {seqs}): remove with gamead dlq purge {ids} --yes", style="yellow")


def _in_dlq(body: dict[str, Any]) -> Any:
    """The whole DLQ's size of a ``GET /v1/dlq`` answer (``inDlq``; an older API's ``total`` meant it)."""
    return body.get("inDlq", body.get("total"))


def job_summary(job: dict[str, Any]) -> str:
    """``replayed 28 of 28 matched · completed 28 · dead again 0 · skipped 0``: every
    figure says what it is (same wording as ``gamead_core.jobs.policy.summary``)."""
    from gamead_core.jobs.model import Job
    from gamead_core.jobs.policy import summary

    return summary(Job.model_validate(job))


def job_view(job: dict[str, Any], now: datetime | None = None, again: str = "") -> Any:
    """One job for people, as the other ``show``/``get`` views: labels, the outcome in words (every figure says
    what it is), times in UTC with their age; ``-o json`` keeps the wire names. An API path the job's texts name
    is said as the gamead command, with ``again`` (:func:`gamead_cli.api_words.cli_words`)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("job", plain(job.get("id", "")))
    grid.add_row("kind", plain(job.get("kind", "")))
    state = str(job.get("state") or "?")
    shown = Text(state, style="green" if state == "succeeded" else "cyan" if state in ("queued", "running")
                 else "red")
    if job.get("phase") and job.get("phase") != "done":
        shown.append(f" ({job['phase']})", style="dim")
    grid.add_row("state", shown)
    grid.add_row("outcome", plain(job_summary(job)))
    if said := window_text((job.get("selection") or {}).get("filter") or {}):  # what --since 1h stood for (newcomer33 F3)
        grid.add_row("window", plain(said))
    if job.get("stopReason"):
        grid.add_row("stopped because", plain(cli_words(job["stopReason"], again)))
    if job.get("waiting"):  # an action that waits, and until when (a repair releasing a stuck lease)
        grid.add_row("waiting", plain(cli_words(job["waiting"], again)))
    if reasons := job.get("skippedReasons") or {}:
        grid.add_row("skipped", plain(skipped_words(reasons)))
    if job.get("rate"):
        grid.add_row("rate", f"{job['rate']:g} ads/s")
    if job.get("startedBy"):
        grid.add_row("started by", plain(job["startedBy"]))
    now = page_now(now)  # its ages from one instant (attack43b F3)
    for label, key in (("created", "createdAt"), ("started", "startedAt"), ("finished", "finishedAt")):
        if job.get(key):
            grid.add_row(label, utc_when(job[key], now=now))
    if job.get("resumes"):
        grid.add_row("resumed", f"{job['resumes']} time(s) after its API node died")
    return grid


def would_view(preview: dict[str, Any], verb: str) -> Any:
    """A dry run's answer: ``28 entries would be purged`` (``at least`` when the count stopped early), then the
    window its ``since``/``until`` stand for: ``(dead before 2026-12-04 01:46:12 UTC)``."""
    n = preview["matched"]
    at_least = "" if preview.get("complete", True) else "at least "
    past = " (the job's limit: more entries match, left in the DLQ)" if preview.get("pastLimit") else ""
    return plain(f"{at_least}{counted(n, 'entry', 'entries')} would be {verb}{past}{_window(preview)}"
                 f"{_not_in_dlq(preview)}")


#: the flag of each field of a DLQ filter a replay or purge that matched nothing names (since/until: its window)
FILTER_FLAGS = {"errorClass": "--error-class", "message": "--message", "priority": "--priority"}


def none_matched_view(preview: dict[str, Any], verb: str, flt: dict[str, Any] | None = None) -> Any:
    """A real replay's or purge's answer when its count found nothing: ``no entries matched: nothing purged``,
    or with the filter ``flt`` (the request's ``filter``) named as ``dlq list`` names it
    (:func:`~gamead_cli.formats.flags_given`), ``no DLQ entries match --priority 5: nothing purged`` (newcomer56:
    the filter went unsaid), never the dry run's wording (nothing was asked, nothing was done); then its window
    (:func:`would_view`)."""
    given = flags_given({flag: (flt or {}).get(key) for key, flag in FILTER_FLAGS.items()})
    what = f"no DLQ entries match {given}" if given else "no entries matched"
    return plain(f"{what}: nothing {verb}{_window(preview)}{_not_in_dlq(preview)}")


def _window(body: dict[str, Any]) -> str:
    """`` (dead before 2026-12-04 01:46:12 UTC)``: the window of a filter's ``since``/``until``; "" for none."""
    said = window_text(body)
    return f" ({said})" if said else ""


def _not_in_dlq(preview: dict[str, Any]) -> str:
    if preview.get("notInDlqIds"):
        return f" (not in the DLQ: {named_ids(preview['notInDlqIds'])})"
    return f" ({count_text(preview['notInDlq'])} of the ids are not in the DLQ)" if preview.get("notInDlq") else ""


NAMED_IDS = 10  #: most ids a line names (``-o json`` has them all)


def named_ids(ids: list[str]) -> str:
    """``a, b, c`` or, past :data:`NAMED_IDS`, the first ones ``and 990 more (-o json lists them)``. Pure."""
    more = len(ids) - NAMED_IDS
    return ", ".join(ids[:NAMED_IDS]) + (f" and {more:,} more (-o json lists them)" if more > 0 else "")


JOB_COLUMNS = ("JOB", "KIND", "STATE", "PHASE", "DONE/MATCHED", "SUMMARY", "BY", time_column("CREATED"))
JOB_DROPS = ("BY", "PHASE", time_column("CREATED"))


def jobs_table(body: dict[str, Any], flags: dict[str, Any] | None = None) -> RenderableType:
    """One row per job; labels and job ids whole at any width: the summary wraps, who started it, the phase
    and the creation time go first when the terminal is narrow. ``no jobs`` when there is none."""
    if not body.get("items"):
        return empty_text("no jobs", flags, "a job is kept jobs.retention, 7 days by default")
    rows = []
    for j in body["items"]:
        c = j.get("counts") or {}
        rows.append((plain(j["id"]), plain(j["kind"]), plain(j["state"]), plain(j.get("phase") or ""),
                     f"{count_text(c.get('done', 0))}/{count_text(c['matched'])}" if "matched" in c
                     else "-",  # not selected: no 0/0
                     plain(job_summary(j)), plain(j.get("startedBy") or ""),
                     plain(month_time(j.get("createdAt")))))
    return FittedTable(JOB_COLUMNS, rows, flex="SUMMARY", drop=JOB_DROPS, flex_max=80, wrap=True,
                       right=("DONE/MATCHED",))


def dlq_entry(client: ApiClient, ad_id: str) -> dict[str, Any]:
    """``GET /v1/dlq/ID``: ``dlq show ID``'s entry. Raises :class:`NotFound` saying where to look: the hint ``its DLQ
    entry: gamead dlq show ID`` run once the ad was replayed (or purged) said only ``no dead-lettered ad with id …``,
    exit 4, and nothing of the ad (newcomer59)."""
    try:
        return client.request("GET", f"/v1/dlq/{quote(ad_id, safe='')}")
    except NotFound as exc:
        raise NotFound(f"{exc.message}: not in the DLQ now (replayed, purged or never dead); the ad itself: "
                       f"{follow_up('ads', 'get', ad_id, again=client.again)}", details=exc.details) from None
