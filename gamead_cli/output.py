"""Everything the CLI prints: one red error line, JSON for scripts, rich tables and panels for people.

Rules: results go to stdout; errors, spinners and progress bars go to stderr, so ``-o json`` output can
always be piped into ``jq``. JSON is printed without colour or markup.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gamead_cli.fitted import FittedTable
from gamead_cli.inputs import strict_dumps
from gamead_cli.options import OutputFormat
from gamead_cli.program import follow_up
from gamead_core.safe_text import shown, shown_tree

STATUS_STYLES: dict[str, str] = {
    "queued": "cyan",
    "processing": "yellow",
    "completed": "green",
    "failed": "red",
    "dead": "bold red",
}


def stdout_console() -> Console:
    """A console on the current ``sys.stdout`` (looked up per call, so test runners can capture it)."""
    return Console(file=sys.stdout, highlight=False)


def stderr_console() -> Console:
    """A console on the current ``sys.stderr``: errors, spinners, progress bars."""
    return Console(file=sys.stderr, highlight=False)


def command_text(text: str, style: str = "dim") -> Text:
    """A text that holds a command to paste (``undo with: gamead scale clear --api …``), which rich must never
    wrap: a command cut across lines with a real newline pastes as a different one (attack25 finding 4). Not
    wrapped nor cut however narrow the terminal (the terminal folds it on screen; a pipe gets it whole), printed
    by :func:`emit` (no crop) or with ``soft_wrap``."""
    return Text(text, style=style, no_wrap=True, overflow="ignore")


def _one_line(text: str) -> str:
    return shown(" ".join(text.split()))


def red_line(text: str) -> None:
    """Print ``text`` as one red line on stderr (a rejected input named: ``ads.ndjson:2: invalid_json: …``)."""
    stderr_console().print(Text(_one_line(text), style="red"), soft_wrap=True)


def error_line(exc_or_message: BaseException | str) -> None:
    """Print exactly one red ``error: …`` line to stderr. Never a traceback."""
    if isinstance(exc_or_message, BaseException):
        message = getattr(exc_or_message, "message", None) or str(exc_or_message)
        message = message or type(exc_or_message).__name__
    else:
        message = exc_or_message
    line = Text(f"error: {_one_line(str(message))}", style="bold red")
    stderr_console().print(line, soft_wrap=True)


def note_line(message: str) -> None:
    """A dim informational line on stderr (never pollutes machine-readable stdout)."""
    stderr_console().print(Text(_one_line(message), style="dim"), soft_wrap=True)


def empty_text(nothing: str, flags: Mapping[str, Any] | None = None, hint: str = "") -> Text:
    """What a list verb prints when its list is empty, instead of a bare table header: ``no jobs`` or, with the
    filters given (``{"--state": "running"}``; ``None`` values left out), ``no jobs match --state running``, then
    ``hint`` (what to do, or why it can be empty). ``-o json`` prints the verb's empty shape instead. Pure."""
    given = " ".join(f"{flag} {value}" for flag, value in (flags or {}).items() if value not in (None, False, ""))
    text = Text(f"{nothing} match {given}" if given else nothing, style="yellow")
    if hint:
        text.append(f" ({hint})", style="dim")
    return text


#: ``done`` once :func:`print_json` printed a document: the error boundary (``gamead_cli.main``) then adds none
JSON_PRINTED = {"done": False}


def print_json(data: Any) -> None:
    """Plain JSON on stdout: no colour, no markup, one trailing newline."""
    sys.stdout.write(strict_dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
    JSON_PRINTED["done"] = True


def emit(
    data: Any,
    output: OutputFormat,
    render: Callable[[Any], RenderableType] | None = None,
) -> None:
    """Print a command's result: JSON for ``-o json`` (JSON escapes every non-ASCII character), else
    ``render(data)`` of the data with every text escaped where it would not show as itself
    (:func:`gamead_core.safe_text.shown_tree`: a stored ``A\x9b31m`` prints as ``A\u009b31m``, never as a
    terminal command), or the data as JSON. Not to a terminal (a pipe, a file) and without ``COLUMNS``, each text
    of the view (a part of a group) is printed on one line however long, never wrapped at rich's 80 columns;
    tables and panels keep that width (or ``COLUMNS``, whenever set: then the view is printed as to a terminal)."""
    if output == OutputFormat.json or render is None:
        print_json(data)
        return
    shown_view = render(shown_tree(data))
    console = stdout_console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):  # a pipe or a file: prose on one line each
        for part in _parts(shown_view):  # (rich's 80 columns would cut a sentence, an id, a path: grep misses it)
            console.print(part, soft_wrap=isinstance(part, Text), crop=False)  # tables keep their width
        return
    if isinstance(shown_view, Text) and shown_view.no_wrap:  # print() joins a bare Text into a new one, wrapped
        shown_view = Group(shown_view)
    console.print(shown_view, crop=False)  # a command_text line runs past the width, whole


