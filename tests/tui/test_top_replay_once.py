"""``gamead top --replay``: a missing or broken FILE is bad input (exit 2, the README's table), and ``--once``
prints the recording's last snapshot with no terminal, for scripts (task C4 item 6)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from gamead_cli.main import app
from gamead_cli.tui.recording import Recorder
from gamead_cli.tui.source import fetch_snapshot
from gamead_cli.tui.source_recorded import RecordedSource
from tests.tui.conftest import settled, until


def _recording(tmp_path: Path, recorded: dict[str, Any]) -> Path:
    path = tmp_path / "incident.jsonl"
    rec = Recorder(path)
    snap = fetch_snapshot(RecordedSource(recorded), 300)
    assert rec.write(snap, at=1000.0) and rec.write(snap, at=1001.0)
    rec.close()
    return path


def test_replay_once_prints_without_a_terminal(tmp_path: Path, recorded: dict[str, Any]) -> None:
    path = _recording(tmp_path, recorded)
    result = CliRunner().invoke(app, ["top", "--replay", str(path), "--once", "-o", "json"])
    assert result.exit_code == 0, result.output  # was: "the replay needs a terminal", exit 5
    doc = json.loads(result.stdout)
    assert doc["stats"]["queue"]["levels"][0]["pending"] == recorded["stats"]["queue"]["levels"][0]["pending"]
    for columns in ("160", "80"):  # under 100 columns the header is compact and drops the address ("replay of …")
        table = CliRunner().invoke(app, ["top", "--replay", str(path), "--once"], env={"COLUMNS": columns})
        assert table.exit_code == 0 and "REPLAY incident.jsonl" in table.stdout, (columns, table.output)
    # newcomer56: piped, no COLUMNS (the header whole), it said the file twice: `REPLAY incident.jsonl replay of
    # incident.jsonl  1 api · …`
    piped = CliRunner().invoke(app, ["top", "--replay", str(path), "--once"], env={"COLUMNS": None})
    assert piped.exit_code == 0 and piped.stdout.splitlines()[0].count("incident.jsonl") == 1, piped.output
    # newcomer56: the DLQ table's P and ATT had no legend, though the queue's and the nodes' tables have theirs
    assert ("P: priority (1 most urgent … 5 least) · ATT: analysis attempts"
            in piped.stdout.splitlines()), piped.stdout


def test_replay_without_once_and_without_a_terminal_says_to_add_once(tmp_path: Path,
                                                                      recorded: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["top", "--replay", str(_recording(tmp_path, recorded))])
    assert result.exit_code == 2 and "add --once" in result.stderr, result.output


def test_a_missing_or_broken_replay_file_is_exit_2(tmp_path: Path) -> None:
    missing = CliRunner().invoke(app, ["top", "--replay", str(tmp_path / "nonexistent")])
    assert missing.exit_code == 2, missing.output  # was 5; the README's table: 2 for a missing input file
    assert "nonexistent: does not exist" in missing.stderr and "Traceback" not in missing.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    broken = CliRunner().invoke(app, ["top", "--replay", str(empty), "--once"])
    assert broken.exit_code == 2 and "empty recording" in broken.stderr, broken.output
    both = CliRunner().invoke(app, ["top", "--record", str(tmp_path / "r.jsonl"), "--replay", str(empty)])
    assert both.exit_code == 2 and "choose --replay or --record" in both.stderr, both.output  # was 5


def test_once_titles_the_queue_as_the_live_dashboard_does(tmp_path: Path, recorded: dict[str, Any]) -> None:
    """A newcomer's find: ``--once`` titled its queue table "queue" alone, without the fleet's wait p95 the
    README says the dashboard shows there. Both now print :func:`view_queue.queue_title`: the partitions, the fleet's
    queue-wait p95 over the last minute and how far back the depth reaches, each said for what it is."""
    import asyncio

    from gamead_core.rate_window import span
    from gamead_cli.tui import view, view_queue
    from gamead_cli.tui.app import DashboardApp
    from gamead_cli.tui.widgets import QueuePanel

    stats = {**recorded["stats"], "queue": {**recorded["stats"]["queue"], "partitions": 3}}
    path = _recording(tmp_path, {**recorded, "stats": stats})
    table = CliRunner().invoke(app, ["top", "--replay", str(path), "--once"], env={"COLUMNS": "120"})
    assert table.exit_code == 0, table.output
    depth = span(view.history_span(stats))
    title = f"queue · 3 partitions · wait p95 ≈25ms · depth: last {depth}"  # queueWaitMs.p95 24.547
    assert title == view_queue.queue_title(stats, view.history_span(stats))
    titles = [line.strip() for line in table.stdout.splitlines() if line.strip().split(" ·")[0] == "queue"]
    assert titles == [title]

    async def live(size: tuple[int, int] = (120, 40)) -> str:
        dashboard = DashboardApp(RecordedSource({**recorded, "stats": stats}), refresh=3600)
        async with dashboard.run_test(size=size) as pilot:
            await until(pilot, lambda: dashboard.stats is not None, what="the first refresh")
            await settled(pilot)
            panel = dashboard.query_one(QueuePanel)
            return str(panel.border_title) if size[0] >= 120 else f"{panel.border_title} / {panel.border_subtitle}"

    # a narrow panel (80 columns) said "queue (5 min)": its reach now goes in its bottom border, in the same words
    # (each wait of live() has its own deadline; a 30 s budget around the whole start, refresh and settling was a
    # timing of the machine: flake55, cut at load ~40 while it made progress)
    narrow = asyncio.run(live((80, 24)))
    assert narrow == f"queue · wait p95 ≈25ms / late: P5 · depth: last {depth}"  # the recording's P5 is late
    shown = asyncio.run(live())
    # newcomer49: the live title said "depth: last 5 min" (what it asked for) of the very answer --once titled
    # "depth: last 2 min" (what it held): both now say how far back the answer's sparklines reach
    assert shown == title
    assert view_queue.queue_title(stats, 300) == "queue · 3 partitions · wait p95 ≈25ms · depth: last 5 min"
    assert view_queue.queue_title(stats, 300, compact=True) == "queue · wait p95 ≈25ms"  # depth: the subtitle


def test_the_dlq_pane_says_how_old_a_page_the_api_kept_is(recorded: dict[str, Any]) -> None:
    """outage38: a DLQ page the API answered from its recent answers (``ageSeconds`` 12.4, a watcher's page shared)
    was shown under "dead letters" alone, as if read now; its pane's title now says ``as of 12s ago``, and a fresh
    page (``ageSeconds`` 0) keeps the plain title."""
    import asyncio

    from gamead_cli.tui.app import DashboardApp
    from gamead_cli.tui.widgets_tables import DlqPanel

    async def title(page: dict[str, Any]) -> str:
        dashboard = DashboardApp(RecordedSource({**recorded, "dlq": page}), refresh=3600)
        async with dashboard.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: dashboard.dlq is not None, what="the first refresh")
            await settled(pilot)
            return str(dashboard.query_one(DlqPanel).border_title).removesuffix(" · 5 more ↓")  # rows below

    # (no 30 s budget around title(): its waits have their deadlines, the test above says why)
    assert asyncio.run(title({**recorded["dlq"], "ageSeconds": 12.4})) == \
        "dead letters · as of 12s ago"  # before: "dead letters"
    assert asyncio.run(title({**recorded["dlq"], "ageSeconds": 0})) == "dead letters"
