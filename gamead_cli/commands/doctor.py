"""Check every invariant of the service and say what is broken: ads queued with no message, messages no
consumer delivers, dead ads without their DLQ entry, DLQ entries of ads that are not dead, missing or unusable
streams, consumers and buckets, jobs nobody runs. Each problem comes with its count and ad ids. Exit 0 when
every invariant holds, 1 when not.

With --repair it fixes what can be fixed safely, as a job on the server (the job goes on if this command is
interrupted), after asking (or --yes), then checks again. Needs an operator token.

[bold]Examples[/bold]

  gamead doctor
  gamead doctor -o json | jq '.findings[] | {kind, count}'
  gamead doctor --repair --yes
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from gamead_cli import exitcodes
from gamead_cli.api_words import cli_words
from gamead_cli.client import ApiClient
from gamead_cli.commands.dlq_views import skipped_words
from gamead_cli.doctor_verdict import holds
from gamead_cli.formats import byte_size, command_text, counted, plain, took
from gamead_cli.options import (
    ApiOpt,
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    YesOpt,
    api_client,
    api_named,
    confirm,
    duration_between,
)
from gamead_cli.output import emit, note_line
from gamead_cli.program import follow_up
from gamead_cli.stderr_wait import StderrWait
from gamead_cli.stdout_guard import done_before_output
from gamead_cli.stops import write_out
from gamead_core.errors import ConfigError, GameadError

#: Seconds the CLI waits for one check (the server bounds a run by doctor.scan_time, 60 s by default).
CHECK_TIMEOUT = 300.0


_NOUNS = {"ad": ("ad", "ads"), "object": ("object", "objects"), "job": ("job", "jobs")}


def _how_many(count: int, item_kind: str, lower_bound: bool = False) -> str:
    one, many = _NOUNS.get(item_kind, ("item", "items"))
    return f"{'at least ' if lower_bound else ''}{counted(count, one, many)}"


def _items(items: list[str], count: int, more: Any = None) -> str:
    """The sample, then how many it leaves unnamed: the report's ``more`` (a note's sample may name where its
    counted things are, not them: attack37 F2), else ``count`` minus the sample (a finding; an older API)."""
    if not isinstance(more, int) or isinstance(more, bool):
        more = count - len(items)
    return ", ".join(items) + (f" … and {more:,} more" if more > 0 else "")


def _again(read: dict[str, Any]) -> str:
    """``; 4 read again at the second look`` when the report's second look read records again (``recordRereads``),
    else "": counted with the first look's, 4 dead ads without an entry said ``8 of them read whole`` (newcomer58),
    and 1 record ``2 of them``."""
    again = int(read.get("recordRereads") or 0)
    return f"; {again:,} read again at the second look" if again else ""


def _streams(listed: Any) -> str:
    """The work streams a report read, named: ``work stream GAMEAD_ADS``, ``3 work streams (GAMEAD_ADS,
    GAMEAD_ADS_1, GAMEAD_ADS_2)`` (one per partition, ``queue.partitions``); ``no work stream`` when none
    could be read (each missing one is a finding); an older API that does not say: ``the work streams``."""
    if not isinstance(listed, list):
        return "the work streams"
    if not listed:
        return "no work stream"
    if len(listed) == 1:
        return f"work stream {listed[0]}"
    return f"{len(listed)} work streams ({', '.join(str(n) for n in listed)})"


def report_view(report: dict[str, Any], *, title: str = "gamead doctor", api: str | None = None,
                again: str = "") -> RenderableType:
    """The report for people: a header naming the API it came from (``api``: its URL, :func:`api_named`), a
    block per kind of problem (what, how many, which, what --repair does), the notes, what was read, and the
    verdict. Ids wrap, never truncate. Each API path the server's texts name to look at (``GET /ads/{id}``) is
    said as the gamead command that shows it, with ``again`` (the flags that reach the same API): the API's
    client reads its own words (leftout60)."""
    words = partial(cli_words, again=again)
    findings = report.get("findings") or []
    elapsed = float(report.get("elapsedSeconds") or 0)
    twice = f" (each finding seen twice, {report.get('settleSeconds', 0):g} s apart)" if findings else ""
    parts: list[RenderableType] = [Text(
        f"{title}{f' · {api_named(api)}' if api else ''} · checked {str(report.get('checkedAt', ''))[:19].replace('T', ' ')} UTC in {took(elapsed)}{twice}",
        style="bold")]
    for f in findings:
        block = Text()
        mark, tone = ("! ", "bold yellow") if f.get("severity") == "warning" else ("✗ ", "bold red")
        block.append(mark, style=tone)
        block.append(f["kind"], style=tone)
        block.append(f" · {_how_many(f['count'], f.get('itemKind', 'ad'), bool(f.get('countIsLowerBound')))}"
                     f" · invariant {f['invariant']}\n")
        block.append(f"  {words(f['what'])}\n")
        block.append(f"  {f.get('itemKind', 'ad')}s: " if f.get("itemKind") != "ad" else "  ids: ", style="dim")
        block.append(_items(f.get("sample") or [], f["count"]) + "\n")
        details = f.get("details") or {}
        for item, why in details.items():
            block.append(f"    {item}: {words(str(why))}\n", style="dim")
        if f.get("repair"):
            block.append("  --repair: ", style="dim")
            block.append(words(f["repair"]))
        else:
            block.append(f"  not repaired: {words(str(f.get('notRepairedBecause')))}", style="yellow")
        parts.append(block)
    for n in report.get("notes") or []:
        block = Text()
        block.append("• ", style="dim")
        block.append(n["kind"], style="bold")
        block.append(f" · {n['count']:,} · {words(n['what'])}\n  ", style="dim")
        block.append(_items(n.get("sample") or [], n["count"], n.get("more")), style="dim")
        for item, why in (n.get("details") or {}).items():
            block.append(f"\n    {item}: {words(str(why))}", style="dim")
        parts.append(block)
    read = report.get("read") or {}
    parts.append(Text(
        # newcomer49: "16 whole records" said neither what they were nor of what: they are of the records listed
        f"read: {counted(read.get('records', 0), 'record')} (keys only; {read.get('recordReads', 0):,} of them "
        f"read whole: waiting, dead and suspect ads{_again(read)}) · "
        f"{counted(read.get('workMessages', 0), 'message')} in {_streams(read.get('workStreams'))} · "
        f"{counted(read.get('dlqEntries', 0), 'DLQ entry', 'DLQ entries')} · {counted(read.get('jobs', 0), 'job')} · "
        f"{counted(read.get('apiCalls', 0), 'JetStream API call')} · "
        f"{byte_size(int(read.get('payloadBytes', 0)))} of message bodies received", style="dim"))
    if report.get("topologyChanged"):
        parts.append(Text(f"per-ad checks not run (they would look for each ad in the wrong partition): "
                          f"{words(str(report['topologyChanged']))}", style="yellow"))
    for why in report.get("partial") or []:
        parts.append(Text(f"partial: {words(str(why))} (counts are lower bounds; raise doctor.scan_time / "
                          "doctor.scan_limit)",
                          style="yellow"))
    problems = int(report.get("problems") or 0)
    if report.get("ok"):
        parts.append(Text("✓ every invariant holds", style="bold green"))
    elif problems:
        kinds = len(findings)
        warnings = all(f.get("severity") == "warning" for f in findings)  # the ads flow: a warning, not an error
        parts.append(Text(f"{counted(problems, 'problem')} of {counted(kinds, 'kind')}"
                          f"{' (warnings: the ads still flow)' if warnings else ''}",
                          style="bold yellow" if warnings else "bold red"))
    else:
        parts.append(Text("no problem in what was read, but the read was partial", style="bold yellow"))
    return Group(*parts)


def _check(client: ApiClient, settle: float | None, sample: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if settle is not None:
        params["settle"] = settle
    if sample is not None:
        params["sample"] = sample
    with StderrWait("checking every invariant", done="checked every invariant"):  # a CI log too (leftout60)
        body = client.request("GET", "/v1/doctor", params=params, timeout=max(client.timeout, CHECK_TIMEOUT),
                              own="gamead doctor's wait")  # its answer whole within that + client.timeout
    if not isinstance(body, dict) or "findings" not in body:
        raise GameadError("the API answered GET /v1/doctor with something that is not a doctor's report")
    return body


def _repairable(report: dict[str, Any]) -> int:
    fixable = sum(f["count"] for f in report.get("findings") or [] if f.get("repair"))
    obsolete = sum(n["count"] for n in report.get("notes") or [] if n["kind"] in ("obsolete_object", "ack_lost"))
    return int(fixable + obsolete)


def doctor(
    repair: Annotated[bool, typer.Option("--repair", help="Fix what can be fixed safely (a job on the server), "
                                                          "then check again. Asks first unless --yes.")] = False,
    yes: YesOpt = False,
    detach: Annotated[bool, typer.Option("--detach", help="With --repair: start the job and return at once "
                                                          "(follow it with `gamead dlq jobs JOB --follow`).")] = False,
    settle: Annotated[str | None, typer.Option(callback=duration_between(0, 10), metavar="DURATION",
                                               help="Time between a finding and its second check: seconds, or "
                                                    "500ms, 2s \\[doctor.settle].")] = None,
    sample: Annotated[int | None, typer.Option(min=1, max=1000, help="Ad ids shown per problem "
                                                                      "\\[doctor.sample].")] = None,
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    from gamead_cli.commands.dlq_jobs import follow_job
    from gamead_cli.commands.dlq_views import job_summary

    if detach and not repair:
        raise typer.BadParameter("--detach goes with --repair", param_hint="--detach")
    with api_client(config, api) as client:
        before = _check(client, settle, sample)
        if not repair:
            emit(before, output, partial(report_view, api=client.api_url, again=client.again))
            raise typer.Exit(exitcodes.OK if holds(before) else exitcodes.ERROR)
        if output != OutputFormat.json:
            emit(before, output, partial(report_view, api=client.api_url, again=client.again))
        if before.get("topologyChanged"):  # its findings were read with the wrong partition map: never act on them
            raise ConfigError(f"--repair refused, nothing changed: {before['topologyChanged']}")
        fixable = _repairable(before)
        if not fixable:
            if output == OutputFormat.json:
                emit({"before": before, "job": None, "after": before}, output)
            else:
                note_line("nothing --repair can fix" + ("" if before.get("ok") else " (see the reasons above)"))
            raise typer.Exit(exitcodes.OK if holds(before) else exitcodes.ERROR)
        confirm(f"Repair {fixable} problem(s) as listed above?", yes, api=client.api_url)
        with write_out("POST /v1/doctor/repair", follow_up("dlq", "jobs", again=client.again)):
            job = client.request("POST", "/v1/doctor/repair")
            done_before_output(f"repair job {job.get('id') if isinstance(job, dict) else '?'} WAS started; do not "
                               "start it again")
        if detach:
            emit(job, output, lambda j: command_text(
                f"repair job {j['id']} started: {follow_up('dlq', 'jobs', j['id'], '--follow', again=client.again)}",
                style=""))
            return
        final = follow_job(client, job)
        if output != OutputFormat.json:
            reasons = final.get("skippedReasons") or {}
            text = f"repair job {final['id']} {final['state']}: {job_summary(final)}"
            if final.get("stopReason"):
                text += f" — {cli_words(final['stopReason'], client.again)}"
            if reasons:
                text += f"\n  skipped: {skipped_words(reasons)}"
            emit(final, output, lambda _j: plain(text))
        after = _check(client, settle, sample)
        if output == OutputFormat.json:
            emit({"before": before, "job": final, "after": after}, output)
        else:
            emit(after, output, lambda r: report_view(r, title="after the repair", api=client.api_url,
                                                        again=client.again))
    raise typer.Exit(exitcodes.OK if holds(after) and final.get("state") == "succeeded" else exitcodes.ERROR)
