"""What ``gamead submit`` shows people: its progress bars on stderr, the ``202`` answer to one ad, the end-of-run
summary of many, and the rejected ads named one a line. Each returns what to print; nothing here sends."""

from __future__ import annotations

import re
import shlex
from collections import Counter
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from gamead_cli.formats import counted, command_text, count_text, short_time, took
from gamead_cli.output import CountsColumn, StderrProgress, stderr_console
from gamead_cli.program import follow_up
from gamead_cli.record_views import status_text
from gamead_cli.stops import stopped_by
from gamead_cli.submit.batches import LOST_WORDS
from gamead_cli.submit.outage import STORE_CODES
from gamead_core.rate_text import rate_figure


def progress_bar() -> Progress:
    """A progress bar on stderr; silent when stderr is not a terminal (CI logs, pipes)."""
    console = stderr_console()
    return StderrProgress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        CountsColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


def progress_info(counts: Mapping[str, int], rejected: Mapping[str, int], outage: str = "") -> str:
    """The progress bar's words: ``1,812 ok, 48 rejected, 3 may still be queued`` and ``outage``, what
    :meth:`gamead_cli.submit.outage.Outage.status` says while the API is unreachable. Pure."""
    maybe = counts["unsure"] + counts["unknown"]
    said = [f"{count_text(counts['accepted'])} ok"]
    said += [f"{count_text(sum(rejected.values()))} rejected"] if rejected else []
    said += [f"{count_text(maybe)} may still be queued"] if maybe else []
    return ", ".join(said) + outage


def accepted_view(body: Mapping[str, Any], again: str = "") -> RenderableType:
    """The ``202`` answer to one submit, with the next command to run (``again``: the flags that reach the same
    API, :func:`gamead_cli.options.reach_again`)."""
    hint = command_text(f"follow it with: {follow_up('ads', 'get', str(body.get('id', '')), again=again)}")
    return Group(accepted_line(body), hint)


def accepted_line(body: Mapping[str, Any]) -> Text:
    """``accepted ad ID  (priority N, queued)`` (``duplicate of ad …`` for a repeat) from a ``202`` answer: the
    one line plain ``submit`` and ``submit --wait`` both print first (``.plain``: without the colours)."""
    verb = "duplicate of" if body.get("duplicate") else "accepted"
    text = Text(f"{verb} ad ", style="bold")
    text.append(str(body.get("id", "")), style="bold cyan")
    text.append(f"  (priority {body.get('priority', '?')}, ")
    text.append_text(status_text(body.get("status")))
    text.append(")")
    return text


