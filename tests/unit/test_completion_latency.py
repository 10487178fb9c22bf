"""attack45 F7: `gamead submit --count 5 --title "Doom Many" --wait` with every attempt failing for good printed
`completed 0 · failed/dead 5` and `latency p50 8ms · p95 9ms (submit → completed)`: a dead ad's completedAt (when it
was dead-lettered) was taken as its completion."""

from __future__ import annotations

from gamead_cli.submit.waiting import completion_latency

TIMES = {"submittedAt": "2026-12-05T18:02:23.100000Z", "completedAt": "2026-12-05T18:02:23.108000Z"}


def test_only_a_completed_ad_has_a_submit_to_completion_latency() -> None:
    assert completion_latency({"status": "completed", **TIMES}) == 0.008
    assert completion_latency({"status": "dead", **TIMES}) is None  # was: 0.008
    assert completion_latency({"status": "failed", **TIMES}) is None
    assert completion_latency({"status": "completed", "submittedAt": TIMES["submittedAt"]}) is None