def _parts(view: RenderableType) -> list[RenderableType]:
    """``view``'s parts printed one after the other: a group's (nested ones too), else ``view`` itself. Pure."""
    return [p for r in view.renderables for p in _parts(r)] if isinstance(view, Group) else [view]


# --- ad records ------------------------------------------------------------------------------------


def status_text(status: str | None) -> Text:
    status = status or "?"
    return Text(status, style=STATUS_STYLES.get(status, ""))


def plain(value: Any) -> Text:
    """User data as literal text: a title like ``[red]x`` must not be read as rich markup, and a control
    character shows escaped (:func:`gamead_core.safe_text.shown`)."""
    return Text("" if value is None else shown(str(value)))


def clip(value: Any, width: int) -> str:
    """One line of at most ``width`` characters (an ellipsis marks a cut); runs of whitespace become one space,
    a control character shows escaped (:func:`gamead_core.safe_text.shown`)."""
    text = shown(" ".join(str(value or "").split()))
    return text if len(text) <= width else text[: width - 1] + "…"


def short_datetime(value: Any) -> str:
    """An ISO 8601 time as shown in tables: ``2024-05-01T12:34:56.789+00:00`` → ``2024-05-01 12:34:56``
    (``-`` for none)."""
    if not value:
        return "-"
    return str(value).replace("T", " ")[:19]


