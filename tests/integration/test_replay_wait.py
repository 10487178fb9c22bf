"""attack27 F3: an ad replayed from the DLQ waits in the queue from its replay, not from its submit hours ago."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from tests.integration.dlq_lane import Lane, lane, made_up_entry  # noqa: F401 - lane is a fixture
from tests.support import wait_for, wait_terminal

HOURS_AGO = 3


def test_a_replayed_ad_submitted_hours_ago_shows_a_queue_wait_of_seconds_not_hours(lane: Lane) -> None:  # noqa: F811
    """A dead ad submitted 3 h ago (made by an import, as `gamead dlq import` would) is replayed and completes at
    once. /v1/stats' queue wait (what `top`'s WAIT P95 shows against the level's MAX WAIT) and the worker's own
    figure count from the replay: seconds. Before, both said ~3 h (startedAt − submittedAt)."""
    entry = made_up_entry("Replayed Long After", priority=2)
    long_ago = (datetime.now(timezone.utc) - timedelta(hours=HOURS_AGO)).isoformat()
    entry.update(submittedAt=long_ago, firstFailureAt=long_ago, lastFailureAt=long_ago, deadAt=long_ago)
    assert lane.run_job("/v1/dlq/import", {"entries": [entry]})["counts"]["imported"] == 1
    lane.worker()
    assert lane.run_job("/v1/dlq/replay", {"ids": [entry["adId"]]})["counts"]["replayed"] == 1
    record = wait_terminal(lane.http, entry["adId"], timeout=30)
    assert record["status"] == "completed" and record["replayedAt"], record

    def waited() -> dict[str, Any] | None:
        wait = lane.http.get("/v1/stats").json()["latency"]["queueWaitMs"]
        return wait if wait["count"] >= 1 else None

    wait = wait_for(waited, timeout=30, what="the replayed ad's queue wait in /v1/stats")
    assert wait["p95"] is not None and wait["p95"] < 60_000, f"queue wait {wait} counts its hours in the DLQ"
    p2 = next(row for row in lane.http.get("/v1/stats").json()["queue"]["levels"] if row["priority"] == 2)
    assert p2["waitP95Ms"] is None or p2["waitP95Ms"] < 60_000, p2

    def worker_figure() -> dict[str, Any] | None:
        nodes = lane.http.get("/v1/workers", params={"role": "worker"}).json()["items"]
        return next((n["queueWaitMs"] for n in nodes if n["queueWaitMs"]["count"] >= 1), None)

    own = wait_for(worker_figure, timeout=30, what="the worker's heartbeat to count the ad")
    assert own["count"] == 1 and own["p95"] < 60_000, own
