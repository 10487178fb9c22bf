"""The ``gamead workers`` footer counts the rows it stands beside.

After an API ``kill -9`` the footer said "3 node(s): 1 api, 2 worker(s) — 1 gone" beside 4 rows: the gone row
was left out of the count while the table showed it. Now the count is the rows shown, the gone one included and
named; per role it counts the live nodes, as ``top``'s header (``1 api · 2 workers … 1 gone``, attack26 F7)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from gamead_cli.commands.workers import _view


def node(node_id: str, role: str, state: str) -> dict[str, Any]:
    return {"id": node_id, "role": role, "state": state, "uptimeSeconds": None if state == "gone" else 60,
            "heartbeatAgeSeconds": 31.0 if state == "gone" else 0.4, "inFlight": 0, "concurrency": 2}


def test_the_footer_counts_every_row_shown_gone_ones_included_and_named() -> None:
    items = [node("api-vm-1", "api", "ok"), node("local-1", "worker", "idle"), node("local-2", "worker", "ok"),
             node("api-vm-killed", "api", "gone")]
    console = Console(width=160, record=True, color_system=None)
    console.print(_view({"items": items, "count": len(items), "readAt": "2026-12-03T06:00:00Z", "error": None}))
    text = console.export_text()
    rows = [ln for ln in text.splitlines() if ln.split()[:1] and ln.split()[0] in {n["id"] for n in items}]
    assert len(rows) == 4, text
    footer = next(ln for ln in text.splitlines() if "node(s)" in ln)
    assert footer.strip() == "4 node(s): 1 api, 2 worker(s) — 1 gone", footer
