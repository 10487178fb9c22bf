"""Live dashboard of the queue, the nodes and the dead letters (reads the API over HTTP).

Keys: q (or Ctrl-C, exit 130) quit · ? help · : command line · ctrl+p palette · tab panels
· / filter (/!x inverts) · enter details (on a queue level: its ads)
· escape back · space mark · ctrl+a mark all shown · r replay · x purge
(r and x ask you to type the count, then run ONE server-side job) · p pause.

Commands: :dlq :workers :level 2 :audit :doctor :scale 4 for 10m
:replay class=TaskTimeout :purge class=TaskTimeout

--readonly hides every action; so does a token that may not act.

--record FILE saves every snapshot received (JSON lines), stopping at
--record-max-mb (default 200 MB: about 6 hours at one refresh a second
with 8 workers, ~10 KB a snapshot);
--replay FILE plays it back, no server needed (p pause, . step, , back,
+ faster, - slower); with --once (or -o json) it prints the recording's
last snapshot, no terminal needed. --record FILE with --once records
that one snapshot (a one-frame recording).

Logs: l on a node, :logs local-1 or :logs ad AD_ID follows a worker's log or
one ad's story (its lines from every log) live. They are read from --logs
DIR, by default the logs of the local `gamead up` (embedded.data_dir/logs)
while it runs and the dashboard watches its API; the last 64 KiB of each
file, then what is appended while the screen is open.

The audit panel shows the last operator actions: who, what, how it went.
Small terminals drop whole panels in a fixed order: the metrics below
80 columns; then the audit panel, the autoscaler line, the queue and the
nodes as rows shrink. The dead letters and the footer always stay.

--once prints one snapshot; rates and percentiles are over the last minute
(the title says when the API has sampled less), the sparklines say how far
back they reach.

[bold]Examples[/bold]

  gamead top --api http://gamead.internal:8080
  gamead top --readonly
  gamead top --logs .gamead/logs
  gamead top --record incident.jsonl
  gamead top --replay incident.jsonl
  gamead top --replay incident.jsonl --once -o json
  gamead top --once                  (one snapshot, for scripts and plain SSH)
  gamead top --once -o json | jq .stats.queue
"""

from __future__ import annotations

import io
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, RenderableType

from gamead_cli import exitcodes, first_signals, service_clock
from gamead_cli.api_errors import say_source
from gamead_cli.client import ApiClient
from gamead_cli.interrupt_point import take_due
from gamead_cli.options import (ApiOpt, ConfigOpt, OutputFormat, OutputOpt, bounded_float, client_settings_from,
                                duration_between)
from gamead_cli.output import emit
from gamead_cli.stdout_guard import silence_stdout
from gamead_cli.stops import replaced
from gamead_cli.tui.logs import default_log_dir
from gamead_cli.tui.recording import DEFAULT_MAX_MB, Recorder
from gamead_cli.tui.source import ApiSource, fetch_snapshot
from gamead_cli.tui.view import snapshot_view
from gamead_cli.tui.view_queue import HISTORY_POINTS
from gamead_core.datadir_find import stack_data_dir
from gamead_core.errors import ConfigError

if TYPE_CHECKING:
    from gamead_cli.tui.app import DashboardApp

def _no_full_screen() -> str | None:
    """Why the full-screen UI cannot be drawn here, or None: stdout is not a terminal, stdin is not one (``gamead
    top < /dev/null``: Textual's input thread read end-of-file over and over, 30 % of a core until killed, and no
    key could quit it: attack44c F3), or the terminal says it cannot move the cursor (``TERM=dumb``, as Emacs'
    shell and some CI consoles set it: attack30c, Textual drew its escapes there all the same)."""
    if not sys.stdout.isatty():
        return "needs a terminal"
    if sys.stdin is None or not sys.stdin.isatty():
        return "reads its keys from a terminal (stdin is not one)"
    if os.environ.get("TERM", "") == "dumb":
        return "needs a terminal that can draw it (TERM=dumb)"
    return None


