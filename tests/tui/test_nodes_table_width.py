"""At 80 columns the nodes table keeps HEARTBEAT (stuck and late nodes are told by it) and gives up UP first.

A fresh clone's run: with UP added, a node carrying a LAST ERROR made ``gamead workers`` drop HEARTBEAT at 80
columns (its drop order had HEARTBEAT before UP)."""

from __future__ import annotations

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
