"""The audit trail: every operator action, newest first: when, who, from where, what it chose, how many ads,
and how it went (accepted; refused or failed, with the error's code; a job's end, with its counts).

A job (replay, purge, import, repair) has two records, accepted and its end, with the same job id, and one
job.takeover each time another API node resumed it (from which node to which).
Records are kept audit.max_age (90 days). Viewers and operators may read them.

[bold]Examples[/bold]

  gamead audit
  gamead audit --actor alice --action purge --since 7d
  gamead audit --outcome refused --since 2h
  gamead audit --job 01m8n9yn14df8p4qjad0cnvqad
  gamead audit -o json | jq '.items[] | {at, actor, action, outcome, ads}'
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gamead_cli.choices import NotOneOf
from gamead_cli.commands.dlq_filters import on_service_clock, window_of, window_options
from gamead_cli.formats import count_text, empty_text, plain, time_column, window_text
from gamead_cli.options import ApiOpt, ConfigOpt, OutputFormat, OutputOpt, api_client, sequence_between
from gamead_cli.output import emit, print_command, stdout_console
from gamead_cli.record_views import next_page_command
from gamead_cli.tui.view_audit import audit_outcome, audit_selection
from gamead_core.errors import ApiClientError
from gamead_core.ids import JOB_ID_RULE, MAX_CURSOR, is_job_id, normal_id


def _time(value: Any) -> str:
    return str(value or "-").replace("T", " ")[:19]


def _table(body: dict[str, Any], width: int) -> Table:
    """The records as a table that fits ``width`` columns: the job id from 110, role and client from 140."""
    wide, wider = width >= 110, width >= 140
    table = Table(box=None, header_style="bold", pad_edge=False)
    columns = [time_column("TIME"), "WHO", *(["ROLE", "CLIENT"] if wider else []), "ACTION", "SELECTION", "ADS",
               "OUTCOME", *(["JOB"] if wide else [])]
    for col in columns:
        table.add_column(col, no_wrap=col not in ("SELECTION", "OUTCOME"), justify="right" if col == "ADS" else "left")
    for r in body.get("items") or []:
        row: list[Any] = [_time(r.get("at"))[5:], plain(r.get("actor", "?"))]
        if wider:
            row += [plain(r.get("role") or "-"), plain(r.get("client") or "-")]
        ads = "-" if r.get("ads") is None else count_text(r["ads"])
        row += [plain(r.get("action")), plain(audit_selection(r)), ads, audit_outcome(r)]
        if wide:
            row.append(plain(r.get("jobId") or "-"))
        table.add_row(*row)
    return table


def audit_view(body: dict[str, Any], flags: dict[str, Any] | None = None) -> RenderableType:
    """``GET /v1/audit`` for people: the records, then what the page is; ``no audit records`` (``… match
    --actor alice``, with the ``flags`` given) when there is none."""
    if not body.get("items"):
        why = "a record is kept audit.max_age, 90 days by default"
        if not body.get("complete", True):
            why = (f"read {count_text(body.get('scanned'))} records, then stopped (audit.scan_limit); older ones: "
                   "the command below")
        return empty_text("no audit records", flags, f"{window_text(body, '')}; {why}" if window_text(body) else why)
    count = body.get("count", 0)
    after = " (after the cursor)" if (flags or {}).get("--cursor") else ""  # no total: rows unknown (attack43b F4)
    line = (f"{count_text(count)} record(s){after}, newest first"
            + (f" · {window_text(body, '')}" if window_text(body) else ""))
    if not body.get("complete", True):
        line += f" · read {count_text(body.get('scanned'))} records, then stopped (audit.scan_limit)"
    if body.get("items") and stdout_console().width < 110:
        line += " · job ids and clients: -o json, or a wider terminal"
    if body.get("nextCursor"):  # the command follows (print_command): whole, runnable as printed
        line += " · older records, the next page:"
    return Group(_table(body, stdout_console().width), Text(line, style="dim"))


def _checked(actor: str | None, action: str | None, outcome: str | None, job: str | None) -> None:
    from gamead_core.audit.model import ACTOR_PATTERN, OUTCOMES, AuditAction

    if actor is not None and not re.fullmatch(ACTOR_PATTERN, actor):  # the API's own rule (GET /v1/audit)
        raise typer.BadParameter(f"{actor[:40]!r} is not a token name (a letter or digit, then letters, digits, "
                                 "_ . @ -: at most 64 characters)", param_hint="--actor")
    actions = [a.value for a in AuditAction]
    if action is not None and action not in actions:
        raise NotOneOf(action, actions, param_hint="--action")
    if outcome is not None and outcome not in OUTCOMES:
        raise NotOneOf(outcome, OUTCOMES, param_hint="--outcome")
    if job is not None and not is_job_id(job):
        raise typer.BadParameter(f"{job[:40]!r} is not a job id ({JOB_ID_RULE})", param_hint="--job")


def audit(
    actor: Annotated[str | None, typer.Option("--actor", help="Only this token name (or anonymous).")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action: replay, purge, import, repair, "
                                                                 "job.cancel, job.takeover, scale.set, scale.clear, "
                                                                 "worker.quiet, worker.resume, refusals_suppressed, "
                                                                 "other.")] = None,
    outcome: Annotated[str | None, typer.Option("--outcome", help="Only this outcome: accepted, refused, failed, "
                                                                   "succeeded, cancelled, interrupted.")] = None,
    job: Annotated[str | None, typer.Option("--job", help="Only the records of this job.")] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="TIME|AGE",
                                              help="At or after: ISO time (UTC if no offset) or age (2h, 2h30m, 7d).")
                     ] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="TIME|AGE",
                                              help="Before: ISO time (UTC if no offset) or age.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=500, help="Records to show.")] = 20,
    cursor: Annotated[int, typer.Option("--cursor", callback=sequence_between(0, MAX_CURSOR), metavar="SEQ",
                                        help="Older than this (the nextCursor shown).")] = 0,
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    job = normal_id(job) if job is not None else None  # a ULID in capitals is the same id
    _checked(actor, action, outcome, job)
    window = window_options(since, until)  # checked before any request (bad usage, exit 2)
    with api_client(config, api) as client:
        window = on_service_clock(client, window, since, until)  # --since 2h: 2 h before the service's now
        raw = {"actor": actor, "action": action, "outcome": outcome, "jobId": job, **window,
               "limit": limit, "cursor": cursor or None}
        body = client.request("GET", "/v1/audit", params={k: v for k, v in raw.items() if v is not None})
    if not isinstance(body, dict):
        raise ApiClientError("the API answered GET /v1/audit with unexpected data")
    body = {**body, **window_of(window)}  # -o json names the window an age stood for (attack33a F10)
    flags = {"--actor": actor, "--action": action, "--outcome": outcome, "--job": job, "--since": since,
             "--until": until, "--cursor": cursor or None}
    emit(body, output, lambda b: audit_view(b, flags))
    same = {**flags, "--cursor": None}  # the filters in force, as given, and the API: attack32a F9
    command = next_page_command(body, same, client.again, limit, command="audit", default_limit=20)
    if command and output != OutputFormat.json:  # -o json: its nextCursor
        print_command(command)
