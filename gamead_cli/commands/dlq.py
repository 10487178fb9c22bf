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

import sys
from collections.abc import Iterator
from functools import partial
from typing import Annotated, Any
from urllib.parse import quote

import typer

from gamead_cli.api_words import cli_words
from gamead_cli.atomic import PendingFile
from gamead_cli.choices import NotOneOf
from gamead_cli.commands.dlq_filters import (
    AllOpt,
    DetachOpt,
    ErrorClassOpt,
    IdsArg,
    MessageOpt,
    PriorityOpt,
    SinceOpt,
    UntilOpt,
    checked_ad_id,
    checked_job_id,
    filter_body,
    on_service_clock,
    selection_body,
    window_of,
)
from gamead_cli.commands.dlq_jobs import ACTED, count_ask_run, follow_job, job_progress, piped_progress
from gamead_cli.commands.dlq_transfer import (
    checked_copy,
    entries_of,
    export_failed,
    import_batches,
    import_entries,
    say_changed,
)
from gamead_cli.commands.dlq_views import dlq_entry, job_view, jobs_table, list_view, skipped_words
from gamead_cli.exitcodes import OutputFailed
from gamead_cli.formats import command_text, counted, plain, window_text
from gamead_cli.inputs import strict_dumps
from gamead_cli.once_per_ad import OncePerAd
from gamead_cli.options import (ApiOpt, ConfigOpt, OutputFormat, OutputOpt, YesOpt, api_client, bounded_float,
                                sequence_between)
from gamead_cli.output import emit, note_line, print_command
from gamead_cli.program import follow_up
from gamead_cli.record_views import dlq_entry_view, next_page_command
from gamead_cli.stdout_guard import done_before_output
from gamead_cli.stops import signals_interrupt, write_out
from gamead_core.dlq_pattern import MAX_REPLAY_RATE
from gamead_core.ids import MAX_CURSOR

app = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode="rich")

EXPORT_PAGE = 500
#: bounds of `dlq replay --rate` (ads per second), those of the API's replay job
MIN_REPLAY_RATE = 0.001
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")