def age(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``3m05s``, ``2h10m``."""
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f}s"
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def took(seconds: float) -> str:
    """A duration as ``gamead doctor`` prints how long its check took: ``350 ms`` under a second, else ``2.5 s``
    (one decimal). Pure."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def span(seconds: float) -> str:
    """``300`` → ``5 min``, ``45`` → ``45 s``: how far back a sparkline or a rate reaches. Pure."""
    return f"{seconds / 60:g} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds:.0f} s"


#: seconds of the API's "last minute" rates: ``gamead_core.stats.rates.RATE_WINDOW`` (a test keeps them equal)
RATE_WINDOW_SECONDS = 60


def short_window(seconds: Any) -> str | None:
    """``last 11 s`` when the API's rates are over less than their minute (``windowSeconds`` 11: its sampler, or the
    autoscaler leader's, started 11 s ago); None for the full minute or an unknown window. Pure; the one wording of
    ``gamead top`` and ``gamead scale status``."""
    short = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and round(seconds) < RATE_WINDOW_SECONDS
    return window_words(seconds) if short else None


def window_words(seconds: Any) -> str:
    """The window of an API figure for people: ``last minute`` (60 s, or unknown), ``last 11 s`` (a short one,
    :func:`short_window`), ``last 5 min``. Pure."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or round(seconds) == RATE_WINDOW_SECONDS:
        return "last minute"
    return f"last {span(round(seconds))}"


def ago(seconds: float | None) -> str:
    """``1.9s ago``: how long since something happened."""
    return "-" if seconds is None else f"{age(seconds)} ago"


def byte_size(n: int | float | None) -> str:
    """A byte count in IEC units, the one way the CLI writes sizes (``gamead top``, ``gamead doctor``):
    ``512 B``, ``511.5 KiB``, ``3.0 GiB`` (1 KiB = 1024 B; one decimal above bytes); ``-`` for None. Pure."""
    if n is None:
        return "-"
    value = float(n)
    if value < 1024:
        return f"{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def utc_when(value: Any, *, now: datetime | None = None) -> str:
    """An ISO 8601 time as the ``show``/``get`` views print it: ``2024-05-01 12:34:56 UTC (3m05s ago)`` (the age
    when the time can be read and is in the past; ``-`` for none). Pure given ``now`` (an aware datetime)."""
    if not value:
        return "-"
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    text = when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    seconds = ((now or datetime.now(timezone.utc)) - when).total_seconds()
    return f"{text} ({ago(seconds)})" if seconds >= 0 else text


#: the zone of every time the CLI and the dashboard print (the API's times are UTC; nothing is converted)
TIME_ZONE = "UTC"


def time_column(label: str) -> str:
    """A table's label for a column of times: ``SUBMITTED`` → ``SUBMITTED (UTC)``. Every time column of every
    table (CLI and dashboard) says its zone through this one helper (ops13 finding 3: a bare ``13:06:30``)."""
    return f"{label} ({TIME_ZONE})"


def short_time(value: Any) -> str:
    """The clock part of an ISO 8601 time: ``2024-05-01T12:34:56.789Z`` → ``12:34:56`` (``-`` for none)."""
    if not value:
        return "-"
    text = str(value)
    return text[11:19] if len(text) >= 19 and text[10] in "T " else text


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
AD_COLUMNS = ("ID", "STATUS", "PRI", "SCORE", time_column("SUBMITTED"), "TITLE")
AD_DROPS = (time_column("SUBMITTED"), "SCORE", "PRI", "TITLE")
TITLE_MIN = 12


def ads_table(records: Iterable[Mapping[str, Any]]) -> RenderableType:
    """One row per ad record: id, status, priority, score, submitted (UTC clock), title (genre); fitted to the
    terminal by :class:`gamead_cli.fitted.FittedTable` (whole ids, whole columns dropped as it narrows)."""
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
                       right=("PRI", "SCORE"), caption=None if rows else "no ads match")


def ad_list_view(body: Mapping[str, Any], flags: Mapping[str, Any] | None = None) -> RenderableType:
    """The answer of ``GET /ads``: a table, then how many are shown of how many match and whether more exist
    (:func:`next_page_command` says how to read them). ``no ads`` (``no ads match --status dead``, with the
    ``flags`` given: ``{"--status": "dead"}``, ``None`` values left out) when there is none. When the API's scan
    did not read every record (``complete`` false), both say it: ``among the newest 100 records
    (api.list_scan_limit)``, 100 being ``scanned``."""
    items = body.get("items") or []
    among = scan_note(body)
    if not items:
        text = empty_text("no ads", flags)
        if among:
            text.append(f" {among}", style="dim")
        return text
    count, total = body.get("count", len(items)), body.get("total")
    line = Text(f"{count} shown" + (f" of {total}" if total is not None else "") + (f" {among}" if among else "")
                + ", newest first", style="dim")
    if body.get("nextCursor"):
        line.append(" · more exist; the next page:", style="dim")
    return Group(ads_table(items), line)


def scan_note(body: Mapping[str, Any]) -> str:
    """``among the newest 100 records (api.list_scan_limit)`` when a ``GET /ads`` answer's scan stopped short of
    the bucket (``complete`` false; 100: its ``scanned``), else ``""`` (every record was read). Pure."""
    if body.get("complete", True):
        return ""
    return f"among the newest {body.get('scanned', 'api.list_scan_limit')} records (api.list_scan_limit)"


def next_page_command(body: Mapping[str, Any], flags: Mapping[str, Any] | None = None, again: str = "",
                      limit: int | None = None, command: str = "ads list", limit_flag: str = "--limit") -> str | None:
    """The exact command of the page after ``body`` (``GET /ads``, ``GET /v1/dlq``), None on the last page:
    ``gamead <command> --cursor C``, the same ``flags`` (as :func:`ad_list_view`; values shell-quoted, a
    ``True`` one as the bare flag), ``limit_flag`` with ``limit`` when not the default 50, and ``again`` (the
    flags that reach the same API); ``gamead`` as another terminal runs it (:func:`gamead_cli.program.follow_up`). The caller prints it
    on one line (:func:`print_command`)."""
    cursor = body.get("nextCursor")
    if not cursor:
        return None
    given = "".join(f" {flag}" if value is True else f" {flag} {shlex.quote(str(value))}"
                    for flag, value in (flags or {}).items() if value not in (None, False, ""))
    more = f" {limit_flag} {limit}" if limit not in (None, 50) else ""
    return f"{follow_up(*command.split(), '--cursor', str(cursor))}{given}{more}{again}"


def print_command(command: str) -> None:
    """``command`` on stdout as one line however narrow the terminal (it folds it; rich would break it at a space,
    and a command cut across lines cannot be pasted)."""
    stdout_console().print(command_text(command, style=""), soft_wrap=True)


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
        if items:
            block = Text(f"{label}\n", style=f"bold {style}")
            block.append("\n".join(f"  • {item}" for item in items))
            parts.extend([Text(""), block])
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


def ad_view(record: Mapping[str, Any], again: str = "") -> RenderableType:
    """One ad record: facts, then its analysis or its error."""
    ad = record.get("ad") or {}
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
    facts.add_row("submitted", utc_when(record.get("submittedAt")))
    #: ``completedAt`` is when the ad reached its final status: analysed, dead-lettered, or failed (purged)
    ended = {"dead": "dead at", "failed": "failed at"}.get(str(record.get("status")), "completed")
    for label, key in (("started", "startedAt"), (ended, "completedAt"), ("retry at", "retryAt")):
        if record.get(key):
            facts.add_row(label, utc_when(record[key]))
    if record.get("attempts"):
        facts.add_row("attempts", str(record["attempts"]))
    if record.get("firstFailureAt"):  # -o json has it: so does the table, whatever the status
        facts.add_row("first failure", utc_when(record["firstFailureAt"]))
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
    if not record.get("analysis") and not record.get("error"):
        ad_id = record.get("id", "")
        if record.get("status") == "dead":  # final: nothing more will come
            hint = f"no analysis: the ad is dead (its DLQ entry: {follow_up('dlq', 'show', ad_id, again=again)})"
        elif record.get("status") == "failed":
            hint = "no analysis: the ad failed for good (purged from the DLQ)"
        else:
            hint = f"no analysis yet — check again with: {follow_up('ads', 'get', ad_id, again=again)}"
        parts.append(command_text(hint))
    return Group(*parts)


def dlq_entry_view(entry: Mapping[str, Any], again: str = "") -> RenderableType:
    """One DLQ entry (``GET /v1/dlq/{id}``) for people, as :func:`ad_view` shows an ad: labels an operator reads,
    times in UTC with their age, the error with whether it was retryable, the ad's own fields, then the command
    that replays it (``again``: the flags that reach the same API). ``-o json`` keeps the wire names. A repeat
    death (``replays``) says so: its attempts count since its last replay, its first failure is its first ever."""
    ad = entry.get("ad") or {}
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column(overflow="fold")
    ad_id = str(entry.get("adId") or entry.get("id") or "")
    facts.add_row("ad id", plain(ad_id))
    facts.add_row("title", plain(entry.get("title", ad.get("title", ""))))
    facts.add_row("priority", plain(entry.get("priority", "")))
    replays = entry.get("replays")
    since = f" since its last replay at {short_time(entry.get('replayedAt'))} UTC" if replays else ""
    facts.add_row("attempts", plain(f"{entry.get('attempts', '?')} analysis attempt(s){since}"))
    if replays:  # a repeat death: the first failure below is from its first life, the attempts from this one
        facts.add_row("replayed", Text(f"{replays}× from the DLQ, then dead again", style="yellow"))
    error = Text(str(entry.get("errorClass") or "?"), style="bold red")
    retryable = entry.get("retryable")
    if retryable is not None:
        error.append(" (retryable; its attempts ran out)" if retryable else " (not retryable)", style="dim")
    facts.add_row("error", error)
    facts.add_row("message", plain(entry.get("errorMessage", "")))
    first = utc_when(entry.get("firstFailureAt")) + (" — its first ever, before the replay" if replays else "")
    facts.add_row("first failure", first)
    facts.add_row("last failure", utc_when(entry.get("lastFailureAt")))
    facts.add_row("dead at", utc_when(entry.get("deadAt")))
    facts.add_row("worker", plain(entry.get("workerId") or "-"))
    facts.add_row("submitted", utc_when(entry.get("submittedAt")))
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


def accepted_view(body: Mapping[str, Any], again: str = "") -> RenderableType:
    """The ``202`` answer to one submit, with the next command to run (``again``: the flags that reach the same
    API, :func:`gamead_cli.options.reach_again`)."""
    verb = "duplicate of" if body.get("duplicate") else "accepted"
    text = Text(f"{verb} ad ", style="bold")
    text.append(str(body.get("id", "")), style="bold cyan")
    text.append(f"  (priority {body.get('priority', '?')}, ")
    text.append_text(status_text(body.get("status")))
    text.append(")")
    hint = command_text(f"follow it with: {follow_up('ads', 'get', str(body.get('id', '')), again=again)}")
    return Group(text, hint)


def summary_view(summary: Mapping[str, Any], again: str = "") -> RenderableType:
    """The end-of-run summary of ``submit --count``; below it, when ads whose ids are unknown may be queued, the
    command that lists them (``again``: the flags that reach the same API)."""
    look: Text | None = None
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("sent", str(summary.get("sent", 0)))
    grid.add_row("accepted", Text(str(summary.get("accepted", 0)), style="green"))
    grid.add_row("duplicates", str(summary.get("duplicates", 0)))
    rejected: Mapping[str, int] = summary.get("rejected") or {}
    if rejected:
        detail = ", ".join(f"{code} {n}" for code, n in sorted(rejected.items()))
        grid.add_row("rejected", Text(f"{sum(rejected.values())} ({detail})", style="red"))
    else:
        grid.add_row("rejected", "0")
    if summary.get("maybeQueued"):
        key, unknown = summary.get("idempotencyKey"), summary.get("maybeQueuedUnknown") or 0
        if key:
            settle = (f"to settle them, send the same command again with --idempotency-key {shlex.quote(key)}: an "
                      "ad already queued answers as a duplicate, none is queued twice")
        elif unknown:
            known = summary["maybeQueued"] - unknown
            settle = ("do not resend: their batches got no answer, so their ids are unknown: find them with the "
                      "command below" if not known else f"do not resend: {unknown} got no answer at all (ids unknown: "
                      f"find them with the command below), the other {known} ids are in -o json, maybeQueuedIds")
            look = command_text(f"find them with: {follow_up('ads', 'list', again=again)}", style="yellow")
        else:
            settle = "look them up, do not resend: ids in -o json, maybeQueuedIds"
        grid.add_row("may be queued", Text(f"{summary['maybeQueued']} (no answer in time: they may still be analysed; "
                                           f"{settle})", style="yellow"))
    if summary.get("notSent"):
        grid.add_row("not sent", Text(f"{summary['notSent']} (stopped: a batch got no answer before any ad was "
                                      "accepted; none of these reached the API)", style="yellow"))
    if summary.get("batchSize"):
        grid.add_row("batch size", f"{summary['batchSize']} ads a request (the API refused bigger: api.batch_max)")
    grid.add_row("elapsed", f"{summary.get('elapsedSeconds', 0.0):.2f} s")
    rate = f"{summary.get('ratePerSecond', 0.0):.1f} ads/s sent"
    if summary.get("targetRate"):
        rate += f" (target {summary['targetRate']:g})"
    taken = summary.get("acceptedPerSecond")  # newly queued only, duplicates not
    if taken is not None and summary.get("accepted", 0) + summary.get("duplicates", 0) != summary.get("sent", 0):
        rate += f", {taken:.1f} ads/s accepted"  # not all taken: the sent rate alone would read as throughput
    grid.add_row("rate", rate)
    if summary.get("itemsOmitted"):
        listed = summary.get("sent", 0) - summary["itemsOmitted"]  # gamead_cli.commands.submit.ITEMS_KEPT
        grid.add_row("not listed", Text(f"{summary['itemsOmitted']:,} (the ads after the first {listed:,}: counted "
                                        "above, not listed one by one in -o json items and ids)", style="yellow"))
    if "completed" in summary:
        grid.add_row("completed", Text(str(summary["completed"]), style="green"))
        failed = summary.get("failed", 0) + summary.get("dead", 0)
        grid.add_row("failed/dead", Text(str(failed), style="red" if failed else ""))
        if summary.get("pending"):
            grid.add_row("still pending", Text(str(summary["pending"]), style="yellow"))
        if summary.get("notFollowed"):
            from gamead_cli.commands.submit import FOLLOWED_MAX  # loaded already: the summary is submit's

            grid.add_row("not followed", Text(f"{summary['notFollowed']:,} (accepted after the first {FOLLOWED_MAX:,} "
                                              "ads sent: --wait did not follow them)", style="yellow"))
        p50, p95 = summary.get("latencyP50Seconds"), summary.get("latencyP95Seconds")
        if p50 is not None and p95 is not None:
            grid.add_row("latency", f"p50 {p50:.2f} s · p95 {p95:.2f} s (submit → completed)")
    if summary.get("interrupted"):
        grid.add_row("interrupted", Text("yes (Ctrl-C): the figures above are what was done so far", style="yellow"))
    panel = Panel(grid, title="submit summary", title_align="left", expand=False)
    return panel if look is None else Group(panel, look)
