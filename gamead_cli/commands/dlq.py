"""Inspect, replay, purge, export and import dead-lettered ads. Replay, purge and import run as jobs on the
server: they go on if this command is interrupted (Ctrl-C detaches), and `gamead dlq jobs` / `gamead dlq
cancel JOB` find and stop them.

[bold]Examples[/bold]

  gamead dlq list --error-class TaskTimeout --since 2h
  gamead dlq show 01m87v538ce744cfgethvyb39n
  gamead dlq replay --message 'timeout' --rate 20 --stop-on-failure-rate 0.5
  gamead dlq replay --all --yes --detach && gamead dlq jobs
  gamead dlq purge --priority 5 --until 7d --yes
  gamead dlq export dead.jsonl && gamead dlq import dead.jsonl --api https://staging.example
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import IO, Annotated, Any
from urllib.parse import quote

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from gamead_cli.inputs import strict_dumps
from gamead_cli.atomic import PendingFile
from gamead_cli import exitcodes
from gamead_cli.exitcodes import OutputFailed
from gamead_cli.client import ApiClient
from gamead_cli.options import (
    ApiOpt,
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    YesOpt,
    ad_id_arg,
    api_client,
    bounded_float,
    confirm,
    duration_seconds,
    job_id_arg,
)
from gamead_cli.output import (
    clip, command_text, dlq_entry_view, emit, empty_text, next_page_command, note_line, plain, print_command,
    stderr_console, time_column, utc_when,
)
from gamead_cli.fitted import FittedTable
from gamead_cli.once_per_ad import OncePerAd
from gamead_core.errors import ApiClientError, ApiUnreachable, GameadError
from gamead_core.dlq_pattern import MAX_REPLAY_RATE
from gamead_core.ids import MAX_CURSOR
from gamead_cli.program import follow_up

app = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode="rich")

EXPORT_PAGE = 500
IMPORT_BATCH_BYTES = 48 * 1024  #: one import request's entries (the API refuses bodies over api.max_body_bytes)
IMPORT_BATCH_ENTRIES = 500
MAX_IMPORT_BYTES = 256 * 1024**2  #: largest file `dlq import` reads
#: longest line `dlq import` reads: one entry must fit in one import request (the API's api.max_body_bytes,
#: 64 KiB by default, with the request's wrapping); a longer one is named, never read whole
MAX_IMPORT_LINE_BYTES = IMPORT_BATCH_BYTES
FOLLOW_RETRY_SECONDS = 30.0  #: how long following a job survives losing the API (the job goes on regardless)
ACTED = {"replay": "replayed", "purge": "purged", "import": "imported", "repair": "repaired"}
ACTING = {"replay": "replaying", "purge": "purging", "import": "importing", "repair": "repairing"}
#: bounds of `dlq replay --rate` (ads per second), those of the API's replay job
MIN_REPLAY_RATE = 0.001
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")


def parse_when(value: str | None, *, now: datetime | None = None) -> str | None:
    """``2h`` / ``30m`` / ``7d`` (ago) or an ISO-8601 time (no offset = UTC) → ISO-8601 UTC. Pure.
    Raises :class:`GameadError` for anything else, or an age too far back to represent."""
    if value is None:
        return None
    now = now or datetime.now(timezone.utc)
    if (ago := duration_seconds(value)) is not None:
        try:
            return (now - timedelta(seconds=ago)).isoformat()
        except OverflowError:
            raise GameadError(f"cannot read time {value!r}: that is before the year 1") from None
    from gamead_core.times import read_utc  # the API's own reading: what it would refuse (422) is refused here

    try:
        return read_utc(value).isoformat()
    except ValueError as exc:
        hint = " or an age like 2h, 7d" if "ISO-8601" in str(exc) else ""
        raise GameadError(f"cannot read time {value!r}: {exc}{hint}") from None


def when_option(value: str | None, flag: str, *, now: datetime | None = None) -> str | None:
    """:func:`parse_when` for the option ``flag`` (``--since``…): an unreadable time is bad usage (exit 2)."""
    try:
        return parse_when(value, now=now)
    except GameadError as exc:
        raise typer.BadParameter(exc.message, param_hint=flag) from None


ErrorClassOpt = Annotated[str | None, typer.Option("--error-class", "-e", help="Only this error class.")]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="RE2 regex on the error message.")]
PriorityOpt = Annotated[int | None, typer.Option("--priority", "-p", min=1, max=5, help="Only this priority.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Dead at or after: ISO time (UTC if no offset) or age (2h, 7d).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Dead before: ISO time (UTC if no offset) or age (2h, 7d).")]
IdsArg = Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="Ad ids; or use --all / filters.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every entry in the DLQ.")]
DetachOpt = Annotated[bool, typer.Option("--detach", help="Start the job and return at once (follow it with "
                                                          "`gamead dlq jobs JOB --follow`).")]


def message_option(value: str | None) -> str | None:
    """``--message`` as given, checked the way the API checks it (:func:`gamead_core.dlq_pattern.compile_pattern`:
    RE2 syntax, at most ``MAX_PATTERN`` characters; no control character,
    :func:`gamead_core.dlq_pattern.filter_refusal`): a pattern the API would refuse (422) is bad usage, raised as
    ``typer.BadParameter`` (exit 2, README "Exit codes") before any request is sent."""
    if value is None:
        return None
    from gamead_core.dlq_pattern import compile_pattern, filter_refusal  # re2 only: no server stack

    try:
        compile_pattern(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--message") from None
    if (why := filter_refusal("message", value)) is not None:
        raise typer.BadParameter(why, param_hint="--message")
    return value


def error_class_option(value: str | None) -> str | None:
    """``--error-class`` as given, checked by the API's own rule (:func:`gamead_core.dlq_pattern.filter_refusal`:
    at most ``MAX_ERROR_CLASS`` characters, no control character): one the API would refuse (422, or a URL too
    long to send) is bad usage, ``typer.BadParameter`` (exit 2), before any request is sent."""
    from gamead_core.dlq_pattern import filter_refusal

    if (why := filter_refusal("errorClass", value)) is not None:
        raise typer.BadParameter(why, param_hint="--error-class")
    return value


def window_options(since: str | None, until: str | None) -> dict[str, str | None]:
    """``--since``/``--until`` read by :func:`when_option`: ``{"since", "until"}`` (ISO, or None). A window that can
    hold nothing (``--since`` not before ``--until``, e.g. ``--since 2h --until 3h``) is bad usage (exit 2)."""
    now = datetime.now(timezone.utc)  # one instant for both: `--since 1d --until 1d` is empty, not a microsecond
    start, end = when_option(since, "--since", now=now), when_option(until, "--until", now=now)
    if start is not None and end is not None and datetime.fromisoformat(start) >= datetime.fromisoformat(end):
        raise typer.BadParameter(f"--since {since} is not before --until {until}: nothing can match; swap them, or "
                                 "drop one", param_hint="--since")
    return {"since": start, "until": end}


def _filter(error_class: str | None, message: str | None, priority: int | None, since: str | None,
            until: str | None) -> dict[str, Any]:
    raw = {"errorClass": error_class_option(error_class), "message": message_option(message), "priority": priority,
           **window_options(since, until)}
    return {k: v for k, v in raw.items() if v is not None}


def _ad_id(value: str) -> str:
    """``value`` checked as an ad id, lowercase (:func:`gamead_cli.options.ad_id_arg`)."""
    return ad_id_arg(value) or value


def _job_id(value: str) -> str:
    """``value`` checked as a job id, lowercase (:func:`gamead_cli.options.job_id_arg`)."""
    return job_id_arg(value) or value


def _selection(ids: list[str] | None, everything: bool, flt: dict[str, Any]) -> dict[str, Any]:
    chosen = [bool(ids), everything, bool(flt)]
    if sum(chosen) != 1:
        raise typer.BadParameter("say which entries: ad IDs, --all, or filters (--error-class, --message, "
                                 "--priority, --since, --until), exactly one of these")
    if ids:
        return {"ids": [_ad_id(i) for i in ids]}
    return {"all": True} if everything else {"filter": flt}


#: the columns of `gamead dlq list`, and the order a narrower terminal drops them in (k9s-like: whole labels and
#: ids, fewer columns; gamead_cli.fitted); the message wraps, at least MESSAGE_MIN cells wide, or goes too
ENTRY_COLUMNS = ("ID", "P", "ATT", "ERROR", "MESSAGE", time_column("DEAD AT"), "TITLE")
ENTRY_DROPS = ("TITLE", "ATT", "P", time_column("DEAD AT"), "MESSAGE")
MESSAGE_MIN = 20
ERROR_CLASS_SHOWN = 32  #: longest error class a row shows (up to 200: gamead dlq show has it whole)


def attempts_cell(entry: dict[str, Any]) -> str:
    """ATT of ``dlq list``: the attempts, and for a repeat death how often it was replayed (``3 ↻1``: 3 attempts
    since its one replay; ``dlq show`` says when). Pure."""
    replays = entry.get("replays")
    return f"{entry['attempts']} ↻{replays}" if replays else str(entry["attempts"])


def _entries_table(body: dict[str, Any]) -> RenderableType:
    """One row per entry; every label and id whole at any width: the message wraps, the title, the attempts,
    the priority and the time go first when the terminal is narrow, then the message (``gamead dlq show ID`` or
    ``-o json`` have everything)."""
    rows = [(plain(e["adId"]), str(e["priority"]), attempts_cell(e), plain(clip(e["errorClass"], ERROR_CLASS_SHOWN)),
             plain(e["errorMessage"]), plain(str(e["deadAt"])[5:19].replace("T", " ")), plain(clip(e["title"], 30)))
            for e in body["items"]]
    return FittedTable(ENTRY_COLUMNS, rows, flex="MESSAGE", drop=ENTRY_DROPS, flex_max=60, wrap=True,
                       flex_min=MESSAGE_MIN, right=("P", "ATT"))


def _list_view(body: dict[str, Any], flags: dict[str, Any] | None = None) -> Any:
    from rich.console import Group

    more = " · more exist; the next page:" if body.get("nextCursor") else ""  # the command follows the table
    stopped = "" if body.get("complete", True) else f" · read {body.get('scanned')} entries, then stopped (scan limit)"
    if not body.get("items"):
        if _in_dlq(body) == 0 and not body.get("nextCursor"):
            return empty_text("the DLQ is empty", None, "0 entries")
        return empty_text("no DLQ entries", flags, f"{_in_dlq(body)} in the DLQ{stopped}{more}")
    at_least = "" if body.get("complete", True) else "at least "  # the count stopped with the read
    of = (f" of {at_least}{body['total']} matching" if body.get("total") is not None
          else " (the matches before the cursor were not all counted: scan limit)")
    return Group(_entries_table(body), plain(f"{body['count']} shown{of} ({_in_dlq(body)} in the DLQ){more}{stopped}"))


def _in_dlq(body: dict[str, Any]) -> Any:
    """The whole DLQ's size of a ``GET /v1/dlq`` answer (``inDlq``; an older API's ``total`` meant it)."""
    return body.get("inDlq", body.get("total"))


@app.command("list")
def list_(
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Entries per page.")] = 50,
    cursor: Annotated[int, typer.Option(min=0, max=MAX_CURSOR, help="Continue after this cursor (from the previous page).")] = 0,
    newest: Annotated[bool, typer.Option("--newest", help="The most recent entries first.")] = False,
    until_seq: Annotated[int | None, typer.Option(
        "--until-seq", min=0, max=MAX_CURSOR,
        help="Only entries at or below this DLQ sequence (the next-page command passes the first page's).")] = None,
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """List dead-lettered ads (oldest first, or --newest), filtered.

    Example: gamead dlq list --error-class TaskTimeout --since 2h
    """
    flt = _filter(error_class, message, priority, since, until)
    params: dict[str, Any] = {**flt, "limit": limit, "cursor": cursor, "newest": newest}
    if until_seq is not None:
        params["untilSeq"] = until_seq
    with api_client(config, api) as client:
        body = client.request("GET", "/v1/dlq", params=params)
    flags = {"--error-class": error_class, "--message": message, "--priority": priority, "--since": since,
             "--until": until, "--cursor": cursor or None, "--until-seq": until_seq}
    emit(body, output, partial(_list_view, flags=flags))
    # the next page's command repeats the filter as sent: an age (--since 2h) as the time it stood for; and the
    # first page's fence, so that no later page shows an ad again (one replayed and dead again meanwhile is past
    # it, attack27 F5; an older API without untilSeq: none)
    same = {"--error-class": flt.get("errorClass"), "--message": flt.get("message"), "--priority": priority,
            "--since": flt.get("since"), "--until": flt.get("until"), "--until-seq": body.get("untilSeq", until_seq)}
    command = next_page_command(body, same, client.again, limit, command="dlq list", limit_flag="-n")
    if command and output != OutputFormat.json:  # -o json: its nextCursor
        print_command(command)


@app.command("show")
def show(
    ad_id: Annotated[str, typer.Argument(metavar="ID", help="The ad id.")],
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Show one dead-lettered ad with its error and history.

    Example: gamead dlq show 01m87v538ce744cfgethvyb39n -o json
    """
    path = f"/v1/dlq/{quote(_ad_id(ad_id), safe='')}"
    with api_client(config, api) as client:
        emit(client.request("GET", path), output, partial(dlq_entry_view, again=client.again))


