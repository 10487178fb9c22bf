"""The views of records for people: ``gamead ads list`` (its table, its counts, the command of the next page), one
ad record with its analysis or its error (``ads get``, ``submit --wait``), one DLQ entry (``dlq show``). Each takes
the API's JSON and returns a rich renderable; :func:`gamead_cli.output.emit` prints it."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gamead_cli.fitted import FittedTable
from gamead_cli.formats import (
    clip,
    counted,
    command_text,
    count_text,
    empty_text,
    page_now,
    plain,
    replay_count,
    rows_shown,
    short_datetime,
    short_time,
    time_column,
    utc_when,
)
from gamead_cli.program import follow_up

STATUS_STYLES: dict[str, str] = {
    "queued": "cyan",
    "processing": "yellow",
    "completed": "green",
    "failed": "red",
    "dead": "bold red",
}


def status_text(status: str | None) -> Text:
    status = status or "?"
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _score_style(score: float) -> str:
    if score >= 7:
        return "green"
    if score >= 4:
        return "yellow"
    return "red"


def score_bar(score: float, *, width: int = 20, maximum: float = 10.0) -> Text:
    """``███████░░░ 7.0`` — a fixed-width bar for a 0–10 score."""
    filled = max(0, min(width, round(width * float(score) / maximum)))
    bar = Text("█" * filled, style=_score_style(float(score)))
    bar.append("░" * (width - filled), style="dim")
    return bar


#: the columns of `gamead ads list`, and the order a narrower terminal drops them in (gamead_cli.fitted: the id
#: is never cut; the title takes what is left, at least TITLE_MIN cells, or goes too)
#: SCORE/10: the analysis's effectivenessScore, 0 (worst) to 10 (best), as ``ads get`` says ``Effectiveness 4.2 / 10``
AD_COLUMNS = ("ID", "STATUS", "PRI", "SCORE/10", time_column("SUBMITTED"), "TITLE")
AD_DROPS = (time_column("SUBMITTED"), "SCORE/10", "PRI", "TITLE")
TITLE_MIN = 12


def ads_table(records: Iterable[Mapping[str, Any]]) -> RenderableType:
    """One row per ad record: id, status, priority, score (``SCORE/10``: 0 worst to 10 best, ``-`` until analysed),
    submitted (UTC clock), title (genre); fitted to the terminal by :class:`gamead_cli.fitted.FittedTable` (whole
    ids, whole columns dropped as it narrows)."""
    rows = []
    for rec in records:
        ad = rec.get("ad") or {}
        analysis = rec.get("analysis") or {}
        score = analysis.get("effectivenessScore")
        rows.append((
            plain(rec.get("id", "")),
            status_text(rec.get("status")),
            plain(rec.get("priority", "")),
            Text(f"{score:.1f}", style=_score_style(score)) if score is not None else Text("-", style="dim"),
            short_datetime(rec.get("submittedAt"))[-8:],
            plain(clip(f"{ad.get('title', '')} ({ad.get('genre', '')})", 200)),
        ))
    return FittedTable(AD_COLUMNS, rows, flex="TITLE", drop=AD_DROPS, flex_max=200, flex_min=TITLE_MIN,
                       right=("PRI", "SCORE/10"), caption=None if rows else "no ads match")


def ad_list_view(body: Mapping[str, Any], flags: Mapping[str, Any] | None = None,
                 after_cursor: bool = False) -> RenderableType:
    """The answer of ``GET /ads``: a table, then how many are shown of how many match and whether more exist
    (:func:`next_page_command` says how to read them). ``no ads`` (``no ads match --status dead``, with the
    ``flags`` given: ``{"--status": "dead"}``, ``None`` values left out) when there is none. When the API's scan
    did not read every record (``complete`` false), both say it: ``among the newest 100 records
    (api.list_scan_limit)``, 100 being ``scanned``; records the API could not read (``unreadable``) are said
    after it, with their ids (attack31a F8). A page read ``after_cursor`` says which rows it holds
    (:func:`~gamead_cli.formats.rows_shown`: ``rows 501-735 of 735``, from the answer's ``offset``)."""
    items = body.get("items") or []
    among = scan_note(body)
    if not items:
        text = empty_text("no ads", flags)
        if after_cursor:  # a later page: ads exist before it (attack45 F11: it read as an empty store)
            text.append(" after the cursor", style="yellow")
        if among:
            text.append(f" {among}", style="dim")
        text.append(unreadable_note(body), style="yellow")
        return text
    count, total = body.get("count", len(items)), body.get("total")
    line = Text(rows_shown(count, None if total is None else count_text(total), body.get("offset"), after_cursor)
                + (f" {among}" if among else "") + ", newest first", style="dim")
    line.append(unreadable_note(body), style="yellow")
    if body.get("nextCursor"):
        line.append(" · more exist; the next page:", style="dim")
    return Group(ads_table(items), line)


def unreadable_note(body: Mapping[str, Any]) -> str:
    """`` · 2 records skipped: they cannot be read as ad records (01m…, 01m…; gamead doctor)`` when a ``GET /ads``
    answer counts unreadable records (``unreadable``, ``unreadableIds``), else ``""``. Pure."""
    count = body.get("unreadable") or 0
    if not count:
        return ""
    ids = ", ".join(str(i) for i in (body.get("unreadableIds") or []))
    return (f" · {count} record{'s' * (count != 1)} skipped: cannot be read as ad records"
            f" ({ids + '; ' if ids else ''}gamead doctor)")


def scan_note(body: Mapping[str, Any]) -> str:
    """``among the newest 100 records (api.list_scan_limit)`` when a ``GET /ads`` answer's scan stopped short of
    the bucket (``complete`` false; 100: its ``scanned``), else ``""`` (every record was read). Pure."""
    if body.get("complete", True):
        return ""
    return f"among the newest {count_text(body.get('scanned', 'api.list_scan_limit'))} records (api.list_scan_limit)"


def next_page_command(body: Mapping[str, Any], flags: Mapping[str, Any] | None = None, again: str = "",
                      limit: int | None = None, command: str = "ads list", limit_flag: str = "--limit",
                      default_limit: int = 50) -> str | None:
    """The exact command of the page after ``body`` (``GET /ads``, ``GET /v1/dlq``), None on the last page:
    ``gamead <command> --cursor C``, the same ``flags`` (as :func:`ad_list_view`; values shell-quoted, a
    ``True`` one as the bare flag), ``limit_flag`` with ``limit`` when not ``default_limit`` (the verb's), and
    ``again`` (the flags that reach the same API); ``gamead`` as another terminal runs it
    (:func:`gamead_cli.program.follow_up`). The caller prints it on one line (:func:`print_command`)."""
    cursor = body.get("nextCursor")
    if not cursor:
        return None
    given = "".join(f" {flag}" if value is True else f" {flag} {shlex.quote(str(value))}"
                    for flag, value in (flags or {}).items() if value not in (None, False, ""))
    more = f" {limit_flag} {limit}" if limit not in (None, default_limit) else ""
    return f"{follow_up(*command.split(), '--cursor', str(cursor))}{given}{more}{again}"


def analysis_view(analysis: Mapping[str, Any]) -> RenderableType:
    """Score, component table with bars, strengths and suggestions of one analysis."""
    score = float(analysis.get("effectivenessScore", 0.0))
    head = Text("Effectiveness ", style="bold")
    head.append(f"{score:.1f}", style=f"bold {_score_style(score)}")
    head.append(" / 10  ")
    head.append_text(score_bar(score, width=30))

    parts: list[RenderableType] = [head]
    components = analysis.get("components") or []
    if components:
        table = Table(show_edge=False, header_style="bold", pad_edge=False)
        table.add_column("COMPONENT", no_wrap=True)
        table.add_column("SCORE", justify="right")
        table.add_column("", no_wrap=True)
        table.add_column("WEIGHT", justify="right")
        table.add_column("REASON")
        for comp in components:
            c_score = float(comp.get("score", 0.0))
            table.add_row(
                plain(comp.get("name", "")),
                f"{c_score:.1f}",
                score_bar(c_score, width=10),
                f"{float(comp.get('weight', 0.0)):.0%}",
                plain(comp.get("reason", "")),
            )
        parts.extend([Text(""), table])
    for label, key, style in (
        ("Strengths", "strengths", "green"),
        ("Suggestions", "improvementSuggestions", "yellow"),
    ):
        items = analysis.get(key) or []
        if items:  # a bullet's wrapped lines start under its text, not under the bullet (regress41 F7)
            bullets = Table.grid()
            bullets.add_column(no_wrap=True)
            bullets.add_column(overflow="fold")
            for item in items:
                text = plain(item)
                text.stylize(f"bold {style}")
                bullets.add_row(Text("  • ", style=f"bold {style}"), text)
            parts.extend([Text(""), Text(label, style=f"bold {style}"), bullets])
    if version := analysis.get("analyzerVersion"):
        parts.extend([Text(""), Text(f"analyzer {version}", style="dim")])
    return Group(*parts)


def _recovered(record: Mapping[str, Any]) -> str:
    """How an ad that moved on from its last failure (``error``, kept as history) got past it: ``recovered:
    attempt 1 failed with `` (completed: its last charged attempt succeeded, so the one before failed), else
    ``replayed from the DLQ after `` (``replayOf``), else ``earlier: ``. Pure."""
    attempts = int(record.get("attempts") or 0)  # charged since the ad was (re)queued: a replay starts at 0
    if record.get("status") == "completed" and attempts >= 2:
        return f"recovered: attempt {attempts - 1} failed with "
    if record.get("replayOf") is not None:
        return "replayed from the DLQ after "
    return "earlier: "


def replays_text(replays: str) -> str:
    """``"2× from the DLQ"``, or for ``"?"`` (:func:`~gamead_cli.formats.replay_count`: a replay by older code)
    ``"from the DLQ (count unknown: by an older gamead)"``, shown beside the label ``replayed``. Pure."""
    return "from the DLQ (count unknown: by an older gamead)" if replays == "?" else f"{replays}× from the DLQ"


def ad_view(record: Mapping[str, Any], again: str = "", now: datetime | None = None) -> RenderableType:
    """One ad record: facts, then its analysis or its error."""
    ad = record.get("ad") or {}
    now = page_now(now)  # every age on the page from one instant (attack43b F3)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    facts.add_row("id", plain(record.get("id", "")))
    facts.add_row("status", status_text(record.get("status")))
    facts.add_row("priority", plain(record.get("priority", "")))
    facts.add_row("title", plain(ad.get("title", "")))
    facts.add_row("genre", plain(ad.get("genre", "")))
    if ad.get("duration") is not None:
        facts.add_row("duration", f"{ad['duration']} s")
    if ad.get("targetAudience"):
        facts.add_row("audience", plain(", ".join(map(str, ad["targetAudience"]))))
    if ad.get("visualElements"):
        facts.add_row("visuals", plain(", ".join(map(str, ad["visualElements"]))))
    if ad.get("callToAction"):
        facts.add_row("call to action", plain(ad["callToAction"]))
    facts.add_row("submitted", utc_when(record.get("submittedAt"), now=now))
    #: ``completedAt`` is when the ad reached its final status: analysed, dead-lettered, or failed (purged)
    ended = {"dead": "dead at", "failed": "failed at"}.get(str(record.get("status")), "completed")
    for label, key in (("started", "startedAt"), (ended, "completedAt"), ("retry at", "retryAt")):
        if record.get(key):
            facts.add_row(label, utc_when(record[key], now=now))
    if record.get("attempts"):
        facts.add_row("attempts", counted(record["attempts"], "analysis attempt"))  # as dlq show (was a bare 1)
    if replays := replay_count(record):
        facts.add_row("replayed", replays_text(replays))
    if record.get("firstFailureAt"):  # -o json has it: so does the table, whatever the status
        facts.add_row("first failure", utc_when(record["firstFailureAt"], now=now))
    if record.get("workerId"):
        facts.add_row("worker", plain(record["workerId"]))

    parts: list[RenderableType] = [facts]
    if analysis := record.get("analysis"):
        parts.append(Panel(analysis_view(analysis), title="analysis", title_align="left"))
    if error := record.get("error"):
        # the record keeps its last failure as history once a later attempt or a replay moved it on
        current = record.get("status") in ("dead", "failed") or bool(record.get("retryAt"))
        text = Text() if current else Text(_recovered(record))
        text.append(f"{error.get('errorClass', 'error')}: ", style="bold red" if current else "bold")
        text.append(str(error.get("message", "")))
        if error.get("at") and not current:
            text.append(f" (at {short_time(error['at'])} UTC)", style="dim")
        parts.append(Panel(text, title="error" if current else "earlier failure", title_align="left",
                           border_style="red" if current else "dim"))
    ad_id = record.get("id", "")
    if record.get("status") == "dead":  # final: nothing more will come; its DLQ entry says why and replays it
        entry = f"its DLQ entry: {follow_up('dlq', 'show', ad_id, again=again)}"
        parts.append(command_text(entry if analysis or error else f"no analysis: the ad is dead ({entry})"))
    elif not analysis and not error:
        if record.get("status") == "failed":
            hint = "no analysis: the ad failed for good (purged from the DLQ)"
        else:
            hint = f"no analysis yet — check again with: {follow_up('ads', 'get', ad_id, again=again)}"
        parts.append(command_text(hint))
    return Group(*parts)


def dlq_entry_view(entry: Mapping[str, Any], again: str = "", now: datetime | None = None) -> RenderableType:
    """One DLQ entry (``GET /v1/dlq/{id}``) for people, as :func:`ad_view` shows an ad: labels an operator reads,
    times in UTC with their age, the error with whether it was retryable, the ad's own fields, then the command
    that replays it (``again``: the flags that reach the same API). ``-o json`` keeps the wire names. A repeat
    death (``replays``) says so: its attempts count since its last replay, its first failure is its first ever."""
    ad = entry.get("ad") or {}
    now = page_now(now)  # every age on the page from one instant (attack43b F3)
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    ad_id = str(entry.get("adId") or entry.get("id") or "")
    facts.add_row("ad id", plain(ad_id))
    facts.add_row("title", plain(entry.get("title", ad.get("title", ""))))
    facts.add_row("priority", plain(entry.get("priority", "")))
    replays = replay_count(entry)  # "?": replayed by older code, which kept no count
    since = (f" since its last replay at {short_time(entry.get('replayedAt'))} UTC" if entry.get("replayedAt")
             else " since its last replay" if replays else "")
    facts.add_row("attempts", plain(f"{counted(entry.get('attempts', '?'), 'analysis attempt')}{since}"))
    if replays:  # a repeat death: the first failure below is from its first life, the attempts from this one
        facts.add_row("replayed", Text(f"{replays_text(replays)}, then dead again", style="yellow"))
    error = Text(str(entry.get("errorClass") or "?"), style="bold red")
    retryable = entry.get("retryable")
    if retryable is not None:
        error.append(" (retryable; its attempts ran out)" if retryable else " (not retryable)", style="dim")
    facts.add_row("error", error)
    facts.add_row("message", plain(entry.get("errorMessage", "")))
    first = utc_when(entry.get("firstFailureAt"), now=now) + (
        " — its first ever, before the replay" if replays else "")
    facts.add_row("first failure", first)
    facts.add_row("last failure", utc_when(entry.get("lastFailureAt"), now=now))
    facts.add_row("dead at", utc_when(entry.get("deadAt"), now=now))
    facts.add_row("worker", plain(entry.get("workerId") or "-"))
    facts.add_row("submitted", utc_when(entry.get("submittedAt"), now=now))
    if ad.get("genre"):
        facts.add_row("genre", plain(ad["genre"]))
    if ad.get("duration") is not None:
        facts.add_row("duration", f"{ad['duration']} s")
    if ad.get("callToAction"):
        facts.add_row("call to action", plain(ad["callToAction"]))
    if entry.get("seq") is not None:
        facts.add_row("DLQ sequence", plain(entry["seq"]))
    if entry.get("sourceSeq") is not None:
        facts.add_row("work sequence", plain(f"{entry['sourceSeq']} (in the work stream)"))
    if entry.get("traceparent"):
        facts.add_row("trace", plain(entry["traceparent"]))
    hint = command_text(f"replay it with: {follow_up('dlq', 'replay', ad_id, again=again)}")
    return Group(facts, Text(""), hint)
