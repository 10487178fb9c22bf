"""Per-level queue-wait p95 (issue 15.5): each worker's heartbeat carries its queue-wait bucket counts per
level, ``/v1/stats`` sums them per level (``waitP95Ms``), and the queue panel shows them."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from gamead_cli.client import ApiClient
from gamead_cli.tui.app import DashboardApp
from gamead_cli.tui.source import ApiSource
from gamead_cli.tui.widgets import SparkRow
from gamead_core.stats.fleet import fleet_level_wait_p95
from gamead_core.telemetry.histogram import LatencyBuckets
from gamead_core.telemetry.metrics import WorkerMetrics
from tests.support import ad, wait_for, wait_terminal, wait_worker_ready
from tests.tui.conftest import Observed, until

pytestmark = pytest.mark.xdist_group("tui-observed")


def node(metrics: WorkerMetrics, now: float) -> Any:
    """What the API reads of a heartbeat: its ``latencyBuckets``, through the wire form."""
    wire = LatencyBuckets(**metrics.buckets(now)).model_dump_json(by_alias=True)
    return SimpleNamespace(latency_buckets=LatencyBuckets.model_validate_json(wire))


def test_the_fleet_p95_of_each_level_sums_the_workers_counts() -> None:
    now = 1_000_000.0
    a, b = WorkerMetrics(enabled=False), WorkerMetrics(enabled=False)
    for _ in range(95):
        a.completed(1, 0.1, 0.02, now)  # P1: 95 ads waited 20 ms (10-25 ms bucket) on worker a
    for _ in range(5):
        b.completed(1, 0.1, 4.0, now)  # and 5 waited 4 s on worker b
    for _ in range(10):
        b.completed(3, 0.1, 40.0, now)  # P3: 10 ads waited 40 s (30-60 s bucket)
    p95 = fleet_level_wait_p95([node(a, now), node(b, now)])
    assert set(p95) == {1, 3}  # idle levels are absent (and cost the heartbeat nothing)
    assert p95[1] == 25.0  # 95th of 100: the top of the 10-25 ms bucket, as histogram_quantile gives it
    assert 30_000 < p95[3] <= 60_000
    assert set(LatencyBuckets(**b.buckets(now)).queue_wait_by_level) == {1, 3}  # only the levels with ads
    # an older worker without the field: its levels are simply not counted
    old = SimpleNamespace(latency_buckets=LatencyBuckets(processing=[0] * 17, queue_wait=[0] * 17))
    # a's 95 ads alone, all of 20 ms: rank 90.25 of 95 interpolates to 24.25 ms, clamped to the 20 ms observed
    assert fleet_level_wait_p95([old, node(a, now)]) == {1: 20.0}


def test_stats_and_the_queue_panel_show_each_levels_wait_p95(observed: Observed) -> None:
    worker = observed.worker(f"p95-{uuid.uuid4().hex[:6]}")
    try:
        wait_worker_ready(worker)
        with httpx.Client(base_url=observed.url, timeout=10) as api:
            ids = [api.post("/ads", json=ad(f"Wait p95 {i}", priority=2)).json()["id"] for i in range(3)]
            for ad_id in ids:
                assert wait_terminal(api, ad_id)["status"] == "completed"

            def level(n: int) -> dict[str, Any]:
                return api.get("/v1/stats").json()["queue"]["levels"][n - 1]

            wait_for(lambda: level(2)["waitP95Ms"] is not None, timeout=15, what="P2's wait p95 in /v1/stats")
            shown = level(2)["waitP95Ms"]
            assert shown > 0

        async def scenario() -> None:
            app = DashboardApp(ApiSource(ApiClient(observed.url, timeout=2.0)), refresh=0.5)
            async with app.run_test(size=(120, 40)) as pilot:
                await until(pilot, lambda: app.query_one("#level-2", SparkRow).text.split()[-1] != "-",
                            what="P2's wait p95 in the queue panel")
                assert "P95" in str(app.query_one("#queue .header").render())
                assert app.query_one("#level-2", SparkRow).text.split()[-1].endswith(("ms", "s"))

        asyncio.run(scenario())
    finally:
        worker.stop()