# --- jobs ------------------------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=stderr_console(), transient=False, disable=not sys.stderr.isatty())


def job_summary(job: dict[str, Any]) -> str:
    """``replayed 28 of 28 matched · completed 28 · dead again 0 · skipped 0``: every
    figure says what it is (same wording as ``gamead_core.jobs.policy.summary``)."""
    from gamead_core.jobs.model import Job
    from gamead_core.jobs.policy import summary

    return summary(Job.model_validate(job))


def _job_view(job: dict[str, Any]) -> Any:
    """One job for people, as the other ``show``/``get`` views: labels, the outcome in words (every figure says
    what it is), times in UTC with their age; ``-o json`` keeps the wire names."""
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
    if job.get("stopReason"):
        grid.add_row("stopped because", plain(job["stopReason"]))
    reasons = job.get("skippedReasons") or {}
    if reasons:
        grid.add_row("skipped", plain("; ".join(f"{n} {why}" for why, n in reasons.items())))
    if job.get("rate"):
        grid.add_row("rate", f"{job['rate']:g} ads/s")
    if job.get("startedBy"):
        grid.add_row("started by", plain(job["startedBy"]))
    for label, key in (("created", "createdAt"), ("started", "startedAt"), ("finished", "finishedAt")):
        if job.get(key):
            grid.add_row(label, utc_when(job[key]))
    if job.get("resumes"):
        grid.add_row("resumed", f"{job['resumes']} time(s) after its API node died")
    return grid


