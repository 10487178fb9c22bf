"""Live dashboard of the queue, the nodes and the dead letters (reads the API over HTTP).

Keys: q quit · ? help · tab panels · / filter · enter details · space mark · r replay · x purge · p pause.
--readonly hides replay and purge; so does a token that may not act.
The audit panel shows the last operator actions: who, what, how it went.
Small terminals drop whole panels in a fixed order: the metrics below
80 columns; then the audit panel, the autoscaler line, the queue and the
nodes as rows shrink. The dead letters and the footer always stay.
Examples: gamead top --api http://gamead.internal:8080
          gamead top --readonly
          gamead top --once            (one rich snapshot, for scripts and plain SSH sessions)
          gamead top --once -o json | jq .stats.queue
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from gamead_cli.client import ApiClient
from gamead_cli.options import ApiOpt, ConfigOpt, OutputFormat, OutputOpt, settings_from
from gamead_cli.output import emit
from gamead_cli.tui.source import ApiSource, fetch_snapshot
from gamead_cli.tui.view import snapshot_view
from gamead_core.errors import ConfigError

#: history points of the one-shot view (its sparklines are this many seconds long at most)
ONCE_HISTORY = 120


def top(
    refresh: Annotated[
        float, typer.Option("--refresh", min=0.2, max=60, help="Seconds between two refreshes.")
    ] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit (no full-screen UI).")] = False,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="No actions: replay and purge are hidden; the header says READ-ONLY.")
    ] = False,
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    settings = settings_from(config, client={"api_url": api})
    if once or output == OutputFormat.json:
        with ApiClient.from_settings(settings.client) as client:
            snap = fetch_snapshot(ApiSource(client), ONCE_HISTORY)
        emit(snap.as_json(), output, lambda _: snapshot_view(snap, client.api_url))
        return
    if not sys.stdout.isatty():
        raise ConfigError("the dashboard needs a terminal: use `gamead top --once` (or -o json) in scripts")
    from gamead_cli.tui.app import DashboardApp  # Textual loads only for the full-screen UI

    # A short timeout: a dead API shows the banner within a refresh or two instead of hanging the screen.
    cs = settings.client
    client = ApiClient(cs.api_url, token=cs.token.get_secret_value() if cs.token else None,
                       timeout=min(cs.timeout, max(2.0, 2 * refresh)), max_connections=4)
    try:
        DashboardApp(ApiSource(client), refresh=refresh, readonly=readonly).run()
    finally:
        client.close()
