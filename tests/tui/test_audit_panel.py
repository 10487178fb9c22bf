"""Issue 11 items 2-3 in the dashboard (recorded payload): the audit panel shows the last operator actions, and a
token that may not act (``GET /v1/whoami``: a viewer's) turns the dashboard read-only by itself."""

from __future__ import annotations

import asyncio
import copy
import io
from typing import Any

from rich.console import Console

from gamead_cli.tui import view, view_queue
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source_recorded import RecordedSource
from gamead_cli.tui.screens import TypedConfirmScreen
from gamead_cli.tui.widgets_tables import DlqTable
from tests.tui.conftest import on_recording, press, screen_text, settled, until



def test_the_audit_panel_shows_when_who_what_how_many_and_how_it_went(recorded: dict[str, Any]) -> None:
    async def scenario(app: DashboardApp, pilot: Any) -> None:
        lines = screen_text(app).splitlines()
        panel = lines[next(i for i, line in enumerate(lines) if "audit · last operator actions" in line):]
        text = "\n".join(panel)
        assert "22:42:11" in text and "wallboard" in text and "refused forbidden +2 earlier refusals not recorded" in text
        assert "replicas 4 for 10m00s" in text and "28 ads" in text and "succeeded" in text
        assert app.query_one("#audit").has_class("-alert")  # a refusal among the last actions

    on_recording(recorded, (120, 40), scenario)


def test_a_token_that_may_not_act_makes_the_dashboard_read_only(recorded: dict[str, Any]) -> None:
    recorded = {**recorded, "whoami": {"name": "wallboard", "role": "viewer", "authenticated": True, "mayAct": False}}

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        # waits on what is drawn: pilot.pause() is no wait for a redraw on a loaded machine (Textual's
        # wait_for_idle takes a process short of CPU for idle; flake43: the footer was still blank, 1 of 2 runs)
        def read_only_drawn() -> bool:
            lines = screen_text(app).splitlines()
            footer = lines[-1]
            return "READ-ONLY" in lines[0] and "q quit" in footer and not {"replay", "purge"} & set(footer.split())

        await until(pilot, lambda: app.readonly, what="read-only mode")
        await until(pilot, read_only_drawn, what="READ-ONLY on top, a footer without replay and purge")
        app.query_one(DlqTable).focus()
        await press(pilot, "space", "r", "x")
        await settled(pilot)
        assert not isinstance(app.screen, TypedConfirmScreen) and app.source.calls == []  # type: ignore[attr-defined]

    on_recording(recorded, (80, 24), scenario)


def test_an_operator_token_keeps_the_actions(recorded: dict[str, Any]) -> None:
    recorded = {**recorded, "whoami": {"name": "alice", "role": "operator", "authenticated": True, "mayAct": True}}

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        await until(pilot, lambda: app._role_known, what="the role asked")
        await until(pilot, lambda: "q quit" in screen_text(app).splitlines()[-1], what="the footer drawn")
        assert not app.readonly and "r replay" in screen_text(app).splitlines()[-1]

    on_recording(recorded, (80, 24), scenario)


def test_an_api_without_an_audit_trail_says_so_in_the_panel_and_shows_the_rest(recorded: dict[str, Any]) -> None:
    recorded = copy.deepcopy(recorded)
    del recorded["audit"]

    async def scenario(app: DashboardApp, pilot: Any) -> None:
        text = screen_text(app)
        assert "the API has no audit trail (HTTP 404)" in text and "DLQ 12 entries" in text

    on_recording(recorded, (120, 40), scenario)


def test_top_once_prints_the_last_actions_with_a_header(recorded: dict[str, Any]) -> None:
    snap = view.Snapshot(stats=recorded["stats"], nodes=recorded["workers"], dlq=recorded["dlq"],
                         audit=recorded["audit"])
    console = Console(width=100, file=io.StringIO(), record=True, color_system=None)
    console.print(view.snapshot_view(snap, "http://recorded"))
    text = console.export_text()
    assert "audit · last operator actions" in text
    assert "TIME" in text and "WHO" in text and "OUTCOME" in text and "alice" in text
    assert snap.as_json()["audit"]["items"][0]["actor"] == "wallboard"