def _follow_lines(client: ApiClient, job_id: str) -> Iterator[dict[str, Any]]:
    """The job's documents as they change, reconnecting for a while if the API node goes away."""
    lost_since: float | None = None
    while True:
        try:
            for line in client.stream_ndjson("GET", f"/v1/jobs/{quote(job_id, safe='')}"):
                lost_since = None
                yield line
            return
        except ApiUnreachable:
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > FOLLOW_RETRY_SECONDS:
                raise ApiUnreachable(f"lost the API while following job {job_id}; the job goes on on the server: "
                                     f"{follow_up('dlq', 'jobs', job_id, again=client.again)}") from None
            time.sleep(1.0)


def _phase_text(job: dict[str, Any]) -> str:
    """What the progress bar says: e.g. ``replaying · replayed 7 · completed 2 · dead again 1 · skipped 0``
    (outcomes counted as they happen) then ``waiting for outcomes · completed 5 · dead again 0 · still running 7``."""
    c, phase, kind = job.get("counts") or {}, job.get("phase"), job.get("kind", "")
    if phase == "selecting":
        return "checking every invariant" if kind == "repair" else "selecting entries"
    if phase == "following":
        return (f"waiting for outcomes · completed {c.get('completed', 0)} · dead again {c.get('deadAgain', 0)} "
                f"· still running {c.get('stillRunning', 0)}")
    if phase == "done":
        return "done"
    outcomes = f" · completed {c.get('completed', 0)} · dead again {c.get('deadAgain', 0)}" if kind == "replay" else ""
    return (f"{ACTING.get(kind, kind)} · {ACTED.get(kind, kind)} {c.get(ACTED.get(kind, ''), 0)}{outcomes} "
            f"· skipped {c.get('skipped', 0)}")