def top(
    refresh: Annotated[
        str, typer.Option("--refresh", callback=duration_between(0.2, 60), metavar="DURATION",
                          help="Time between two refreshes: seconds, or 500ms, 2s.")
    ] = "1s",
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit (no full-screen UI).")] = False,
    readonly: Annotated[
        bool, typer.Option("--readonly", help="No actions: replay, purge, scale and marking are hidden; the header says "
                                           "READ-ONLY.")
    ] = False,
    record: Annotated[
        Path | None, typer.Option("--record", help="Save every snapshot received to FILE (JSON lines; "
                                                   "overwritten), up to --record-max-mb; with --once, the one "
                                                   "snapshot.")
    ] = None,
    record_max_mb: Annotated[
        float, typer.Option("--record-max-mb", callback=bounded_float(0.01, 10_000),
                            help="Size cap of --record in MB: recording stops there (and says so).")
    ] = DEFAULT_MAX_MB,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Play back a --record FILE (no server needed): p pause, "
                                                   ". step, , back, + faster, - slower.")
    ] = None,
    logs: Annotated[
        Path | None, typer.Option("--logs", help="Directory of the JSON log files for :logs and l "
                                                "\\[default: the local `gamead up`'s, embedded.data_dir/logs, "
                                                "while it runs and this dashboard watches its API].",
                                  show_default=False)
    ] = None,
    output: OutputOpt = OutputFormat.table,
    api: ApiOpt = None,
    config: ConfigOpt = None,
) -> None:
    if replay is not None and record is not None:
        raise typer.BadParameter("choose --replay or --record (a replay records nothing new)", param_hint="--replay")
    if replay is not None:
        from gamead_cli.tui.recording import Player

        try:  # a missing file or one that is not a recording: bad input (exit 2), one red line, before any screen
            player = Player(replay)
        except ConfigError as exc:
            raise typer.BadParameter(exc.message, param_hint="--replay") from None
        if once or output == OutputFormat.json:  # for scripts: the recording's last snapshot, no terminal needed
            try:
                snap = player.frame(len(player) - 1)
                data, view = snap.as_json(), snapshot_view(snap, player.api_url, replaying=player.path.name)
                if output != OutputFormat.json:
                    rendered(view)  # a recording of the wrong shapes fails here, before anything is printed
            except ConfigError as exc:
                raise typer.BadParameter(exc.message, param_hint="--replay") from None
            except (AttributeError, TypeError, KeyError, ValueError, IndexError) as exc:  # JSON of other shapes
                raise typer.BadParameter(
                    f"{replay}:{player.line_of(max(player.reading, player.position))}: not a gamead top recording "
                    f"({type(exc).__name__}: {str(exc)[:120]})", param_hint="--replay") from None
            finally:
                player.close()
            emit(data, output, lambda _: view)
            return
        if (why := _no_full_screen()) is not None:
            player.close()
            raise typer.BadParameter(f"the replay is full-screen and {why}: add --once (or -o json) to print the "
                                     "recording's last snapshot", param_hint="--replay")
        from gamead_cli.tui.app import DashboardApp

        try:
            _run(DashboardApp(player, refresh=refresh, player=player,  # type: ignore[arg-type]
                              log_dir=logs))
        finally:
            player.close()
        return
    settings = client_settings_from(config, api)  # --api, env, config, else the stack running here
    # the local stack's logs only under the dashboard of that stack's API, never another's
    log_dir = logs if logs is not None else default_log_dir(stack_data_dir(settings.embedded), settings.client.api_url)
    if once or output == OutputFormat.json:
        recorder = _recorder(record, record_max_mb)  # --record with --once: the one snapshot is recorded
        try:
            with ApiClient.from_settings(settings.client) as client:
                snap = fetch_snapshot(ApiSource(client), HISTORY_POINTS)
            if recorder is not None:  # a full disk: OutputFailed naming the file (the recording's file says it)
                recorder.write(snap)
        finally:
            if recorder is not None:
                recorder.close()
        emit(snap.as_json(), output, lambda _: snapshot_view(snap, client.api_url))
        return
    if (why := _no_full_screen()) is not None:
        raise typer.BadParameter(f"the dashboard is full-screen and {why}: add --once (or -o json) in "
                                 "scripts")  # no parameter named: nothing the operator gave is wrong
    from gamead_cli.tui.app import DashboardApp  # Textual loads only for the full-screen UI

    from gamead_cli.tui.app_refresh import live_timeout

    cs = settings.client  # a short timeout: a dead API shows the banner within a refresh or two (a slow one: "slow")
    client = ApiClient(cs.api_url, token=cs.token.get_secret_value() if cs.token else None,
                       timeout=live_timeout(cs.timeout, refresh), max_connections=4)
    try:
        recorder = _recorder(record, record_max_mb)
    except typer.BadParameter:
        client.close()
        raise
    say_source()  # the built-in default API URL, said before the dashboard takes the screen (whichapi43)
    try:
        with service_clock.held():  # the screen is the dashboard's: a clock skew is said once it gives it back
            _run(DashboardApp(ApiSource(client), refresh=refresh, readonly=readonly, recorder=recorder,
                              log_dir=log_dir))
    finally:
        client.close()
        if recorder is not None:
            recorder.close()
            print(f"recorded {recorder.frames:,} snapshots ({recorder.written:,} bytes) to {recorder.path}"
                  + (" — stopped at the size cap" if recorder.full else "") if recorder.frames else
                  f"recorded nothing: {recorder.path} left as it was", file=sys.stderr)


