"""attack25d #5: a line of the autoscaler's decision log folded a busy stretch and the idle one after it into one
row (``hold 2 · "backlog 214 …"`` over minutes of an empty queue), and paired its first tick's ``at`` with its last
tick's ``reason``. Now a line folds only ticks of one decision *and* one kind of reason, and says both ends:
``at`` + ``firstReason``, ``lastAt`` + ``reason``; ``gamead scale status`` labels the reason it shows with its time."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from rich.console import Console

from gamead_cli.commands.scale import status_view
from gamead_core.config.autoscaler import AutoscalerSettings
from gamead_core.queue.depth import LevelDepth
from gamead_core.scaling.observe import decision_entry
from gamead_core.scaling.policy import Observation, ScalingPolicy
from gamead_core.scaling.reason import reason_kind
from gamead_core.scaling.store import iso, record_decision

T0 = datetime(2026, 12, 3, 0, 32, 49, tzinfo=UTC).timestamp()


def _run(backlogs: list[int]) -> list[dict[str, Any]]:
    """One tick every 5 s at max replicas (2), the backlog of each tick given; the leader's decision log."""
    policy = ScalingPolicy(AutoscalerSettings(min_replicas=1, max_replicas=2, target_drain_seconds=30))
    log: list[dict[str, Any]] = []
    for i, backlog in enumerate(backlogs):
        levels = [LevelDepth(3, backlog, oldest_age=1.0)] if backlog else []
        obs = Observation(at=i * 5.0, levels=levels, ack_pending=0, arrival_rate=3.0 if backlog else 0.0,
                          completion_rate=0.0, per_worker_rate=4.0, current_replicas=2)
        d = policy.decide(obs)
        log = record_decision(log, decision_entry(T0 + i * 5.0, 2, d.desired, d.reason, True, None, False, "n1"))
    return log


def test_a_busy_stretch_and_the_idle_one_after_it_are_two_lines_each_honest_at_both_ends() -> None:
    log = _run([132, 214, 91, 0, 0, 0])
    assert [(d["repeats"], reason_kind(d["reason"])) for d in log] == [(3, "idle"), (3, "demand")]
    idle, busy = log
    assert busy["at"] == iso(T0) and busy["firstReason"].startswith("backlog 132 ads,")
    assert busy["lastAt"] == iso(T0 + 10) and busy["reason"].startswith("backlog 91 ads,")
    assert idle["at"] == iso(T0 + 15) and idle["reason"].startswith("no backlog")
    doc = {"backend": "local", "current": 2, "desired": 2, "minReplicas": 1, "maxReplicas": 2, "decisions": log}
    console = Console(width=200, record=True)
    console.print(status_view(doc))
    text = console.export_text()
    busy_row = next(line for line in text.splitlines() if line.startswith("00:32:49–00:32:59"))
    assert "latest 00:32:59: backlog 91 ads," in busy_row  # the reason shown is the one of its time
    assert "first 00:32:49: backlog 132 ads," in text
    idle_row = next(line for line in text.splitlines() if line.startswith("00:33:04–00:33:14"))
    assert not re.search(r"backlog \d", idle_row) and "latest 00:33:14: no backlog" in idle_row


def test_reason_kinds_of_the_policy_lines() -> None:
    assert reason_kind("metrics 31.0s old (> 30s) → hold 2 workers") == "stale"
    assert reason_kind("backlog 5 ads but no per-worker rate measured yet → hold 1 worker") == "no rate"
    assert reason_kind("backlog 5 ads at 0 replicas: activation → scale 0→1 worker") == "activation"
    assert reason_kind("manual override to 3 workers until 2026-12-03T00:00:00Z → hold 2 workers (override 3 "
                       "clamped to 2 (max_replicas))") == "override"
    assert reason_kind("cannot observe the queue") == "cannot observe the queue"