def summary_view(summary: Mapping[str, Any], again: str = "") -> RenderableType:
    """The end-of-run summary of ``submit --count``; below it, when ads whose ids are unknown may be queued, the
    command that lists them (``again``: the flags that reach the same API)."""
    look: Text | None = None
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    grid.add_row("sent", counted(summary.get("sent", 0)))
    grid.add_row("accepted", Text(counted(summary.get("accepted", 0)), style="green"))
    grid.add_row("duplicates", counted(summary.get("duplicates", 0)))
    by_code: Mapping[str, int] = summary.get("rejectedByCode") or {}
    if by_code:
        detail = ", ".join(f"{code} {count_text(n)}" for code, n in sorted(by_code.items()))
        grid.add_row("rejected", Text(f"{counted(sum(by_code.values()))} ({detail})", style="red"))
    else:
        grid.add_row("rejected", counted(0))
    if summary.get("queuedFound"):
        grid.add_row("queued (found)", Text(f"{counted(summary['queuedFound'])} (no answer in time, but looked up: "
                                            "they are queued, do not resend them)", style="green"))
    if summary.get("notQueued"):
        grid.add_row("not queued", Text(f"{counted(summary['notQueued'])} (no answer in time, and looked up: no "
                                        f"such ad, never queued; safe to resend: {_ranges(summary, 'notQueuedWhere')})",
                                        style="red"))
    if summary.get("maybeQueued"):
        key, unknown = summary.get("idempotencyKey"), summary.get("maybeQueuedUnknown") or 0
        if key:
            settle = (f"to settle them, send the same command again with --idempotency-key {shlex.quote(key)}: an "
                      "ad already queued answers as a duplicate, none is queued twice")
        else:
            settle = ("do not resend them without an idempotency key: look them up"
                      + (" (ids in -o json, maybeQueuedIds)" if summary["maybeQueued"] > unknown else "")
                      + (", or find those whose batch got no answer with the command below" if unknown else ""))
            if unknown:
                look = command_text(f"find them with: {follow_up('ads', 'list', again=again)}", style="yellow")
        grid.add_row("may be queued", Text(f"{counted(summary['maybeQueued'])} ({lost_text(summary)}, still "
                                           f"unknown: they may still be analysed; "
                                           f"{_ranges(summary, 'maybeQueuedWhere')}; {settle})",
                                           style="yellow"))
    if summary.get("outages"):
        grid.add_row("store refusing" if store_only(summary) else "API unreachable",
                     Text(outage_text(summary), style="yellow"))
    if summary.get("notSent"):
        grid.add_row("not sent", Text(not_sent_text(summary), style="yellow"))
    if summary.get("batchSize"):
        grid.add_row("batch size",
                     f"{count_text(summary['batchSize'])} ads a request (the API refused bigger: "
                     f"{' and '.join(summary.get('batchSizeBy') or ['api.batch_max'])})")
    grid.add_row("elapsed", took(summary.get("elapsedSeconds", 0.0)))  # 50ms, 2.0s, 2m05s: every duration printed
    rate = f"{rate_figure(summary.get('ratePerSecond', 0.0))} ads/s sent"  # 7,449.4 (regress45: 7449.4), 0.50
    if summary.get("targetRate"):
        rate += f" (target {summary['targetRate']:,.10g})"  # as given: 1,000,000, 0.001
    taken = summary.get("acceptedPerSecond")  # newly queued only, duplicates not
    if taken is not None and summary.get("accepted", 0) + summary.get("duplicates", 0) != summary.get("sent", 0):
        rate += f", {rate_figure(taken)} ads/s accepted"  # not all taken: the sent rate alone reads as throughput
    grid.add_row("rate", rate)
    if summary.get("itemsOmitted"):
        listed = summary.get("sent", 0) - summary["itemsOmitted"]  # gamead_cli.submit.sending.ITEMS_KEPT
        grid.add_row("not listed", Text(f"{counted(summary['itemsOmitted'])} (the ads after the first {listed:,}: "
                                        "counted above, not listed one by one in -o json items and ids)",
                                        style="yellow"))
    if "completed" in summary:
        grid.add_row("completed", Text(counted(summary["completed"]), style="green"))
        failed = summary.get("failed", 0) + summary.get("dead", 0)
        grid.add_row("failed/dead", Text(counted(failed), style="red" if failed else ""))
        if summary.get("pending"):
            grid.add_row("still pending", Text(counted(summary["pending"]), style="yellow"))
        if summary.get("notFollowed"):
            # loaded already: the summary is submit's
            from gamead_cli.submit.sending import FOLLOWED_MAX

            grid.add_row("not followed", Text(f"{counted(summary['notFollowed'])} (accepted after the first "
                                              f"{FOLLOWED_MAX:,} ads sent: --wait did not follow them)",
                                              style="yellow"))
        p50, p95 = summary.get("latencyP50Seconds"), summary.get("latencyP95Seconds")
        if p50 is not None and p95 is not None:
            grid.add_row("latency", f"p50 {took(p50)} · p95 {took(p95)} (submit → completed)")
    if summary.get("interrupted"):
        grid.add_row("interrupted", Text(f"yes ({stopped_by()}): the figures above are what was done so far",
                                         style="yellow"))
    panel = Panel(grid, title="submit summary", title_align="left", expand=False)
    return panel if look is None else Group(panel, look)


def not_sent_text(summary: Mapping[str, Any]) -> str:
    """The summary's ``not sent`` row: how many, why the run stopped, and which: those the stop caught
    (``notSentCaught``: waiting for their next try after NATS took nothing of them, their connection never made,
    read ahead of a stream, cancelled before their batch went out; their lines) and the input after the last ad
    sent. Pure."""
    why = summary.get("stoppedBecause") or "the outage's stop came before their next try"
    caught = summary.get("notSentCaught") or 0
    never = summary["notSent"] - caught
    parts = [f"{count_text(caught)} caught by the stop: {_ranges(summary, 'notSentWhere')}"] if caught else []
    if never:
        parts.append(f"{count_text(never)} never sent"
                     + (f": the input after {summary['lastSent']}" if summary.get("lastSent") else ""))
    return (f"{counted(summary['notSent'])} (stopped: {why}; none of these is queued, safe to resend; "
            f"{'; '.join(parts)})")


