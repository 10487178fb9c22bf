"""Inspect, replay, purge, export and import dead-lettered ads.

[bold]Examples[/bold]

  gamead dlq list --error-class TaskTimeout --since 2h
  gamead dlq show 01m87v538ce744cfgethvyb39n
  gamead dlq replay --message 'timeout' --rate 20 --stop-on-failure-rate 0.5
  gamead dlq purge --priority 5 --until 7d --yes
  gamead dlq export dead.jsonl && gamead dlq import dead.jsonl --api https://staging.example
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gamead_cli.client import ApiClient
from gamead_cli.options import ApiOpt, ConfigOpt, OutputFormat, OutputOpt, YesOpt, api_client, duration_seconds
from gamead_cli.output import emit, note_line, plain, stderr_console
from gamead_core.errors import GameadError

app = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode="rich")

IMPORT_BATCH = 20
EXPORT_PAGE = 500



def parse_when(value: str | None, *, now: datetime | None = None) -> str | None:
    """``2h`` / ``30m`` / ``7d`` (ago) or an ISO-8601 time → ISO-8601 UTC. Pure."""
    if value is None:
        return None
    now = now or datetime.now(timezone.utc)
    if (ago := duration_seconds(value)) is not None:
        return (now - timedelta(seconds=ago)).isoformat()
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise GameadError(f"cannot read time {value!r}: use ISO-8601 (2026-11-24T10:00) or an age like 2h, 7d")
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).isoformat()


ErrorClassOpt = Annotated[str | None, typer.Option("--error-class", "-e", help="Only this error class.")]
MessageOpt = Annotated[str | None, typer.Option("--message", "-m", help="Regex on the error message.")]
PriorityOpt = Annotated[int | None, typer.Option("--priority", "-p", min=1, max=5, help="Only this priority.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Dead at or after: ISO time or age (2h, 7d).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Dead before: ISO time or age (2h, 7d).")]
IdsArg = Annotated[list[str] | None, typer.Argument(metavar="[ID]...", help="Ad ids; or use --all / filters.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Every entry in the DLQ.")]


def _filter(error_class: str | None, message: str | None, priority: int | None, since: str | None,
            until: str | None) -> dict[str, Any]:
    raw = {"errorClass": error_class, "message": message, "priority": priority,
           "since": parse_when(since), "until": parse_when(until)}
    return {k: v for k, v in raw.items() if v is not None}


def _selection(ids: list[str] | None, everything: bool, flt: dict[str, Any]) -> dict[str, Any]:
    chosen = [bool(ids), everything, bool(flt)]
    if sum(chosen) != 1:
        raise GameadError("say which entries: ad IDs, --all, or filters (--error-class, --message, --priority, "
                          "--since, --until) — exactly one of these")
    if ids:
        return {"ids": ids}
    return {"all": True} if everything else {"filter": flt}


def _confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise GameadError(f"{question.rstrip('?')}: refusing without --yes (no terminal to ask)")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(1)


def _entries_table(body: dict[str, Any]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in ("ID", "P", "ATT", "ERROR", "MESSAGE", "DEAD AT", "TITLE"):
        table.add_column(col, overflow="ellipsis", no_wrap=col not in ("MESSAGE", "TITLE"))
    for e in body["items"]:
        table.add_row(plain(e["id"]), str(e["priority"]), str(e["attempts"]), plain(e["errorClass"]),
                      plain(e["errorMessage"]), plain(e["deadAt"][:19].replace("T", " ")), plain(e["title"]))
    return table


def _list_view(body: dict[str, Any]) -> Any:
    from rich.console import Group

    more = f" · more after --cursor {body['nextCursor']}" if body.get("nextCursor") else ""
    return Group(_entries_table(body), plain(f"{body['count']} shown of {body['total']} in the DLQ{more}"))


@app.command("list")
def list_(
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="Entries per page.")] = 50,
    cursor: Annotated[int, typer.Option(help="Continue after this cursor (from the previous page).")] = 0,
    newest: Annotated[bool, typer.Option("--newest", help="The most recent entries first.")] = False,
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """List dead-lettered ads (oldest first, or --newest), filtered.

    Example: gamead dlq list --error-class TaskTimeout --since 2h
    """
    params: dict[str, Any] = {**_filter(error_class, message, priority, since, until), "limit": limit,
                              "cursor": cursor, "newest": newest}
    with api_client(config, api) as client:
        body = client.request("GET", "/v1/dlq", params=params)
    emit(body, output, _list_view)


def _entry_view(e: dict[str, Any]) -> Any:
    table = Table.grid(padding=(0, 2))
    for key in ("id", "title", "priority", "attempts", "errorClass", "errorMessage", "retryable",
                "firstFailureAt", "lastFailureAt", "deadAt", "workerId", "submittedAt"):
        table.add_row(plain(key), plain(str(e.get(key, ""))))
    return table


@app.command("show")
def show(
    ad_id: Annotated[str, typer.Argument(metavar="ID", help="The ad id.")],
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Show one dead-lettered ad with its error and history.

    Example: gamead dlq show 01m87v538ce744cfgethvyb39n -o json
    """
    with api_client(config, api) as client:
        emit(client.request("GET", f"/v1/dlq/{ad_id}"), output, _entry_view)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=stderr_console(), transient=False, disable=not sys.stderr.isatty())


