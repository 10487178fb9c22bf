"""The DLQ's operator jobs from the command line: count first (a dry run), ask, start the job on the server
and follow its progress until it ends (Ctrl-C detaches: the job goes on)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from urllib.parse import quote

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gamead_cli.api_words import cli_words
from gamead_cli import exitcodes
from gamead_cli.client import ApiClient
from gamead_cli.commands.dlq_filters import window_of
from gamead_cli.commands.dlq_views import job_view, named_ids, none_matched_view, would_view
from gamead_cli.formats import command_text, count_text, window_text
from gamead_cli.inputs import strict_dumps
from gamead_cli.options import OutputFormat, confirm
from gamead_cli.output import CountsColumn, StderrProgress, emit, note_line, stderr_console
from gamead_cli.program import follow_up
from gamead_cli.stdout_guard import done_before_output
from gamead_cli.stops import stopped_by, write_out
from gamead_core.errors import ApiUnreachable, NotFound

FOLLOW_RETRY_SECONDS = 30.0  #: how long following a job survives losing the API (the job goes on regardless)
ACTED = {"replay": "replayed", "purge": "purged", "import": "imported", "repair": "repaired"}
ACTING = {"replay": "replaying", "purge": "purging", "import": "importing", "repair": "repairing"}


def job_progress() -> Progress:
    return StderrProgress(TextColumn("{task.description}"), BarColumn(), CountsColumn(), TimeElapsedColumn(),
                          console=stderr_console(), transient=False, disable=not sys.stderr.isatty())


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
        return (f"waiting for outcomes · completed {count_text(c.get('completed', 0))} · dead again "
                f"{count_text(c.get('deadAgain', 0))} · still running {count_text(c.get('stillRunning', 0))}")
    if phase == "done":
        return "done"
    if job.get("waiting"):  # an action that waits (a stuck lease: released once unchanged for its TTL)
        return f"{ACTING.get(kind, kind)} · waiting: {job['waiting']}"
    outcomes = (f" · completed {count_text(c.get('completed', 0))} · dead again {count_text(c.get('deadAgain', 0))}"
                if kind == "replay" else "")
    return (f"{ACTING.get(kind, kind)} · {ACTED.get(kind, kind)} {count_text(c.get(ACTED.get(kind, ''), 0))}{outcomes} "
            f"· skipped {count_text(c.get('skipped', 0))}")


def piped_progress(output: OutputFormat) -> Callable[[dict[str, Any]], None] | None:
    """What ``dlq jobs JOB --follow`` writes to a stdout that is not a terminal (a pipe, a file) for each job
    document the API streams, flushed as it comes (words56b F1: a pipe got nothing until the job ended): ``-o json``
    the document as one JSON line (NDJSON); else ``job ID running: replaying · replayed 7 · …`` when that line
    changed. None to a terminal (the progress bar on stderr says it). README ``dlq jobs``."""
    if sys.stdout.isatty():
        return None
    said = {"line": ""}

    def each(doc: dict[str, Any]) -> None:
        if output == OutputFormat.json:
            sys.stdout.write(strict_dumps(doc, default=str) + "\n")
            sys.stdout.flush()
            return
        line = f"job {doc.get('id')} {doc.get('state')}: {_phase_text(doc)}"
        if line != said["line"]:
            said["line"] = line
            emit(doc, output, lambda _: command_text(line, style=""))  # its text shown safe, as every view
            sys.stdout.flush()

    return each


def follow_job(client: ApiClient, job: dict[str, Any], *, quiet: bool = False, detach: bool = True,
               each: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Show a job's live progress until it ends; Ctrl-C detaches (the job goes on: exit 130; SIGTERM / SIGHUP
    taken as it, 143 / 129: regress40 F5, all were 130), or with ``detach`` False is raised as it is (``dlq import``,
    one job per batch, says what the rest of its file became). ``each``: called with every job document the API
    streams (:func:`piped_progress`)."""
    final, waiting = job, None
    try:
        with job_progress() as progress:
            # its plain lines on a stderr no terminal (StderrProgress) unless stdout says each change (``each``)
            shown = not quiet and not (each and progress.disable)
            task = progress.add_task(_phase_text(job), total=None, visible=shown)
            for final in _follow_lines(client, job["id"]):
                counts = final.get("counts") or {}
                if final.get("waiting") and final["waiting"] != waiting and not quiet:  # said once, bar or none
                    progress.console.print(f"• waiting: {final['waiting']}", style="dim", soft_wrap=True,
                                           highlight=False, markup=False)
                waiting = final.get("waiting")
                progress.update(task, description=_phase_text(final), total=counts.get("matched"),
                                completed=counts.get("done", 0))
                if each is not None:
                    each(final)
                if final.get("state") not in ("queued", "running"):
                    break
    except KeyboardInterrupt:
        if not detach:
            raise
        raise exitcodes.Interrupted(  # one red error: line, as every interrupted line (words56b F2)
            f"interrupted ({stopped_by()}): job {job['id']} continues on the server: "
            f"{follow_up('dlq', 'jobs', job['id'], again=client.again)}"
            f" · {follow_up('dlq', 'cancel', job['id'], again=client.again)}") from None
    return final


