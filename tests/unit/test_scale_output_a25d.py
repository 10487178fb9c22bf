"""attack25d #12: ``gamead scale status`` said ``oldest 0.0 s`` (JSON ``observed.oldestAgeSeconds: 0.0``) for an empty
queue, where ``top`` and ``/v1/stats`` say ``-``/null (0.0 read as "an ad arrived just now"); ``gamead audit`` said
``replicas 3 for 60s`` for an override clamped to 2. Now null/``-``, and the record names the count that held."""

from __future__ import annotations

from rich.console import Console

from gamead_cli.commands.scale import status_view
from gamead_cli.tui.view_audit import audit_selection
from gamead_core.queue.depth import LevelDepth
from gamead_core.scaling.status import observed_document
from gamead_core.stats.reading import QueueReading
from gamead_core.stats.sampler import Sample


def _observed(*levels: LevelDepth) -> dict:
    return observed_document(Sample(QueueReading(t=100.0, connected=True, levels=levels)), {})


def test_an_empty_queue_has_no_oldest_ad_in_json_or_table() -> None:
    idle = _observed(LevelDepth(1, 0), LevelDepth(3, 0))
    assert idle["oldestAgeSeconds"] is None
    assert _observed(LevelDepth(1, 0), LevelDepth(3, 2, oldest_age=12.34))["oldestAgeSeconds"] == 12.34
    console = Console(width=160, record=True)
    console.print(status_view({"backend": "local", "current": 1, "desired": 1, "observed": idle, "decisions": []}))
    row = next(line for line in console.export_text().splitlines() if line.startswith("observed"))
    assert "oldest -," in row and "0.0 s" not in row


def test_the_audit_line_of_a_clamped_override_names_the_count_that_held_and_the_bound() -> None:
    clamped = {"action": "scale.set", "details": {"replicas": 3, "forSeconds": 60.0, "effectiveReplicas": 2,
                                                  "minReplicas": 1, "maxReplicas": 2}}
    assert audit_selection(clamped) == "replicas 3 for 1m00s, clamped to 2 (max_replicas 2)"
    kept = {"action": "scale.set", "details": {"replicas": 2, "forSeconds": 60.0, "effectiveReplicas": 2}}
    assert audit_selection(kept) == "replicas 2 for 1m00s"
    older = {"action": "scale.set", "details": {"replicas": 2, "forSeconds": 60.0}}  # a record written before
    assert audit_selection(older) == "replicas 2 for 1m00s"


def test_an_override_says_its_time_as_every_duration_is_printed() -> None:
    """newcomer45: ``gamead scale set 8 --for 30m`` then ``scale status`` said ``(1793s left)`` and ``gamead audit``
    ``replicas 8 for 1800s``, where every other duration gamead prints reads ``29m53s`` (``format_duration``)."""
    console = Console(width=160, record=True)
    override = {"replicas": 8, "until": "2026-12-05T18:01:40Z", "remainingSeconds": 1793.4}
    console.print(status_view({"backend": "local", "current": 4, "desired": 4, "decisions": [], "override": override}))
    row = next(line for line in console.export_text().splitlines() if line.startswith("override"))
    assert "(29m53s left)" in row and "1793" not in row, row
    record = {"action": "scale.set", "details": {"replicas": 8, "forSeconds": 1800.0, "effectiveReplicas": 4,
                                                  "minReplicas": 2, "maxReplicas": 4}}
    assert audit_selection(record) == "replicas 8 for 30m00s, clamped to 4 (max_replicas 4)"
