"""``gamead top --record`` / ``--replay``: what was received is what plays back, frame by frame, within a size
cap; the player drives the real dashboard through Pilot (no server)."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.recording import Player, Recorder, apply_delta, history_delta
from gamead_cli.tui.source import fetch_snapshot
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.view import Snapshot
from gamead_cli.tui.widgets import SparkRow, SummaryBar
from gamead_cli.tui.widgets_tables import DlqTable
from tests.tui.conftest import press, screen_text, until


def frames(recorded: dict[str, Any], n: int) -> list[Snapshot]:
    """``n`` snapshots one second apart: the history moves on by one point, P1's waiting count by one."""
    out = []
    source = RecordedSource(recorded)
    base = fetch_snapshot(source, 300)
    for i in range(n):
        stats = copy.deepcopy(dict(base.stats or {}))
        hist = stats["history"]
        for key, value in list(hist.items()):
            if isinstance(value, list):
                hist[key] = value[i:] + ([value[-1] + j + 1 for j in range(i)] if key == "t" else value[:i])
            elif isinstance(value, dict):
                hist[key] = {k: v[i:] + v[:i] for k, v in value.items()}
        stats["queue"]["levels"][0]["pending"] = 100 + i
        out.append(Snapshot(stats=stats, nodes=base.nodes, dlq=base.dlq, audit=base.audit))
    return out


def recording(path: Path, recorded: dict[str, Any], n: int) -> Path:
    """A recording at ``path`` of :func:`frames` ``n``, one second apart; returns ``path``."""
    rec = Recorder(path)
    for i, snap in enumerate(frames(recorded, n)):
        rec.write(snap, at=1_764_000_000.0 + i)
    rec.close()
    return path


def p1_waiting(app: DashboardApp) -> str:
    """P1's waiting count as the dashboard's level row shows it (:func:`frames`: 100 + the frame's index)."""
    return app.query_one("#level-1", SparkRow).text.split()[1]


def test_history_delta_round_trips() -> None:
    before = {"intervalSeconds": 1.0, "t": [1.0, 2.0, 3.0], "inFlight": [5, 6, 7], "waiting": {"1": [0, 1, 2]}}
    after = {"intervalSeconds": 1.0, "t": [2.0, 3.0, 4.0, 5.0], "inFlight": [6, 7, 8, 9],
             "waiting": {"1": [1, 2, 3, 4]}}
    delta = history_delta(after, since=3.0)
    assert delta == {"intervalSeconds": 1.0, "t": [4.0, 5.0], "inFlight": [8, 9], "waiting": {"1": [3, 4]}}
    assert apply_delta(before, delta, points=4) == after
    assert history_delta(after, since=None) is None  # the first frame: whole


def test_every_recorded_snapshot_plays_back_as_received(tmp_path: Path, recorded: dict[str, Any]) -> None:
    sent = frames(recorded, 5)
    rec = Recorder(tmp_path / "s.jsonl")
    for i, snap in enumerate(sent):
        assert rec.write(snap, at=1000.0 + i)
    rec.close()
    lines = (tmp_path / "s.jsonl").read_text().splitlines()
    assert len(lines) == 5 and all(json.loads(line)["v"] == 1 for line in lines)
    # later lines carry only the new history point: far smaller than the first
    print(f"first line {len(lines[0]):,} bytes, later lines {len(lines[1]):,} bytes")
    assert len(lines[1]) * 3 < len(lines[0])
    player = Player(tmp_path / "s.jsonl", history=300)
    assert len(player) == 5
    for i in (0, 1, 2, 4, 3, 0, 4):  # forward, skipping, and back
        assert player.frame(i).stats == sent[i].stats, i
        assert player.at == 1000.0 + i


def test_the_recording_stops_at_its_size_cap(tmp_path: Path, recorded: dict[str, Any]) -> None:
    sent = frames(recorded, 30)
    first = len(json.dumps({"v": 1, "at": 0, "snapshot": sent[0].as_json()}, separators=(",", ":")))
    rec = Recorder(tmp_path / "s.jsonl", max_bytes=first + 5_000)
    written = [rec.write(s) for s in sent]
    rec.close()
    assert written[0] and not written[-1] and rec.full
    assert (tmp_path / "s.jsonl").stat().st_size == rec.written <= first + 5_000
    assert len(Player(tmp_path / "s.jsonl")) == rec.frames == written.index(False)


def test_replay_plays_steps_and_changes_speed_with_no_action_offered(tmp_path: Path,
                                                                    recorded: dict[str, Any]) -> None:
    player = Player(recording(tmp_path / "s.jsonl", recorded, 3))

    async def main() -> None:
        app = DashboardApp(player, refresh=3600, player=player)  # type: ignore[arg-type]
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.stats is not None and app.query_one(DlqTable).row_count > 0,
                        what="the first frame")
            assert p1_waiting(app) == "100" and app.readonly
            header = str(app.query_one(SummaryBar).render())
            assert "READ-ONLY" in header and "REPLAY frame 1/3" in header
            footer = await until(pilot, lambda: "q quit" in screen_text(app).splitlines()[-1]
                                 and screen_text(app).splitlines()[-1], what="the footer")
            assert "replay" not in footer and "purge" not in footer and ". step" in footer
            await press(pilot, "full_stop")
            await until(pilot, lambda: p1_waiting(app) == "101", what="one step forward")
            assert app.paused
            await press(pilot, "full_stop", "full_stop")  # the end: stays on the last frame
            await until(pilot, lambda: p1_waiting(app) == "102", what="the last frame")
            await press(pilot, "comma")
            await until(pilot, lambda: p1_waiting(app) == "101", what="one step back")
            await press(pilot, "plus", "plus")
            assert app.speed == 4.0
            await until(pilot, lambda: "×4" in str(app.query_one(SummaryBar).render()), what="the speed shown")
            await press(pilot, "minus")
            assert app.speed == 2.0
            await press(pilot, "colon", *"level 2", "enter")  # nothing was recorded but the snapshots
            await until(pilot, lambda: "not in the recording" in screen_text(app), what="the level's note")

    asyncio.run(main())


def test_top_refuses_a_file_that_is_not_a_recording(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from gamead_cli.main import app as cli

    bad = tmp_path / "bad.jsonl"
    bad.write_text("")
    result = CliRunner().invoke(cli, ["top", "--replay", str(bad)])
    assert result.exit_code != 0 and "empty recording" in result.output
    assert "Traceback" not in result.output
