"""SLO at a glance: per level the backlog, in flight, the oldest ad's age against the level's promised wait
(red past it), the fleet's wait p95; the header's NATS server, storage and the doctor's last verdict."""

from __future__ import annotations

import asyncio
from typing import Any

from gamead_cli.tui import view, view_header, view_queue
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.widgets import QueuePanel, SparkRow, SummaryBar
from tests.tui.conftest import settled, until


def test_each_level_shows_its_oldest_age_against_its_promised_wait(recorded: dict[str, Any]) -> None:
    rows = {r.priority: r for r in view_queue.level_rows(recorded["stats"])}
    # P5: the oldest ad waited 47 s, its horizon is (5 − 1) × 10 s = 40 s: late
    # and its ads' queue wait p95 over the last minute, from the workers' per-level histograms (waitP95Ms): an
    # estimate (≈); this recording has no waitP95Estimate (its bucket), so 52 s against 40 s is "?", not a breach
    assert view_queue.level_text(rows[5]).split() == ["P5", "177", "0", "2", "47s!", "40s", "≈52s?"]
    assert view_queue.level_text(rows[4]).split()[-1] == "-"  # no ad of P4 in the minute
    assert rows[5].late and not rows[1].late
    assert view_queue.level_text(rows[5], compact=True).split() == ["P5", "177", "0", "47s!", "40s"]
    assert view_queue.level_header().split() == ["PENDING", "ACK-P", "REDEL", "OLDEST", "MAX", "P95", "DEPTH"]


def test_the_panel_reds_the_late_level_and_titles_the_fleet_wait_p95(recorded: dict[str, Any]) -> None:
    async def main() -> None:
        app = DashboardApp(RecordedSource(recorded), refresh=3600)
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.stats is not None, what="the first refresh")
            await settled(pilot)
            assert app.query_one("#level-5", SparkRow).has_class("-late")
            assert not app.query_one("#level-1", SparkRow).has_class("-late")
            panel = app.query_one(QueuePanel)
            assert "wait p95 ≈25ms" in str(panel.border_title)  # queueWaitMs.p95 24.547 over the last minute
            assert "late: P5" in str(panel.border_subtitle)
            header = str(app.query_one(SummaryBar).render())
            assert "NATS gamead_embedded v2.15.1" in header and "2.8 MiB stored" in header

    asyncio.run(main())


def test_the_doctor_verdict_and_its_time() -> None:
    assert view_header.doctor_text({"ok": True, "checkedAt": "2026-11-24T22:42:13Z"}).plain == "doctor ok at 22:42:13"
    assert view_header.doctor_text({"ok": False, "problems": 3, "checkedAt": "2026-11-24T22:42:13Z"}).plain == \
        "doctor 3 problems at 22:42:13"
    assert view_header.doctor_text(None, "not allowed").plain == "doctor failed: not allowed"


def test_a_warning_only_doctor_verdict_is_ok_with_its_warnings_as_gamead_doctor_exits_0() -> None:
    """review28 R3 left the dashboard saying "1 problem" for a report `gamead doctor` exits 0 for (a Redis that
    refuses writes: a warning, the ads still flow)."""
    warned = {"ok": False, "complete": True, "problems": 1, "checkedAt": "2026-11-24T22:42:13Z",
              "findings": [{"kind": "redis_unwritable", "severity": "warning"}]}
    assert view_header.doctor_text(warned).plain == "doctor ok · 1 warning at 22:42:13"
    erred = {**warned, "findings": [{"kind": "registry_unwritable", "severity": "error"}]}
    assert view_header.doctor_text(erred).plain == "doctor 1 problem at 22:42:13"


def test_a_level_past_its_promised_wait_is_marked_in_plain_text_not_only_red(recorded: dict[str, Any]) -> None:
    """attack25d #6: ``gamead top --once | cat`` printed ``P5 … 47s 40s`` with nothing past colour saying OLDEST
    was past MAX WAIT (a script, an SSH log never sees red). Now OLDEST carries ``!`` there (the legend says so), in
    ``top --once`` and in the live dashboard's level rows alike."""
    from rich.console import Console

    console = Console(width=160, record=True, color_system=None)
    console.print(view.snapshot_view(view.Snapshot(stats=recorded["stats"]), "http://recorded"))
    lines = console.export_text().splitlines()
    p5 = next(ln for ln in lines if ln.split()[:1] == ["P5"]).split()
    p1 = next(ln for ln in lines if ln.split()[:1] == ["P1"]).split()
    assert p5[4:6] == ["47s!", "40s"] and not any(cell.endswith("!") for cell in p1), (p5, p1)
    assert "OLDEST is marked ! past it" in " ".join(lines)
    rows = {r.priority: r for r in view_queue.level_rows(recorded["stats"])}
    assert view_queue.level_text(rows[5]).split()[4] == "47s!" and "!" not in view_queue.level_text(rows[1])


def test_long_durations_fit_their_columns_and_keep_max_and_p95_in_place() -> None:
    """tui42 F6: at 120x40 an OLDEST of ``11m07s!`` (7 cells in a column of 6) pushed MAX and P95 one cell right
    (``P4   2,295   117   116 11m07s!   30s``). Now each duration cell drops its last unit when it does not fit:
    ``11m!``, a MAX of ``10m``, a P95 of ``≈10m?``; every cell ends under its label. Without the fix this fails
    (the row is 1-3 cells longer than the header), with it it passes."""
    header = view_queue.level_header()
    ends = {label: header.index(label) + len(label) for label in ("OLDEST", "MAX", "P95")}
    cases = [  # (oldest s, horizon s, wait p95 ms, late, the three cells as shown)
        (667.0, 40.0, 31_000.0, True, ("11m!", "40s", "≈31s")),
        (667.0, 600.0, 650_000.0, True, ("11m!", "10m", "≈10m?")),  # ≈10m50s?: over MAX, unsure (no bucket)
        (3599.0, 900.0, 700_000.0, False, ("59m59s", "15m", "≈11m")),
        (100.0, 60.0, 65_000.0, True, ("1m40s!", "1m00s", "≈1m?")),  # ≈1m05s? is 7 cells
        (47.0, 40.0, None, True, ("47s!", "40s", "-")),
    ]
    for oldest, horizon, p95, late, cells in cases:
        row = view_queue.LevelRow(priority=4, pending=2295, ack_pending=117, redelivered=116, oldest=oldest,
                                  horizon=horizon, late=late, history=[], wait_p95=p95)
        text = view_queue.level_text(row)
        print(header, text, sep="\n")
        assert len(text) == ends["P95"], (header, text)  # before: 1-3 cells longer, MAX and P95 shifted
        for label, cell in zip(("OLDEST", "MAX", "P95"), cells):
            assert text[:ends[label]].endswith(cell), (label, cell, header, text)