def outage_text(summary: Mapping[str, Any]) -> str:
    """The summary's ``API unreachable`` row: each outage (from, to, how long), how long the sending paused, the ads
    caught by its stop (not sent, never queued: the ``not sent`` row) and whether any may be queued. Pure."""
    spans = summary.get("outages") or []
    when = "; ".join((f"{short_time(o.get('since'))}-{short_time(o['until'])} UTC" if o.get("until") else
                      f"{short_time(o.get('since'))} UTC to the end") + f", {o.get('seconds') or 0:.1f} s "
                     f"({o.get('cause')})" for o in spans[:5])
    maybe, paused = summary.get("maybeQueued") or 0, summary.get("pausedSeconds") or 0
    if store_only(summary):  # no ad is refused api_unreachable by these: resent, or looked up (their own rows)
        return (f"{len(spans)} time{'s' if len(spans) > 1 else ''}: {when}{' …' if len(spans) > 5 else ''}; sending "
                + (f"paused {paused:.1f} s, then stopped" if summary.get("stoppedByOutage") else
                   f"paused {paused:.1f} s (the run ended that much later, --rate kept)")
                + "; the ads it refused were resent when certainly not queued (or, caught by the stop, not sent: "
                  "that row), else looked up (rows above)")
    return (f"{len(spans)} time{'s' if len(spans) > 1 else ''}: {when}{' …' if len(spans) > 5 else ''}; sending "
            + (f"paused {paused:.1f} s, then stopped; " if summary.get("stoppedByOutage") else
               f"paused {paused:.1f} s (the run ended that much later, --rate kept); ")
            + f"{count_text(summary.get('refusedByOutage') or 0)} ads caught by the stop, never queued (the not sent "
              "row); "
            + (f"{count_text(maybe)} may be queued (a request went out and its answer never came: see that row)"
                           if maybe else "none may be queued (every request sent was answered)"))


def store_only(summary: Mapping[str, Any]) -> bool:
    """True if every outage of ``summary`` was the API's store refusing every ad (its ``cause`` starts with a code of
    :data:`~gamead_cli.submit.outage.STORE_CODES`), none the API unreachable. Pure."""
    spans = summary.get("outages") or []
    return bool(spans) and all(str(o.get("cause") or "").split(":")[0] in STORE_CODES for o in spans)


def lost_text(summary: Mapping[str, Any]) -> str:
    """How the answers of the "may be queued" ads were lost: ``no answer in time`` (their publish, or their
    batch's answer, timed out) or, by ``maybeQueuedLost``, ``20 connection reset before the answer came, 5 no
    answer in time`` (attack33b F5: a reset was called "no answer in time"). Pure."""
    lost = Counter({LOST_WORDS.get(k, k): n for k, n in (summary.get("maybeQueuedLost") or {}).items() if n})
    lost[LOST_WORDS["timeout"]] += (summary.get("maybeQueued") or 0) - sum(lost.values())  # publish timed out
    ways = [(n, why) for why, n in lost.most_common() if n > 0]
    return ways[0][1] if len(ways) == 1 else ", ".join(f"{n:,} {why}" for n, why in ways) or LOST_WORDS["timeout"]


def rejections_lines(summary: Mapping[str, Any]) -> list[str]:
    """``FILE:LINE: code: message`` for each listed rejection, then ``… and N more rejected``, then how to settle
    ads refused a reused idempotency key (``keyAdvice``), said once. Pure."""
    lines = [f"{r['where']}: {r['code']}: {r['message']}" for r in summary.get("rejections") or []]
    if summary.get("rejectionsNotListed"):
        lines.append(f"… and {summary['rejectionsNotListed']} more rejected")
    if summary.get("keyAdvice"):
        lines.append(str(summary["keyAdvice"]))
    return lines


#: ranges of lines a summary row names; the rest are in -o json
RANGES_SHOWN = 20


def _ranges(summary: Mapping[str, Any], key: str) -> str:
    """``lines ads.ndjson:3-5, ads.ndjson:9`` of ``summary[key]`` (:func:`gamead_cli.submit.settling.where_ranges`),
    the first :data:`RANGES_SHOWN`, then how many more are in -o json. Pure."""
    ranges = summary.get(key) or []
    text = "lines " + ", ".join(ranges[:RANGES_SHOWN]) if ranges else "lines not kept"
    if len(ranges) > RANGES_SHOWN:
        text += f" … and {len(ranges) - RANGES_SHOWN} more ranges (-o json, {key})"
    if key == "maybeQueuedWhere" and summary.get("maybeQueuedNotListed"):
        text += f", and {summary['maybeQueuedNotListed']:,} more not kept (counted only)"
    return text


