"""The dashboard's DLQ line says when the DLQ is full (``/v1/stats`` ``dlq.full``; attack31a F5)."""

from __future__ import annotations

from gamead_cli.tui.view_tables import dlq_summary


def test_a_full_dlq_is_said_on_the_dlq_line_with_its_limit() -> None:
    full = dlq_summary({"dlq": {"size": 3, "bytes": 900, "maxMsgs": 3, "full": True}}, None, None).plain
    assert "3 entries" in full and "FULL (dlq.max_msgs 3): failing ads wait queued" in full, full
    room = dlq_summary({"dlq": {"size": 2, "bytes": 600, "maxMsgs": 3, "full": False}}, None, None).plain
    assert "FULL" not in room, room