@app.command("replay")
def replay(
    ids: IdsArg = None, everything: AllOpt = False,
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be replayed.")] = False,
    rate: Annotated[float | None, typer.Option(min=0.001, help="Replays per second [dlq.replay_rate].")] = None,
    stop_on_failure_rate: Annotated[float | None, typer.Option(
        min=0, max=1, help="Stop when more than this share of replayed ads fail again (e.g. 0.5).")] = None,
    yes: YesOpt = False, output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Send dead-lettered ads back to their original priority; each leaves the DLQ once re-enqueued.

    Example: gamead dlq replay --error-class TaskTimeout --rate 20 --stop-on-failure-rate 0.5
    """
    selection = _selection(ids, everything, _filter(error_class, message, priority, since, until))
    body: dict[str, Any] = {**selection}
    if rate:
        body["rate"] = rate
    if stop_on_failure_rate is not None:
        body["stopOnFailureRate"] = stop_on_failure_rate
    with api_client(config, api) as client:
        preview = client.request("POST", "/v1/dlq/replay", json={**selection, "dryRun": True})
        matched = int(preview["matched"])
        if dry_run or matched == 0:
            emit(preview, output, lambda r: plain(f"{r['matched']} entr{'y' if r['matched'] == 1 else 'ies'} "
                                                  f"would be replayed"))
            return
        _confirm(f"Replay {matched} dead-lettered ad(s)?", yes)
        result = _replay_with_progress(client, body, matched)
    emit(result, output, _replay_view)
    if result.get("stopped"):
        raise typer.Exit(1)


def _replay_with_progress(client: ApiClient, body: dict[str, Any], matched: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    with _progress() as progress:
        task = progress.add_task("replaying", total=matched)
        for line in client.stream_ndjson("POST", "/v1/dlq/replay", json=body):
            if "result" in line:
                result = line["result"]
            else:
                progress.update(task, completed=line["progress"], total=line["matched"])
    return result


def _replay_view(r: dict[str, Any]) -> Any:
    text = (f"replayed {r['replayed']} of {r['matched']} (skipped {r['skipped']}); while replaying "
            f"{r['completed']} completed, {r['failed']} failed again")
    return plain(text + (f" — STOPPED: {r['reason']}" if r.get("stopped") else ""))


@app.command("purge")
def purge(
    ids: IdsArg = None, everything: AllOpt = False,
    error_class: ErrorClassOpt = None, message: MessageOpt = None, priority: PriorityOpt = None,
    since: SinceOpt = None, until: UntilOpt = None,
    yes: YesOpt = False, output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Delete dead-lettered ads for good (their records stay `dead`). Asks first unless --yes.

    Example: gamead dlq purge --priority 5 --until 7d --yes
    """
    selection = _selection(ids, everything, _filter(error_class, message, priority, since, until))
    with api_client(config, api) as client:
        preview = client.request("POST", "/v1/dlq/replay", json={**selection, "dryRun": True})
        matched = int(preview["matched"])
        if matched:
            _confirm(f"Purge {matched} dead-lettered ad(s)? This cannot be undone", yes)
        result = client.request("POST", "/v1/dlq/purge", json={**selection, "confirm": True})
    emit(result, output, lambda r: plain(f"purged {r['purged']} of {r['matched']}"))


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
    out = sys.stdout if file == "-" else open(file, "w", encoding="utf-8")  # noqa: SIM115
    written = 0
    try:
        with api_client(config, api) as client, _progress() as progress:
            task = progress.add_task("exporting", total=None)
            cursor = 0
            while True:
                page = client.request("GET", "/v1/dlq", params={**params, "cursor": cursor})
                progress.update(task, total=page["total"])
                for entry in page["items"]:
                    entry.pop("seq", None)
                    out.write(json.dumps(entry, separators=(",", ":")) + "\n")
                    written += 1
                progress.update(task, completed=written)
                if not page.get("nextCursor"):
                    break
                cursor = page["nextCursor"]
    finally:
        if out is not sys.stdout:
            out.close()
    if file != "-":
        note_line(f"exported {written} entr{'y' if written == 1 else 'ies'} to {file}")


@app.command("import")
def import_(
    file: Annotated[str, typer.Argument(metavar="FILE", help="JSONL from `gamead dlq export`, or - for stdin.")],
    output: OutputOpt = OutputFormat.table, api: ApiOpt = None, config: ConfigOpt = None,
) -> None:
    """Put exported entries into this environment's DLQ (then `gamead dlq replay` them here).

    Example: gamead dlq import dead.jsonl --api http://staging:8080
    """
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise GameadError(f"cannot read {file}: {exc.strerror or exc}") from exc
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise GameadError(f"{file}:{n}: not a JSON line ({exc.msg})") from exc
    totals = {"imported": 0, "duplicates": 0, "lines": len(entries)}
    with api_client(config, api) as client, _progress() as progress:
        task = progress.add_task("importing", total=len(entries))
        for i in range(0, len(entries), IMPORT_BATCH):
            batch = entries[i:i + IMPORT_BATCH]
            result = client.request("POST", "/v1/dlq/import", json={"entries": batch})
            totals["imported"] += result["imported"]
            totals["duplicates"] += result["duplicates"]
            progress.advance(task, len(batch))
    emit(totals, output, lambda t: plain(f"imported {t['imported']} of {t['lines']} ({t['duplicates']} already there)"))
