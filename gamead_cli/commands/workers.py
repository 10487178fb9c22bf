"""List the live API nodes and workers from the service registry, with their health.

A node heartbeats every registry.heartbeat_interval seconds; one silent for registry.ttl is gone (while the
registry cannot be read, its last entry is shown stuck). One whose heartbeat is 2.5 beats overdue is late; one
whose entry expired is listed gone for 2 × registry.ttl (at least a minute): it may still hold ads. A node whose
host clock is more than 1 s off nats-server's gets a line saying by how much (gamead corrects it; fix its NTP). UP
is the node's own monotonic uptime. An API node
that could not read the registry yet (just started, NATS away) says so in one red line, exit 3, rather than
listing no node; -o json still prints the API's body (readAt null, error saying why) on stdout, exit 3 too.

A worker told `gamead workers quiet ID` takes no new ad while it finishes what it runs and stays alive (STATE
quiet, for a host about to be drained or a worker to inspect); `gamead workers resume ID` has it take ads again.

[bold]Examples[/bold]

  gamead workers
  gamead workers -o json | jq '.items[] | select(.state == "stuck") | .id'
  gamead workers quiet local-1      (--all: every live worker)
  gamead workers resume local-1
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.text import Text

from gamead_cli.choices import NotOneOf
from gamead_cli.client import ApiClient
from gamead_cli.commands.workers_quiet import quiet, resume
from gamead_cli.formats import empty_text
from gamead_cli.options import (
    ApiOpt,
    ConfigOpt,
    OutputFormat,
    OutputOpt,
    client_settings_from,
)
from gamead_cli.output import emit
from gamead_cli.tui.view import NODES_LEGEND, Legend, nodes_table
from gamead_cli.tui.view_tables import NOTED_STATES, STATE_STYLES
from gamead_core.clock_offset import offset_words, past_limit
from gamead_core.errors import ApiClientError, NatsUnreachable


def registry_note(error: Any) -> Text:
    """The line saying why the registry could not be read: ``registry: …`` once, whether or not the API's
    ``error`` already starts with it (it says "registry: NATS did not answer in time"). Pure."""
    text = " ".join(str(error).split())
    return Text(text if text.lower().startswith("registry") else f"registry: {text}", style="yellow")


def clock_notes(nodes: list[dict[str, Any]]) -> list[Text]:
    """One line per node whose host clock is more than ``clock_offset.OFFSET_LIMIT`` off nats-server's (its entry's
    ``clockOffsetSeconds``): ``wbehind: host clock 300.0 s behind nats-server's (corrected: …)``. Pure."""
    out = []
    for node in nodes:
        offset = node.get("clockOffsetSeconds")
        if isinstance(offset, (int, float)) and past_limit(float(offset)):
            out.append(Text(f"{node.get('id')}: {offset_words(float(offset))}", style="yellow"))
    return out


def _view(body: dict[str, Any], role: str | None = None) -> RenderableType:
    items = body.get("items") or []
    if not items:
        nothing = {"api": "no live API nodes", "worker": "no live workers"}.get(role or "", "no live nodes")
        parts = [empty_text(nothing, None, "none sent a heartbeat within registry.ttl")]
        if body.get("error"):
            parts.append(registry_note(body["error"]))
        return Group(*parts)
    # the rows shown; per role the live ones, the gone ones named apart (as top's header and /v1/stats count them)
    live = [n for n in items if n.get("state") != "gone"]
    workers = sum(1 for n in live if n.get("role") == "worker")
    line = Text(f"{len(items)} node(s): {len(live) - workers} api, {workers} worker(s)", style="dim")
    for word in NOTED_STATES:
        count = sum(1 for n in items if n.get("state") == word)
        if count:  # gone: its entry expired, still listed (it may hold ads)
            line.append(f" — {count} {word}", style=STATE_STYLES[word])
    table = nodes_table(items, title=None)
    parts: list[RenderableType] = [table, Legend(table, NODES_LEGEND), line]
    parts += clock_notes(live)
    scrape = [f"  {n.get('id')} {n['metricsUrl']}" for n in live if n.get("metricsUrl")]
    if scrape:  # one address a line: a URL cut across two lines cannot be pasted
        parts.append(Text("metrics (Prometheus):\n" + "\n".join(scrape), style="dim"))
    if body.get("error"):
        parts.append(registry_note(body["error"]))
    return Group(*parts)


app = typer.Typer(help=__doc__, rich_markup_mode="rich")


@app.callback(invoke_without_command=True)
def workers(
    ctx: typer.Context,
    role: Annotated[
        str | None, typer.Option("--role", help="Only nodes of this role: api or worker.", show_default=False)
    ] = None,
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    if ctx.invoked_subcommand is not None:  # quiet / resume: their own options
        return
    if role not in (None, "api", "worker"):
        raise NotOneOf(role, ("api", "worker"), param_hint="--role")
    settings = client_settings_from(config, api)
    with ApiClient.from_settings(settings.client) as client:
        body = client.request("GET", "/v1/workers", params={"role": role} if role else None)
    if not isinstance(body, dict):
        raise ApiClientError("the API answered GET /v1/workers with unexpected data")
    unread = "readAt" in body and body["readAt"] is None  # never read: an empty list would claim no node beat
    if unread and output == OutputFormat.json:  # the body still, for scripts (readAt null, error why); exit 3
        emit(body, output)
    if unread:
        raise NatsUnreachable(str(body.get("error") or "registry not read yet"))
    emit(body, output, lambda b: _view(b, role))


app.command("quiet")(quiet)
app.command("resume")(resume)
