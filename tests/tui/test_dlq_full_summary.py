"""The dashboard's DLQ line says when the DLQ is full (``/v1/stats`` ``dlq.full``; attack31a F5) and how old a page the
API kept is (``ageSeconds``; regress38 F2)."""

from __future__ import annotations

from gamead_cli.tui.view_tables import dlq_summary


def test_a_full_dlq_is_said_on_the_dlq_line_with_its_limit() -> None:
    full = dlq_summary({"dlq": {"size": 3, "bytes": 900, "maxMsgs": 3, "full": True}}, None, None).plain
    assert "3 entries" in full and "FULL (dlq.max_msgs 3): failing ads wait queued" in full, full
    room = dlq_summary({"dlq": {"size": 2, "bytes": 600, "maxMsgs": 3, "full": False}}, None, None).plain
    assert "FULL" not in room, room


def test_the_once_snapshots_dlq_line_says_how_old_a_page_the_api_kept_is() -> None:
    """regress38 F2: ``gamead top --once`` (text) printed ``· latest 30: RetryableError ×30`` whatever the age of the
    page the API gave (a watcher's kept answer: ``ageSeconds``); now it says ``as of …`` as the live pane's title."""
    page = {"items": [{"errorClass": "RetryableError"}], "inDlq": 1}
    kept = dlq_summary({"dlq": {"size": 1}}, {**page, "ageSeconds": 12}, None).plain
    fresh = dlq_summary({"dlq": {"size": 1}}, {**page, "ageSeconds": 0.0}, None).plain
    print(kept, fresh, sep="\n")
    assert "latest 1 · as of 12s ago: RetryableError ×1" in kept  # before: "latest 1: RetryableError ×1"
    assert "latest 1: RetryableError ×1" in fresh
