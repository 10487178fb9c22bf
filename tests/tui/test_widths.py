"""Every column label whole at 80 and 120 columns: ``gamead top --once``, ``gamead workers``, ``gamead dlq list``
and ``gamead dlq jobs`` (the reviewer's finding: at 80 columns rich cut them to ``PEND…``, ``OLDE…``,
``HORIZ…``, ``LAS…``, ``PH…``, ``DONE/MAT…``, and dropped MESSAGE and TITLE from ``dlq list`` without a word).

A narrow terminal may drop whole columns, as k9s does, in each table's documented order (``drop``; first a
column nothing in any row fills); a label it shows is never cut. Rendered with a rich console of that width.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console, Group, RenderableType

from gamead_cli.commands import dlq_views, workers
from gamead_cli.fitted import FittedTable
from gamead_cli.tui import view, view_tables

#: a job document as GET /v1/jobs answers it (a live stack's import of three entries)
JOB: dict[str, Any] = {
    "id": "01m8p33nsytmjhnncm4ad1rvyf", "kind": "import", "state": "succeeded", "phase": "done",
    "selection": {"mode": "entries", "filter": None, "ids": None, "notInDlq": 0, "fence": 0, "limit": None},
    "counts": {"matched": 3, "done": 3, "remaining": 0, "imported": 3, "skipped": 0}, "skippedReasons": {},
    "startedBy": "anonymous", "createdAt": "2026-11-30T11:23:13.598377Z", "startedAt": "2026-11-30T11:23:13.605592Z",
    "finishedAt": "2026-11-30T11:23:13.621851Z", "rate": None, "stopOnFailureRate": None, "stopReason": None,
    "runner": "vm-21100-3919gp", "leaseUntil": 1796037808.6219175, "resumes": 0, "cancelRequested": None,
    "chunks": 1, "followUntil": None, "findings": None,
}


def rendered(renderable: RenderableType, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def tables(renderable: RenderableType) -> list[FittedTable]:
    if isinstance(renderable, FittedTable):
        return [renderable]
    if isinstance(renderable, Group):
        return [t for part in renderable.renderables for t in tables(part)]
    return []


def assert_headers_whole(renderable: RenderableType, width: int) -> list[list[str]]:
    """Each table's header line holds exactly the labels it shows, each whole (no "…"); the columns it left
    out are ones it may drop. Returns the labels shown, per table."""
    text = rendered(renderable, width)
    lines = text.splitlines()
    assert all(len(line.rstrip()) <= width for line in lines)
    shown_all = []
    for table in tables(renderable):
        shown = table.columns_for(width)
        words = [label for label in shown if label.strip()]
        heads = [line for line in lines if re.split(r"\s{2,}", line.strip()) == words]
        assert heads, (width, words, text)
        assert "…" not in heads[0]
        dropped = set(table.columns) - set(shown)
        may_drop = set(table.drop) | {c for i, c in enumerate(table.columns) if table._empty(i)}
        assert dropped <= may_drop, (width, dropped)
        shown_all.append(shown)
    return shown_all


@pytest.mark.parametrize("width", [80, 120])
def test_top_once_shows_every_queue_and_node_label_whole(recorded: dict[str, Any], width: int) -> None:
    snap = view.Snapshot(stats=recorded["stats"], nodes=recorded["workers"], dlq=recorded["dlq"],
                         audit=recorded["audit"])
    queue, metrics, nodes, dead, audit = assert_headers_whole(view.snapshot_view(snap, "http://recorded"), width)
    # the figure: "PEND…", "OLDE…", "HORIZ…" at 80 columns; every queue column fits there
    assert queue[:7] == ["P", "PENDING", "ACK-P", "REDEL", "OLDEST", "MAX WAIT", "WAIT P95"]
    # newcomer N8: "PENDING, LAST 111 S" (the unit upper-cased into an S) said nothing clear
    assert re.fullmatch(r"PENDING, LAST \d+ (s|min)", queue[7]), queue[7]
    text = rendered(view.snapshot_view(snap, "http://recorded"), width)
    flat = " ".join(text.split())
    for label, meaning in (("ACK-P", "ack pending"), ("REDEL", "redelivered"), ("MAX WAIT", "promised wait"),
                           ("WAIT P95", "queue wait over the last minute")):
        assert f"{label}: " in flat and meaning in flat, label  # each abbreviated figure is told below the table
    assert re.search(r"queued +\d+\.\d+ ads/s", text) and re.search(r"ack pending +\d+ ads", text)
    assert re.search(r"at \d\d:\d\d:\d\d UTC", flat)
    assert "LAST ERROR" in nodes and "MESSAGE" in dead and "OUTCOME" in audit  # worker-a has an error
    if width == 120:
        assert nodes == list(view_tables.NODE_COLUMNS) and dead == list(view_tables.DLQ_COLUMNS)


@pytest.mark.parametrize("width", [80, 120])
def test_gamead_workers_shows_every_label_whole_and_each_metrics_url_on_its_line(recorded: dict[str, Any],
                                                                               width: int) -> None:
    body = {"items": [{**n, "metricsUrl": f"http://127.0.0.1:{8081 + i}/metrics"}
                      for i, n in enumerate(recorded["workers"])]}
    (nodes,) = assert_headers_whole(workers._view(body), width)
    assert {"ID", "STATE", "IN-FL", "LAST ERROR"} <= set(nodes)
    text = rendered(workers._view(body), width)
    for i, n in enumerate(recorded["workers"]):  # a URL cut across two lines cannot be pasted
        assert f"{n['id']} http://127.0.0.1:{8081 + i}/metrics" in text


@pytest.mark.parametrize("width", [80, 120])
def test_gamead_dlq_list_and_jobs_show_every_label_whole(recorded: dict[str, Any], width: int) -> None:
    items = recorded["dlq"]["items"]
    (entries,) = assert_headers_whole(dlq_views.list_view({"items": items, "count": len(items), "total": len(items)}),
                                      width)
    assert {"ID", "ERROR", "MESSAGE", "DEAD AT (UTC)"} <= set(entries)  # MESSAGE was dropped silently at 80
    text = rendered(dlq_views.list_view({"items": items, "count": len(items), "total": len(items)}), width)
    assert all(e["adId"] in text for e in items)  # whole ids
    (jobs,) = assert_headers_whole(dlq_views.jobs_table({"items": [JOB]}), width)
    assert {"JOB", "KIND", "STATE", "DONE/MATCHED", "SUMMARY"} <= set(jobs)
    assert JOB["id"] in rendered(dlq_views.jobs_table({"items": [JOB]}), width)
    if width == 120:
        assert entries == list(dlq_views.ENTRY_COLUMNS) and jobs == list(dlq_views.JOB_COLUMNS)


def test_top_once_says_how_many_partitions_its_queue_figures_sum() -> None:
    """With queue.partitions 3 nothing on the dashboard said the levels are summed over three work streams."""
    stats = {"queue": {"partitions": 3, "levels": []}}
    assert "queue · 3 partitions" in rendered(view.snapshot_view(view.Snapshot(stats=stats), "http://x"), 80)
    one = rendered(view.snapshot_view(view.Snapshot(stats={"queue": {"partitions": 1}}), "http://x"), 80)
    assert "partition" not in one