@app.command("list")
def list_(
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Entries per page.")] = 50,
    cursor: Annotated[int, typer.Option(callback=sequence_between(0, MAX_CURSOR), metavar="SEQ",
                                        help="Continue after this cursor (from the previous page).")] = 0,
    newest: Annotated[bool, typer.Option("--newest", help="The most recent entries first.")] = False,
    until_seq: Annotated[int | None, typer.Option(
        "--until-seq", callback=sequence_between(0, MAX_CURSOR), metavar="SEQ",
        help="Only entries at or below this DLQ sequence (the next-page command passes the first page's).")] = None,
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """List dead-lettered ads (oldest first, or --newest), filtered.

    Example: gamead dlq list --error-class TaskTimeout --since 2h
    """
    flt = filter_body(error_class, message, priority, since, until)
    with api_client(config, api) as client:
        flt = on_service_clock(client, flt, since, until)  # --since 2m: 2 min before the service's now
        params: dict[str, Any] = {**flt, "limit": limit, "cursor": cursor, "newest": newest}
        body = {**client.request("GET", "/v1/dlq", params={**params, **({} if until_seq is None else
                                                                       {"untilSeq": until_seq})}), **window_of(flt)}
    flags = {"--error-class": error_class, "--message": message, "--priority": priority, "--since": since,
             "--until": until, "--cursor": cursor or None, "--until-seq": until_seq}
    emit(body, output, partial(list_view, flags=flags))
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
    with api_client(config, api) as client:
        entry = dlq_entry(client, checked_ad_id(ad_id))
    emit(entry, output, partial(dlq_entry_view, again=client.again))


# --- jobs ------------------------------------------------------------------------------------------


@app.command("replay")
def replay(
    ids: IdsArg = None, everything: AllOpt = False,
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be replayed.")] = False,
    rate: Annotated[float | None, typer.Option(
        callback=bounded_float(MIN_REPLAY_RATE, MAX_REPLAY_RATE),
        help=f"Replays per second, {MIN_REPLAY_RATE:g} to {MAX_REPLAY_RATE:,g} \\[dlq.replay_rate].")] = None,
    stop_on_failure_rate: Annotated[float | None, typer.Option(
        callback=bounded_float(0, 1), help="Stop when more than this share of replayed ads fail again (e.g. 0.5).")] = None,
    detach: DetachOpt = False,
    yes: YesOpt = False, output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Send dead-lettered ads back to their original priority, as a job on the server: shows its progress,
    then what became of the replayed ads (completed, dead again, still running). Ctrl-C detaches.

    Example: gamead dlq replay --error-class TaskTimeout --rate 20 --stop-on-failure-rate 0.5
    """
    flt = filter_body(error_class, message, priority, since, until)
    selection_body(ids, everything, flt)  # which entries: said before any request (bad usage)
    with signals_interrupt(), api_client(config, api) as client:  # SIGTERM/SIGHUP as Ctrl-C (review30b F5)
        selection = selection_body(ids, everything, on_service_clock(client, flt, since, until))
        body: dict[str, Any] = {**selection, **({"rate": rate} if rate else {})}
        if stop_on_failure_rate is not None:
            body["stopOnFailureRate"] = stop_on_failure_rate
        count_ask_run(client, "/v1/dlq/replay", selection, body, "replayed",
                       "Replay {n} dead-lettered ad(s){window}?",
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
    flt = filter_body(error_class, message, priority, since, until)
    selection_body(ids, everything, flt)  # which entries: said before any request (bad usage)
    with signals_interrupt(), api_client(config, api) as client:
        selection = selection_body(ids, everything, on_service_clock(client, flt, since, until))
        count_ask_run(client, "/v1/dlq/purge", selection, {**selection, "confirm": True}, "purged",
                       "Purge {n} dead-lettered ad(s){window}? This cannot be undone",
                       dry_run=dry_run, yes=yes, output=output, detach=detach)


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

    [bold]Examples[/bold]

      gamead dlq jobs --state running
      gamead dlq jobs 01jb2x4k7m9p3q5r8s0t2v4w6y --follow
    """
    if kind is not None and kind not in ACTED:
        raise NotOneOf(kind, ACTED, param_hint="--kind")
    if state is not None and state not in JOB_STATES:
        raise NotOneOf(state, JOB_STATES, param_hint="--state")
    with api_client(config, api) as client:
        if job is not None:
            path = f"/v1/jobs/{quote(checked_job_id(job), safe='')}"
            found = client.request("GET", path)
            each = piped_progress(output) if follow else None
            followed = follow_job(client, found, each=each) if follow else found
            # NDJSON: its last line is the final job (found: the API streamed none, said here)
            if each is None or output != OutputFormat.json or followed is found:
                emit(followed, output, partial(job_view, again=client.again))
            return
        params: dict[str, Any] = {"limit": limit}
        if kind:
            params["kind"] = kind
        if state:
            params["state"] = state
        emit(client.request("GET", "/v1/jobs", params=params), output,
             partial(jobs_table, flags={"--kind": kind, "--state": state}))


@app.command("cancel")
def cancel(
    job: Annotated[str, typer.Argument(metavar="JOB", help="The job's id (from `gamead dlq jobs`).")],
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Stop a running job: what it did stays done, the rest of its entries stay in the DLQ.

    Example: gamead dlq cancel 01jb2x4k7m9p3q5r8s0t2v4w6y
    """
    path = f"/v1/jobs/{quote(checked_job_id(job), safe='')}/cancel"
    with api_client(config, api) as client, write_out(f"POST {path}", follow_up("dlq", "jobs", job,
                                                                                again=client.again)):
        found = client.request("POST", path)
        done_before_output(f"the cancel of job {job} WAS asked (it stops within a second); do not ask again")
    emit(found, output, lambda j: command_text((  # ended by the API, its runner gone (a31b F2b; done: succeeded)
        f"job {j['id']} {j['state']}: {cli_words(str(j.get('stopReason')), client.again)}"
        if j.get("state") not in ("queued", "running") else
        f"cancel asked for job {j['id']}: it stops within a second")
        + f" ({follow_up('dlq', 'jobs', j['id'], again=client.again)})", style=""))


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
    flt = filter_body(error_class, message, priority, since, until)
    try:  # the file replaces FILE only once every page is written: a failure leaves an old FILE intact
        pending = None if file == "-" else PendingFile(file, said=lambda: export_failed(pending, written))
    except OSError as exc:
        raise typer.BadParameter(f"cannot write {file}: {exc.strerror or exc}", param_hint="FILE") from None
    out = sys.stdout if pending is None else pending.file
    # each ad once (attack27 F5): a temporary file keeps its newest entry, lines that cannot be taken back its first
    once = OncePerAd(take_back=pending is not None and pending.tmp is not None)
    read, written = 0, [0]  # written: lines handed to FILE (a list: the failure's text reads it when it comes)
    try:
        with api_client(config, api) as client, job_progress() as progress:
            flt = on_service_clock(client, flt, since, until)  # --since 1d: a day before the service's now
            params: dict[str, Any] = {**flt, "limit": EXPORT_PAGE}
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
                        written[0] += 1
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
            said = export_failed(pending, written)
            raise OutputFailed(f"cannot write {file}: {exc.strerror or exc}{said}") from None
    kept = once.kept
    if once.changed:
        say_changed(once)
    window = window_text(flt)  # the absolute window an age stood for (attack33a F10)
    if file != "-" or kept:  # words58: `export -` said nothing where `export FILE` said this line
        note_line(f"exported {counted(kept, 'entry', 'entries')}{' ' + window if window else ''}"
                  + f" to {file if file != '-' else 'stdout'}")
    else:  # stdout holds nothing: say why on stderr
        note_line(f"no DLQ entries{' ' + window if window else ''} match: nothing exported")


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
    fh = open_input(file, verb="gamead dlq import")
    try:
        # 1. every line checked here, one at a time, before any request, and kept in a private copy that the
        # validation and the import read again: stdin, and a FILE that changes meanwhile (attack30c F7: a line cut
        # after half of it was imported was "Invalid value for FILE", exit 2), import what was checked
        lines, copy = checked_copy(fh, where)  # a regular FILE over the bound refused by its size first (F10)
    finally:
        if file != "-":
            fh.close()
    try:
        def batches() -> Iterator[list[tuple[int, dict[str, Any]]]]:
            copy.seek(0)
            return import_batches(entries_of(copy, where))

        totals = import_entries(file, batches, lines, config, api)
    finally:
        copy.close()

    def view(t: dict[str, Any]) -> Any:
        text = f"imported {t['imported']:,} of {t['lines']:,} lines · skipped {t['skipped']:,}"
        return plain(text + (f": {skipped_words(t['skippedReasons'], t['skipped'])}" if t["skippedReasons"] else ""))

    done_before_output(f"the import WAS done: imported {totals['imported']:,} of {totals['lines']:,} lines, skipped "
                       f"{totals['skipped']:,}; do not import again")
    emit(totals, output, view)