def _run(dashboard: DashboardApp) -> None:
    """Run the full-screen dashboard until it ends, through Textual's own exit whatever ends it (topsig44: its
    driver stopped, its input thread ended, the terminal given back). Ctrl-C in it, or SIGINT, exits 130; SIGTERM
    and SIGHUP, taken as Ctrl-C by every command, 143 and 129 with the line ``interrupted (SIGTERM)`` (README exit
    codes); its terminal gone without a signal, 129 as for SIGHUP (:mod:`gamead_cli.tui.app_stops`). While the
    dashboard's loop runs a signal only asks the app to stop (:meth:`~gamead_cli.tui.app_stops.StopsFromOutside.
    take_signal`): raised as a KeyboardInterrupt in the middle of Textual's loop, it left the driver running and its
    non-daemon input thread held the process for ever (regress44 F8). A signal inherited as ignored (``nohup``)
    stays ignored."""
    first_signals.none_yet()
    terminals = [stream for stream in (sys.__stdout__, sys.__stderr__) if stream is not None and stream.isatty()]
    taken = [sig for sig in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(sig) != signal.SIG_IGN]
    with replaced(dict.fromkeys((signal.SIGINT, *taken), dashboard.take_signal)):
        if take_due():  # a stop put off past the setting up (whole): raised here, never inside Textual's loop
            raise KeyboardInterrupt
        dashboard.run()
    for stream in terminals:  # a terminal gone (hung up): what is said next goes nowhere, not to an EIO
        if not stream.isatty():
            silence_stdout(stream)
    if first_signals.STOPPED["signal"] is not None:  # SIGTERM, SIGHUP, a terminal gone: the boundary's line
        take_due()  # one put off past the putting back is this one: none left to cut the boundary's unwind
        raise KeyboardInterrupt
    if dashboard.return_code == exitcodes.INTERRUPTED:
        raise typer.Exit(exitcodes.INTERRUPTED)


def _recorder(record: Path | None, record_max_mb: float) -> Recorder | None:
    """The :class:`Recorder` of ``--record FILE`` (None without it). A FILE that cannot be written is bad input
    (``typer.BadParameter``, exit 2), as every verb's file."""
    if record is None:
        return None
    try:
        return Recorder(record, int(record_max_mb * 1024 * 1024))
    except ConfigError as exc:
        raise typer.BadParameter(exc.message, param_hint="--record") from None


def rendered(view: RenderableType) -> str:
    """``view`` rendered to text off-screen (to find a fault in it before anything reaches the terminal)."""
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(view)
    return console.file.getvalue()