def follow_job(client: ApiClient, job: dict[str, Any], *, quiet: bool = False) -> dict[str, Any]:
    """Show a job's live progress until it ends; Ctrl-C detaches (the job goes on: exit 130)."""
    final = job
    try:
        with _progress() as progress:
            task = progress.add_task(_phase_text(job), total=None, visible=not quiet)
            for final in _follow_lines(client, job["id"]):
                counts = final.get("counts") or {}
                progress.update(task, description=_phase_text(final), total=counts.get("matched"),
                                completed=counts.get("done", 0))
                if final.get("state") not in ("queued", "running"):
                    break
    except KeyboardInterrupt:
        note_line(f"job {job['id']} continues on the server: {follow_up('dlq', 'jobs', job['id'], again=client.again)}"
                  f" · {follow_up('dlq', 'cancel', job['id'], again=client.again)}")
        raise typer.Exit(exitcodes.INTERRUPTED) from None
    return final


def _run_job(client: ApiClient, path: str, body: dict[str, Any], output: OutputFormat, detach: bool) -> None:
    job = client.request("POST", path, json=body)
    if detach:
        emit(job, output, lambda j: command_text(
            f"job {j['id']} started ({j['kind']}): {follow_up('dlq', 'jobs', j['id'], '--follow', again=client.again)}"
            f" · {follow_up('dlq', 'cancel', j['id'], again=client.again)}", style=""))
        return
    final = follow_job(client, job)
    emit(final, output, _job_view)
    if final.get("state") != "succeeded":
        raise typer.Exit(exitcodes.ERROR)


def _preview(client: ApiClient, path: str, selection: dict[str, Any]) -> dict[str, Any]:
    preview = client.request("POST", path, json={**selection, "dryRun": True})
    if not preview.get("complete", True):
        note_line(f"the count read {preview.get('scanned')} entries and stopped (dlq.scan_limit / dlq.scan_time); "
                  "the job itself reads the whole DLQ")
    return preview