def test_an_audit_trail_the_api_cannot_read_is_said_once(recorded: dict[str, Any]) -> None:
    """The audit read answered 503 (NATS frozen): the panel says why in one phrase, not 'audit trail unavailable:
    audit trail unavailable: …' (reviewer V10, `gamead top --once` while nats-server was SIGSTOPped)."""
    from gamead_cli.tui.source import fetch_snapshot
    from gamead_core.errors import ApiClientError

    class Frozen(RecordedSource):
        def audit(self) -> dict[str, Any]:
            raise ApiClientError("the queue is unavailable right now [queue_unavailable, HTTP 503]", status=503)

    snap = fetch_snapshot(Frozen(recorded), 60)
    console = Console(width=100, file=io.StringIO(), record=True, color_system=None)
    console.print(view.snapshot_view(snap, "http://recorded"))
    text = " ".join(console.export_text().split())
    assert "audit trail unavailable: the queue is unavailable right now" in text
    assert text.count("audit trail unavailable") == 1


def test_levels_the_api_cannot_read_are_named_with_the_reason(recorded: dict[str, Any]) -> None:
    """Levels ``/v1/stats`` could not read (NATS frozen: ``unreadableLevels``, each with its ``error``) show "-";
    the queue's title says which and why instead of leaving the dashes unexplained (reviewer V10)."""
    stats = copy.deepcopy(recorded["stats"])
    for level in stats["queue"]["levels"]:
        if level["priority"] in (1, 3):
            level.update(pending=None, ackPending=None, redelivered=None, readable=False, error="nats: timeout")
    stats["queue"]["unreadableLevels"] = [1, 3]
    snap = view.Snapshot(stats=stats, nodes=recorded["workers"], dlq=recorded["dlq"], audit=recorded["audit"])
    console = Console(width=100, file=io.StringIO(), record=True, color_system=None)
    console.print(view.snapshot_view(snap, "http://recorded"))
    assert "P1,P3 unreadable (nats: timeout)" in console.export_text()
    assert view_queue.unreadable_note(recorded["stats"]) == ""


def test_an_empty_dlq_shows_no_table_header_and_the_audit_panel_says_its_times_are_utc(
        recorded: dict[str, Any]) -> None:
    """newcomer46: the live dashboard's empty dead-letter panel drew `0 entries` above an empty table header (ID,
    PRI, …), and the audit panel's times (no header row there) said no time zone (``--once`` has ``TIME (UTC)``)."""
    recorded = copy.deepcopy(recorded)
    recorded["dlq"] = {"items": [], "inDlq": 0}
    recorded["stats"]["dlq"] = {"size": 0, "bytes": 0}

    async def main() -> None:
        app = DashboardApp(RecordedSource(recorded), refresh=3600)
        async with app.run_test(size=(120, 40)) as pilot:
            def drawn() -> str:
                text = screen_text(app)
                return text if app.dlq is not None and "times UTC" in text else ""

            text = await until(pilot, drawn, what="the dead letters and the audit on screen")
            await settled(pilot)
            assert "0 entries" in screen_text(app), text
            assert not app.query_one(DlqTable).display, "an empty table is not drawn"

    asyncio.run(main())


def test_a_narrow_audit_table_keeps_how_each_action_went_before_what_it_chose(recorded: dict[str, Any]) -> None:
    """words57: at 60 columns ``top --once``'s audit table kept WHAT (cut to a few cells) and dropped OUTCOME, so a
    refused action read like any other; WHAT now goes first (before: 25 of the 81 widths 40-120 failed)."""
    from gamead_cli.tui.view_audit import audit_table

    table = audit_table(recorded["audit"], None, header=True, limit=5)
    for width in range(40, 121):
        shown = table.columns_for(width)
        assert "WHAT" not in shown or "OUTCOME" in shown, (width, shown)