def _run_job(client: ApiClient, path: str, body: dict[str, Any], output: OutputFormat, detach: bool,
             missing: list[str], window: dict[str, Any]) -> None:
    """Start the job and follow it (or not: ``detach``); ``missing``: the given ids the count found no entry of,
    named in the ``-o json`` document as ``notInDlqIds``; ``window``: the resolved ``since``/``until``, in it too.
    Exit 1 for a job that did not succeed, 4 (``not_found``) for one over ids none of which was in the DLQ any
    more when it ran (replayed or purged since the count)."""
    extra = {**({"notInDlqIds": missing} if missing else {}), **window}
    with write_out(f"POST {path}", follow_up("dlq", "jobs", again=client.again)):
        job = client.request("POST", path, json=body)
        done_before_output(f"job {job.get('id')} WAS started ({job.get('kind')}): "
                           f"{follow_up('dlq', 'jobs', str(job.get('id')), again=client.again)}; do not start it again")
    if detach:
        emit({**job, **extra}, output, lambda j: command_text(
            f"job {j['id']} started ({j['kind']}): {follow_up('dlq', 'jobs', j['id'], '--follow', again=client.again)}"
            f" · {follow_up('dlq', 'cancel', j['id'], again=client.again)}", style=""))
        return
    final = follow_job(client, job)
    counts = final.get("counts") or {}
    done_before_output(f"job {final.get('id')} ({final.get('kind')}) ended {final.get('state')}: "
                       f"{counts.get('done', 0)} of {counts.get('matched', '?')} done; do not start it again")
    emit({**final, **extra}, output, partial(job_view, again=client.again))
    if final.get("state") != "succeeded":
        raise typer.Exit(exitcodes.ERROR)
    selection = final.get("selection") or {}
    if selection.get("mode") == "ids" and not (final.get("counts") or {}).get("matched") and selection.get("notInDlq"):
        raise NotFound(f"none of the {selection['notInDlq']} given id(s) was in the DLQ when job {final['id']} ran")


def not_in_dlq_text(preview: dict[str, Any], given: int) -> str:
    """``not in the DLQ: 01m8…, 01m9…`` (the ids a count found no entry of; an older API gave only their number:
    ``2 of the 3 ids are not in the DLQ``); ``none of the given ids is in the DLQ: …`` when it is all of them."""
    ids, n = preview.get("notInDlqIds"), int(preview.get("notInDlq") or 0)
    named = named_ids(ids) if ids else f"{n} of the {given} ids"
    if preview.get("matched", 0) == 0:
        return f"none of the given ids is in the DLQ ({named})" if ids else f"none of the {given} ids is in the DLQ"
    return f"not in the DLQ: {named}"


def _preview(client: ApiClient, path: str, selection: dict[str, Any]) -> dict[str, Any]:
    preview = client.request("POST", path, json={**selection, "dryRun": True})
    if not preview.get("complete", True):
        bound = preview.get("stoppedAt") or "dlq.scan_limit / dlq.scan_time"
        note_line(f"the count read {count_text(preview.get('scanned'))} entries and stopped at {bound}; the job "
                  "itself reads the whole DLQ")
    return preview


def _nothing_to_do(preview: dict[str, Any]) -> bool:
    """The count found no entry and read the whole DLQ (a count that stopped early proves nothing: the job reads
    it all)."""
    return preview["matched"] == 0 and bool(preview.get("complete", True))


def _how_many(preview: dict[str, Any]) -> str:
    """``28`` or, after a count that stopped early, ``at least 28``; ``28 (the job's limit; more match)``."""
    past = " (the job's limit; more match)" if preview.get("pastLimit") else ""
    return f"{'' if preview.get('complete', True) else 'at least '}{count_text(preview['matched'])}{past}"


def count_ask_run(client: ApiClient, path: str, selection: dict[str, Any], body: dict[str, Any], verb: str,
                   question: str, *, dry_run: bool, yes: bool, output: OutputFormat, detach: bool) -> None:
    """The one course of a replay or a purge: count the ``selection`` (a dry run at ``path``); with ``dry_run``
    say what would be ``verb``; when the count read the whole DLQ and found nothing, say nothing was done (never
    as a dry run); else ask ``question`` (``{n}``: the count; ``{window}``: `` dead before 2026-12-04 01:46:12
    UTC``, the window the filter's times stand for, or "") unless ``yes``, and run the job with ``body``. Each
    answer names that window (attack33a F10: none did), ``-o json`` as ``since``/``until`` (ISO)."""
    window = window_of(selection.get("filter"))
    try:
        preview = {**_preview(client, path, selection), **window}
    except KeyboardInterrupt:  # a read (a dry run): no job yet (attack46 F5: the line was a bare "interrupted")
        raise exitcodes.Interrupted(f"interrupted ({stopped_by()}) while counting the entries, before any job: "
                                    f"nothing was {verb}") from None
    if dry_run:
        emit(preview, output, lambda p: would_view(p, verb))
        return
    if _nothing_to_do(preview):
        if "ids" in selection:  # none of the ids the operator named is in the DLQ: exit 4 (attack30c F6)
            raise NotFound(f"{not_in_dlq_text(preview, len(selection['ids']))}: nothing {verb}",
                           details={"notInDlq": preview.get("notInDlqIds") or preview.get("notInDlq")})
        emit({**preview, "dryRun": False}, output,  # it was no dry run
             lambda p: none_matched_view(p, verb, selection.get("filter")))
        return
    said = window_text(window)
    confirm(question.format(n=_how_many(preview), window=f" {said}" if said else ""), yes, api=client.api_url)
    missing = preview.get("notInDlqIds") or []
    if missing and output != OutputFormat.json:  # the job goes on for the others; -o json: the job's notInDlqIds
        note_line(f"{not_in_dlq_text(preview, len(selection['ids']))}: not {verb}")
    _run_job(client, path, body, output, detach, missing, window)
