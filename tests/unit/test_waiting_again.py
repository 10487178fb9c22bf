"""attack32b F6: which unacknowledged ads no worker holds count in a level's oldest age (pure, no servers)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from gamead_core.models import AdRecord
from gamead_core.stats.waiting_again import waits_again

T0 = datetime(2027, 1, 15, 8, 0, tzinfo=timezone.utc)
NOW = T0.timestamp() + 100
RULES = {"ack_wait": 30.0, "task_timeout": 60.0}


def _record(status: str, **fields: Any) -> AdRecord:
    ad = {"title": "t", "genre": "RPG", "description": "Fly", "callToAction": "Play", "duration": 15}
    return AdRecord.model_validate({"id": "01x", "status": status, "priority": 5, "ad": ad,
                                    "submittedAt": "2027-01-15T08:00:00Z", **fields})


def test_a_handed_back_or_due_ad_waits_a_retry_in_its_back_off_a_running_or_final_one_does_not() -> None:
    assert waits_again(_record("queued"), NOW, **RULES)  # handed back: queued, no retryAt
    assert waits_again(_record("queued", retryAt="2027-01-15T08:01:00Z"), NOW, **RULES)  # its back-off passed
    assert not waits_again(_record("queued", retryAt="2027-01-15T08:05:00Z"), NOW, **RULES)  # still backing off
    assert not waits_again(_record("processing", startedAt="2027-01-15T08:00:30Z"), NOW, **RULES)  # lease alive
    assert waits_again(_record("processing", startedAt="2027-01-15T07:58:00Z"), NOW, **RULES)  # lease lost
    assert not waits_again(None, NOW, **RULES)  # unreadable