def interrupted_line(summary: Mapping[str, Any], count: int | None) -> str:
    """The red line of an interrupted bulk submit: how many ads were sent, up to which input line, and how to
    resume without doubles (attack30c F5): a file from the line after it; ``--count N`` (``count``, its ads "ad K")
    with ``--count N-K``, as no flag starts its ads at K + 1. Pure but for the signal remembered
    (:func:`gamead_cli.stops.stopped_by`)."""
    of = count_text(count if count is not None else "?")
    line = f"interrupted ({stopped_by()}): {count_text(summary['sent'])} of {of} ad(s) sent"
    if not summary.get("lastSent"):  # nothing sent, or stopped while --wait followed them
        return line
    line += f", the input up to {summary['lastSent']} (none after it)"
    if summary.get("idempotencyKey"):
        return line + "; the same command with the same --idempotency-key resumes, queueing none twice"
    again = "next time give --idempotency-key KEY: the same command again then queues none twice"
    generated = re.fullmatch(r"ad (\d+)", str(summary["lastSent"]))  # --count's ads are "ad N", a file's FILE:LINE
    if generated and count is not None and count > int(generated.group(1)):
        rest = count - int(generated.group(1))  # newcomer56: no flag starts --count's ads at N + 1
        return line + f"; to send the {count_text(rest)} not sent, run it again with --count {rest} (new ads; {again})"
    return line + f"; resume from the ad after it ({again})"


def sent_note(summary: Mapping[str, Any]) -> str:
    """What a bulk submit did, for the line of a stdout that then cannot take its summary (attack30c F2): the counts,
    the lines not queued (safe to resend), "do not resend" the others. Pure."""
    rejected = summary.get("rejected") or 0
    note = (f"the ads WERE sent: {count_text(summary.get('sent', 0))} sent, {count_text(summary.get('accepted', 0))} "
            f"accepted, {count_text(summary.get('duplicates', 0))} duplicates, {count_text(rejected)} rejected")
    if summary.get("queuedFound"):
        note += f", {count_text(summary['queuedFound'])} queued (found)"
    if summary.get("maybeQueued"):
        note += f", {count_text(summary['maybeQueued'])} may be queued ({_ranges(summary, 'maybeQueuedWhere')})"
    if summary.get("notQueued"):
        note += (f", {count_text(summary['notQueued'])} not queued ({_ranges(summary, 'notQueuedWhere')}: safe to "
                 "resend)")
    if summary.get("notSent"):  # which ones, here: the summary that would say it is what cannot be written
        note += f", {not_sent_text(summary)}"  # (regress40 F6: it pointed at that summary's row)
    return note + "; do not resend the others"


def ended_line(record: Mapping[str, Any], again: str = "") -> str:
    """The one line ``submit --wait`` adds on stderr when its ad ended ``dead`` or ``failed`` (exit 6): which, why,
    and the command that shows it (its DLQ entry; a purged ad's record). ``-q`` printed the id alone and nothing
    said why the exit was 6 (newcomer47)."""
    ad_id, status = str(record.get("id")), str(record.get("status"))
    error = record.get("error") or {}
    why = ": ".join(str(part) for part in (error.get("errorClass"), error.get("message")) if part)
    why = f": {why}" if why else ""
    attempts = record.get("attempts")
    after = f" after {counted(attempts, 'analysis attempt')}" if isinstance(attempts, int) else ""
    verb = ("dlq", "show") if status == "dead" else ("ads", "get")
    show = follow_up(*verb, ad_id, again=again)
    return f"ad {ad_id} ended {status}{after}{why}; see it with: {show}"


#: how many ids :func:`ended_many_line` names before ``… and N more``
ENDED_NAMED = 3


def ended_many_line(summary: Mapping[str, Any], again: str = "") -> str:
    """The one line a many-ad ``submit --wait`` adds on stderr when ads ended ``dead`` or ``failed`` (exit 6): how
    many, the first :data:`ENDED_NAMED` ids and the command that shows them (one ad: its own, as
    :func:`ended_line`; else ``dlq list``, where the dead are, and ``-o json``'s ``failedIds``). Before, the summary
    said ``failed/dead 6 ads`` and named none of them (newcomer59). Pure but for the ``PATH`` lookup."""
    ids = [str(i) for i in summary.get("failedIds") or []]
    dead, failed = summary.get("dead", 0), summary.get("failed", 0)
    how = " or ".join(word for word, n in (("dead", dead), ("failed", failed)) if n)
    more = len(ids) - ENDED_NAMED
    named = ", ".join(ids[:ENDED_NAMED]) + (f" and {count_text(more)} more" if more > 0 else "")
    if len(ids) == 1:
        verb = ("dlq", "show") if dead else ("ads", "get")
        show = f"see it with: {follow_up(*verb, ids[0], again=again)}"
    else:
        where = {"dead": follow_up("dlq", "list", again=again),
                 "failed": follow_up("ads", "list", "--status", "failed", again=again)}
        show = ("see them with: " + where["dead" if dead else "failed"] if not (dead and failed) else
                f"see the dead with: {where['dead']}; the failed with: {where['failed']}")
        show += " (every id: -o json, failedIds)" if more > 0 else ""
    return f"{counted(dead + failed)} of this run ended {how}: {named}; {show}"
