"""``gamead ads``: look at submitted ads and their analyses."""

from __future__ import annotations

from enum import Enum
from functools import partial
from typing import Annotated

import typer

from gamead_cli import exitcodes
from gamead_cli.options import (
    ApiOpt,
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    ad_id_arg,
    api_client,
    cursor_arg,
    WaitTimeoutOpt,
)
from gamead_cli.output import emit, print_command
from gamead_cli.record_views import ad_list_view, ad_view, next_page_command

app = typer.Typer(
    help="Look at submitted ads and their analyses.\n\n"
    "[bold]Examples[/bold]\n\n"
    "  gamead ads list --status failed\n"
    "  gamead ads list --cursor 1764584102123456-01m87v538ce744cfgethvyb39n   (the next page, as printed)\n"
    "  gamead ads get 01m87v538ce744cfgethvyb39n -o json | jq .analysis.effectivenessScore\n"
    "  gamead ads get 01m87v538ce744cfgethvyb39n --wait   (follow a queued ad until it is analysed)",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


class StatusFilter(str, Enum):
    queued = "queued"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    dead = "dead"


@app.command("get")
def get(
    ad_id: Annotated[str, typer.Argument(metavar="ID", help="Id returned by `gamead submit` or `POST /ads`.")],
    wait: Annotated[bool, typer.Option("--wait", "-w", help="Wait until it is analysed (or dead), then show it "
                                                            "(exit 6 if it failed or is dead).")] = False,
    timeout: WaitTimeoutOpt = "60s",
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Show one ad: its status, timings and analysis (or error); --wait follows a queued one to its end.

    Example: gamead ads get 01m87v538ce744cfgethvyb39n --wait --timeout 5m
    """
    ad_id = ad_id_arg(ad_id) or ad_id  # lowercase: a ULID in capitals is the same id
    with api_client(config, api) as client:
        if not wait:
            record = client.get_ad(ad_id)
        else:  # an ad sent with curl (the README's quick start) had no way to be followed (newcomer59)
            from gamead_cli.submit.runs import waited_code
            from gamead_cli.submit.waiting import wait_for_ad

            record = wait_for_ad(client, ad_id, float(timeout))
    emit(record, output, partial(ad_view, again=client.again))
    if wait and (code := waited_code(record, said=output != OutputFormat.json, again=client.again)):
        raise typer.Exit(code)


@app.command("list")
def list_(
    status: Annotated[
        StatusFilter | None,
        typer.Option("--status", "-s", help="Only ads in this state.", case_sensitive=False),
    ] = None,
    priority: Annotated[
        int | None, typer.Option("--priority", "-p", min=1, max=5, help="Only ads of this priority (1-5).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", "-l", min=1, max=500, help="Most ads to show (1-500).")
    ] = 50,
    cursor: Annotated[
        str | None, typer.Option("--cursor", metavar="CURSOR", show_default=False,
                                 help="Read on after this cursor: the next page's command is printed under a full "
                                      "page (-o json: nextCursor).")
    ] = None,
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    """List recent ads, newest first, optionally filtered, a page at a time.

    SCORE/10 is the analysis's effectiveness score, 0 (worst) to 10 (best); - until the ad is analysed.

    Example: gamead ads list --status completed --priority 1 --limit 20
    """
    cursor = cursor_arg(cursor)
    with api_client(config, api) as client:
        body = client.list_ads(status=status.value if status else None, priority=priority, limit=limit,
                               cursor=cursor)
    flags = {"--status": status.value if status else None, "--priority": priority}
    emit(body, output, partial(ad_list_view, flags=flags, after_cursor=cursor is not None))
    command = next_page_command(body, flags, client.again, limit)
    if command and output != OutputFormat.json:  # -o json: its nextCursor
        print_command(command)