def _would(preview: dict[str, Any], verb: str) -> Any:
    """A dry run's answer: ``28 entries would be purged`` (``at least`` when the count stopped early)."""
    n = preview["matched"]
    at_least = "" if preview.get("complete", True) else "at least "
    return plain(f"{at_least}{n} entr{'y' if n == 1 else 'ies'} would be {verb}{_not_in_dlq(preview)}")


def _none_matched(preview: dict[str, Any], verb: str) -> Any:
    """A real replay's or purge's answer when its count found nothing: ``no entries matched: nothing purged``
    (never the dry run's wording: nothing was asked, nothing was done)."""
    return plain(f"no entries matched: nothing {verb}{_not_in_dlq(preview)}")


def _not_in_dlq(preview: dict[str, Any]) -> str:
    return f" ({preview['notInDlq']} of the ids are not in the DLQ)" if preview.get("notInDlq") else ""


def _nothing_to_do(preview: dict[str, Any]) -> bool:
    """The count found no entry and read the whole DLQ (a count that stopped early proves nothing: the job reads
    it all)."""
    return preview["matched"] == 0 and bool(preview.get("complete", True))


def _how_many(preview: dict[str, Any]) -> str:
    """``28`` or, after a count that stopped early, ``at least 28``."""
    return f"{'' if preview.get('complete', True) else 'at least '}{preview['matched']}"


def _count_ask_run(client: ApiClient, path: str, selection: dict[str, Any], body: dict[str, Any], verb: str,
                   question: str, *, dry_run: bool, yes: bool, output: OutputFormat, detach: bool) -> None:
    """The one course of a replay or a purge: count the ``selection`` (a dry run at ``path``); with ``dry_run``
    say what would be ``verb``; when the count read the whole DLQ and found nothing, say nothing was done (never
    as a dry run); else ask ``question`` (``{n}``: the count) unless ``yes``, and run the job with ``body``."""
    preview = _preview(client, path, selection)
    if dry_run:
        emit(preview, output, lambda p: _would(p, verb))
        return
    if _nothing_to_do(preview):
        emit({**preview, "dryRun": False}, output, lambda p: _none_matched(p, verb))  # it was no dry run
        return
    confirm(question.format(n=_how_many(preview)), yes, api=client.api_url)
    _run_job(client, path, body, output, detach)


