"""At 80 columns the nodes table keeps HEARTBEAT (stuck and late nodes are told by it) and gives up UP first.

A fresh clone's run: with UP added, a node carrying a LAST ERROR made ``gamead workers`` drop HEARTBEAT at 80
columns (its drop order had HEARTBEAT before UP)."""

from __future__ import annotations

import io

from rich.console import Console

from gamead_cli.tui.view import nodes_table


def test_heartbeat_outlives_up_at_80_columns() -> None:
    nodes = [
        {"id": "api-vm-5246", "role": "api", "state": "ok", "uptimeSeconds": 18, "heartbeatAgeSeconds": 0.4},
        {"id": "local-1", "role": "worker", "state": "gone", "uptimeSeconds": 125, "inFlight": 2, "concurrency": 4,
         "processed": 1153, "failed": 258, "processingMs": {"p95": 419.0}, "heartbeatAgeSeconds": 14.2,
         "lastError": "RetryableError: injected retryable fault (worker.faults) on a long title"},
    ]
    console = Console(width=80, record=True, color_system=None)
    console.print(nodes_table(nodes))
    header = next(line for line in console.export_text().splitlines() if "ID" in line and "STATE" in line)
    assert "HEARTBEAT" in header, header


#: the node columns that are detail: none is shown while HEARTBEAT (liveness) is not
DETAIL = ("ROLE", "UP", "COMPLETED", "FAILED", "PROC P95", "LAST ERROR")


def _header(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return next(line for line in console.export_text().splitlines() if line.startswith("ID ") and "STATE" in line)


def test_liveness_outlasts_detail_at_every_width() -> None:
    """words57: at 60 columns ``top --once`` kept a cut LAST ERROR and dropped HEARTBEAT (so did ``gamead workers``;
    the live panel dropped it before COMPLETED and FAILED). Before the fix 35 of the 71 widths 40-110 failed."""
    from gamead_cli.tui.view import Snapshot, snapshot_view

    nodes = [
        {"id": "api-vm-5246", "role": "api", "state": "ok", "uptimeSeconds": 18, "heartbeatAgeSeconds": 0.4},
        {"id": "local-1", "role": "worker", "state": "late", "uptimeSeconds": 125, "inFlight": 2, "concurrency": 4,
         "processed": 1153, "failed": 258, "processingMs": {"p95": 419.0}, "heartbeatAgeSeconds": 14.2,
         "lastError": "RetryableError: injected retryable fault (worker.faults) on a long title"},
    ]
    bad = []
    for width in range(40, 111):
        for header in (_header(nodes_table(nodes), width), _header(snapshot_view(Snapshot(nodes=nodes), "x"), width)):
            if "HEARTBEAT" not in header and any(c in header for c in DETAIL):
                bad.append((width, header))
    assert not bad, bad[:3]


def test_the_legend_says_last_error_may_be_the_worker_s_own_which_failed_does_not_count() -> None:
    """attack57: ``gamead workers`` showed ``storage: …`` as LAST ERROR on a worker with FAILED 0 while its legend
    said "the latest error an analysis raised there": the figures read as contradicting. The legend now says which
    errors FAILED counts (an analysis's) and which it does not (the worker's own, named by its kind)."""
    from gamead_cli.tui.view import NODES_LEGEND, Legend

    nodes = [{"id": "local-1", "role": "worker", "state": "ok", "uptimeSeconds": 60, "inFlight": 0, "concurrency": 4,
              "processed": 12, "failed": 0, "heartbeatAgeSeconds": 0.4,
              "lastError": "storage: the ads bucket refused a write (disk full)"}]
    table = nodes_table(nodes)
    legend = " ".join(Legend(table, NODES_LEGEND).text(200).plain.split())
    assert "LAST ERROR: the latest error there: an analysis's (counted in FAILED) or the worker's own, named by its " \
           "kind (storage: a store it could not write, dlq_full: …), which FAILED does not count" in legend, legend