@app.command("replay")
def replay(
    ids: IdsArg = None, everything: AllOpt = False,
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be replayed.")] = False,
    rate: Annotated[float | None, typer.Option(
        callback=bounded_float(MIN_REPLAY_RATE, MAX_REPLAY_RATE),
        help=f"Replays per second, {MIN_REPLAY_RATE:g} to {MAX_REPLAY_RATE:g} \\[dlq.replay_rate].")] = None,
    stop_on_failure_rate: Annotated[float | None, typer.Option(
        callback=bounded_float(0, 1), help="Stop when more than this share of replayed ads fail again (e.g. 0.5).")] = None,
    detach: DetachOpt = False,
    yes: YesOpt = False, output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Send dead-lettered ads back to their original priority, as a job on the server: shows its progress,
    then what became of the replayed ads (completed, dead again, still running). Ctrl-C detaches.

    Example: gamead dlq replay --error-class TaskTimeout --rate 20 --stop-on-failure-rate 0.5
    """
    selection = _selection(ids, everything, _filter(error_class, message, priority, since, until))
    body: dict[str, Any] = {**selection}
    if rate:
        body["rate"] = rate
    if stop_on_failure_rate is not None:
        body["stopOnFailureRate"] = stop_on_failure_rate
    with api_client(config, api) as client:
        _count_ask_run(client, "/v1/dlq/replay", selection, body, "replayed", "Replay {n} dead-lettered ad(s)?",
                       dry_run=dry_run, yes=yes, output=output, detach=detach)


@app.command("purge")
def purge(
    ids: IdsArg = None, everything: AllOpt = False,
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be purged.")] = False,
    detach: DetachOpt = False,
    yes: YesOpt = False, output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Delete dead-lettered ads for good, as a job on the server (their records become `failed`: kept, never
    retried). Asks first unless --yes.

    Example: gamead dlq purge --priority 5 --until 7d --yes
    """
    selection = _selection(ids, everything, _filter(error_class, message, priority, since, until))
    with api_client(config, api) as client:
        _count_ask_run(client, "/v1/dlq/purge", selection, {**selection, "confirm": True}, "purged",
                       "Purge {n} dead-lettered ad(s)? This cannot be undone",
                       dry_run=dry_run, yes=yes, output=output, detach=detach)


JOB_COLUMNS = ("JOB", "KIND", "STATE", "PHASE", "DONE/MATCHED", "SUMMARY", "BY", time_column("CREATED"))
JOB_DROPS = ("BY", "PHASE", time_column("CREATED"))


def _jobs_table(body: dict[str, Any], flags: dict[str, Any] | None = None) -> RenderableType:
    """One row per job; labels and job ids whole at any width: the summary wraps, who started it, the phase
    and the creation time go first when the terminal is narrow. ``no jobs`` when there is none."""
    if not body.get("items"):
        return empty_text("no jobs", flags, "a job is kept jobs.retention, 7 days by default")
    rows = []
    for j in body["items"]:
        c = j.get("counts") or {}
        rows.append((plain(j["id"]), plain(j["kind"]), plain(j["state"]), plain(j.get("phase") or ""),
                     f"{c.get('done', 0)}/{c.get('matched', 0)}", plain(job_summary(j)), plain(j.get("startedBy") or ""),
                     plain(str(j.get("createdAt", ""))[5:19].replace("T", " "))))
    return FittedTable(JOB_COLUMNS, rows, flex="SUMMARY", drop=JOB_DROPS, flex_max=80, wrap=True,
                       right=("DONE/MATCHED",))


@app.command("jobs")
def jobs(
    job: Annotated[str | None, typer.Argument(metavar="[JOB]", help="One job's id: show it.")] = None,
    kind: Annotated[str | None, typer.Option(help="Only replay, purge, import or repair jobs.")] = None,
    state: Annotated[str | None, typer.Option(
        help="Only jobs in this state: queued, running, succeeded, failed, cancelled, interrupted.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Most jobs listed.")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="With JOB: show its progress until it ends.")] = False,
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """List the DLQ's operator jobs (replay, purge, import, repair), newest first; or show (--follow) one.

    Example: gamead dlq jobs --state running · gamead dlq jobs 01jb2… --follow
    """
    if kind is not None and kind not in ACTED:
        raise typer.BadParameter(f"{kind!r}: use replay, purge, import or repair", param_hint="--kind")
    if state is not None and state not in JOB_STATES:
        raise typer.BadParameter(f"{state!r}: use one of {', '.join(JOB_STATES)}", param_hint="--state")
    with api_client(config, api) as client:
        if job is not None:
            path = f"/v1/jobs/{quote(_job_id(job), safe='')}"
            found = client.request("GET", path)
            if follow:
                found = follow_job(client, found)
            emit(found, output, _job_view)
            return
        params: dict[str, Any] = {"limit": limit}
        if kind:
            params["kind"] = kind
        if state:
            params["state"] = state
        emit(client.request("GET", "/v1/jobs", params=params), output,
             partial(_jobs_table, flags={"--kind": kind, "--state": state}))


@app.command("cancel")
def cancel(
    job: Annotated[str, typer.Argument(metavar="JOB", help="The job's id (from `gamead dlq jobs`).")],
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Stop a running job: what it did stays done, the rest of its entries stay in the DLQ.

    Example: gamead dlq cancel 01jb2x4k7m9p3q5r8s0t2v4w6y
    """
    path = f"/v1/jobs/{quote(_job_id(job), safe='')}/cancel"
    with api_client(config, api) as client:
        found = client.request("POST", path)
    emit(found, output, lambda j: command_text(f"cancel asked for job {j['id']}: it stops within a second "
                                               f"({follow_up('dlq', 'jobs', j['id'], again=client.again)})", style=""))


# --- export / import ---------------------------------------------------------------------------------


@app.command("export")
def export(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSONL file to write, or - for stdout.")] = "-",
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Write matching entries as JSON Lines (one entry per line, every field) for offline analysis or import.

    Example: gamead dlq export dead.jsonl --since 1d
    """
    params: dict[str, Any] = {**_filter(error_class, message, priority, since, until), "limit": EXPORT_PAGE}
    try:  # the file replaces FILE only once every page is written: a failure leaves an old FILE intact
        pending = None if file == "-" else PendingFile(file, said="; nothing was exported")
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {file}: {exc.strerror or exc}", param_hint="FILE") from None
    out = sys.stdout if pending is None else pending.file
    # each ad once (attack27 F5): a temporary file keeps its newest entry, lines that cannot be taken back its first
    once = OncePerAd(take_back=pending is not None and pending.tmp is not None)
    read = 0
    try:
        with api_client(config, api) as client, _progress() as progress:
            task = progress.add_task("exporting", total=None)
            cursor = 0
            while True:
                # the total matching is counted once, by the first page; later pages count nothing (count=false)
                page = client.request("GET", "/v1/dlq", params={**params, "cursor": cursor,
                                                                 **({} if cursor == 0 else {"count": "false"})})
                if cursor == 0:
                    progress.update(task, total=page["total"])
                for entry in page["items"]:
                    entry.pop("seq", None)
                    # FILE's failed write is OutputFailed naming it (PendingFile's file); stdout's, the boundary's
                    if once.add(str(entry.get("adId"))):
                        out.write(strict_dumps(entry, separators=(",", ":")) + "\n")
                    read += 1
                progress.update(task, completed=read)
                if not page.get("nextCursor"):
                    break
                cursor = page["nextCursor"]
    except BaseException:
        if pending is not None:
            pending.discard()
        raise
    if pending is not None:
        try:  # what is buffered cannot be written: OutputFailed already; the rename failing: OSError, said here
            if once.dropped:
                pending.drop_lines(once.dropped)
            pending.commit()
        except OSError as exc:  # not bad usage, exit 1
            raise OutputFailed(f"cannot write {file}: {exc.strerror or exc}; nothing was exported") from None
    kept = once.kept
    if once.changed:
        _say_changed(once)
    if file != "-":
        note_line(f"exported {kept} entr{'y' if kept == 1 else 'ies'} to {file}")
    elif kept == 0:  # stdout holds nothing: say why on stderr
        note_line("no DLQ entries match: nothing exported")


def _say_changed(once: OncePerAd) -> None:
    """On stderr: how many ads' entries changed while ``dlq export`` paged (replayed and dead again: met twice),
    and which entry the output kept (:class:`gamead_cli.once_per_ad.OncePerAd`)."""
    ads = f"{once.changed} ad{'' if once.changed == 1 else 's'}"
    if once.take_back:
        note_line(f"{ads} changed during the export (replayed and dead again): written once each, its newest entry")
    else:
        stderr_console().print(Text(
            f"{ads} changed during the export (replayed and dead again): written once each with its first entry, "
            "which is no longer in the DLQ; this output is not a consistent snapshot (export to a regular FILE to "
            "keep the newest entries)", style="yellow"), soft_wrap=True)


def entries_of(fh: IO[bytes], where: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, entry)`` for every non-blank line of the JSONL file open in ``fh`` (named ``where`` in
    messages), read and checked one line at a time: memory is one line (at most :data:`MAX_IMPORT_LINE_BYTES`,
    :func:`gamead_cli.inputs.bounded_lines`) whatever the file, and a fault stops the reading where it is.
    Raises :class:`gamead_cli.inputs.BadInputFile` (exit 2) for a file larger than :data:`MAX_IMPORT_BYTES` or
    that cannot be read, and naming ``FILE:LINE`` for a line longer than :data:`MAX_IMPORT_LINE_BYTES`, not UTF-8
    (UTF-16/32 refused, a UTF-8 BOM dropped), not strict JSON (``NaN``, ``Infinity`` included), not a JSON
    object, or an object without ``adId`` (every DLQ entry names its ad: a file of ads is refused at line 1)."""
    from gamead_cli.inputs import BadInputFile, TooLarge, bounded_lines, json_line

    try:
        for n, line in bounded_lines(fh, MAX_IMPORT_LINE_BYTES, MAX_IMPORT_BYTES):
            if line is not None and not line.strip():
                continue
            try:
                entry = json_line(n, line, where, MAX_IMPORT_LINE_BYTES)
            except BadInputFile as exc:
                if line is None:
                    raise BadInputFile(where, f"{exc.problem} (an entry must fit in one API request)", n) from None
                raise
            if not isinstance(entry, dict):
                raise BadInputFile(where, "not a JSON object (expected JSON Lines from `gamead dlq export`)", n)
            if "adId" not in entry:
                raise BadInputFile(where, "not a DLQ entry (no adId; expected JSON Lines from `gamead dlq export`)",
                                   n)
            yield n, entry
    except TooLarge:
        raise BadInputFile(where, f"larger than {MAX_IMPORT_BYTES // 1024**2} MiB; split it") from None
    except OSError as exc:
        raise BadInputFile(where, f"cannot be read ({exc.strerror or exc})") from None


def read_entries(file: str) -> list[tuple[int, dict[str, Any]]]:
    """:func:`entries_of` the file ``file`` (``-`` = stdin), as a list (a small file: ``dlq import`` itself
    streams). Raises as :func:`entries_of`, and :class:`gamead_cli.inputs.BadInputFile` for a file that does not
    exist, cannot be read or is not a regular file."""
    from gamead_cli.inputs import input_name, open_input

    fh = open_input(file)
    try:
        return list(entries_of(fh, input_name(file)))
    finally:
        if file != "-":
            fh.close()


class _Tee:
    """``readline`` of a binary file that also writes what it read to ``copy`` (stdin, read again from it)."""

    def __init__(self, fh: IO[bytes], copy: IO[bytes]) -> None:
        self.fh, self.copy = fh, copy

    def readline(self, limit: int = -1) -> bytes:
        data: bytes | str = self.fh.readline(limit)
        if isinstance(data, str):  # a text stdin (tests): same bytes
            data = data.encode("utf-8", "surrogateescape")
        self.copy.write(data)
        return data


def _batches(entries: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    """``entries`` in lists of at most :data:`IMPORT_BATCH_ENTRIES` and about :data:`IMPORT_BATCH_BYTES` of
    JSON (one request each), read lazily: one batch in memory at a time."""
    batch: list[tuple[int, dict[str, Any]]] = []
    size = 0
    for item in entries:
        n = len(json.dumps(item[1], separators=(",", ":")))
        if batch and (size + n > IMPORT_BATCH_BYTES or len(batch) >= IMPORT_BATCH_ENTRIES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += n
    if batch:
        yield batch


def _invalid_line(file: str, batch: list[tuple[int, dict[str, Any]]], exc: ApiClientError) -> typer.BadParameter:
    """A 422 on ``entries.N.field`` → ``FILE:LINE: field: why``: bad input, exit 2, as a line that is not JSON
    (:class:`gamead_cli.inputs.BadInputFile`)."""
    from gamead_cli.inputs import BadInputFile, input_name

    for item in exc.details if isinstance(exc.details, list) else []:
        loc = str(item.get("loc", "")) if isinstance(item, dict) else ""
        parts = loc.split(".")
        index = parts[1] if len(parts) >= 2 and parts[0] == "entries" else ""
        if index.isascii() and index.isdigit() and int(index) < len(batch):
            field = ".".join(parts[2:]) or "(entry)"
            return BadInputFile(input_name(file), f"{field}: {item.get('msg')} (nothing was imported)",
                                batch[int(index)][0])
    return BadInputFile(input_name(file), f"{exc.message} (nothing was imported)")


def _import(file: str, batches: Callable[[], Iterator[list[tuple[int, dict[str, Any]]]]], lines: int,
            config: str | None, api: str | None) -> dict[str, Any]:
    """Send the ``lines`` entries ``batches()`` yields (a fresh pass over the file each call, one batch in memory
    at a time): every batch validated first (``dryRun``: a 422 names ``file:line``, exit 2, nothing written),
    then imported batch by batch, each job followed to its end. Returns the totals ``dlq import`` prints."""
    totals: dict[str, Any] = {"lines": lines, "imported": 0, "skipped": 0, "skippedReasons": {}, "jobs": []}
    with api_client(config, api) as client:
        for batch in batches():  # validate everything first
            try:
                client.request("POST", "/v1/dlq/import", json={"entries": [e for _, e in batch], "dryRun": True})
            except ApiClientError as exc:
                if exc.status == 422:
                    raise _invalid_line(file, batch, exc) from None
                raise
        with _progress() as progress:
            task = progress.add_task("importing", total=lines)
            for batch in batches():
                job = client.request("POST", "/v1/dlq/import", json={"entries": [e for _, e in batch]})
                final = follow_job(client, job, quiet=True)
                counts = final.get("counts") or {}
                totals["jobs"].append(final["id"])
                totals["imported"] += counts.get("imported", 0)
                totals["skipped"] += counts.get("skipped", 0)
                for why, n in (final.get("skippedReasons") or {}).items():
                    totals["skippedReasons"][why] = totals["skippedReasons"].get(why, 0) + n
                progress.advance(task, len(batch))
                if final.get("state") != "succeeded":
                    raise GameadError(f"import job {final['id']} {final.get('state')}: {final.get('stopReason')}; "
                                      f"imported {totals['imported']} of {lines} lines so far")
    return totals


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSONL from `gamead dlq export`, or - for stdin.")],
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Put exported entries into this environment's DLQ (then `gamead dlq replay` them here). Every line is
    checked by the API before anything is written; ads alive here are skipped.

    Example: gamead dlq import dead.jsonl --api http://staging:8080
    """
    from gamead_cli.inputs import input_name, open_input

    where = input_name(file)
    fh = open_input(file)
    copy = tempfile.TemporaryFile() if file == "-" else None  # noqa: SIM115 - closed below
    try:
        # 1. every line checked here, one at a time, before any request (stdin kept in a file to be read again)
        lines = sum(1 for _ in entries_of(fh if copy is None else _Tee(fh, copy), where))  # type: ignore[arg-type]
        again = fh if copy is None else copy

        def batches() -> Iterator[list[tuple[int, dict[str, Any]]]]:
            again.seek(0)
            return _batches(entries_of(again, where))

        totals = _import(file, batches, lines, config, api)
    finally:
        if copy is not None:
            copy.close()
        if file != "-":
            fh.close()

    def view(t: dict[str, Any]) -> Any:
        text = f"imported {t['imported']} of {t['lines']} lines · skipped {t['skipped']}"
        if t["skippedReasons"]:
            text += " (" + "; ".join(f"{n} {why}" for why, n in t["skippedReasons"].items()) + ")"
        return plain(text)

    emit(totals, output, view)
