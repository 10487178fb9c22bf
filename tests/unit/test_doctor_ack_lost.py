"""When a completed or dead ad's message is a lost ack (a note until ack_wait) and when it is not (chaos48 F3)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gamead_core.doctor.ack_lost import MARGIN, Floor, note_text, redelivered_by, young
from gamead_core.doctor.checks import Facts, WorkMsg
from gamead_core.doctor.model import ACK_LOST_MARGIN, NOTES
from gamead_core.models import AdStatus

DONE = datetime(2026, 12, 6, 1, 12, 50, tzinfo=timezone.utc)


def _facts(status: AdStatus = AdStatus.COMPLETED, delivery: str | None = "226.1",
           completed_at: datetime | None = DONE) -> Facts:
    return Facts("a1", status, 3, 1, DONE - timedelta(seconds=5), DONE - timedelta(seconds=1), None, None, 7,
                 completed_at, delivery)


FLOOR = Floor(ack_floor=200, delivered=230, ack_wait=30.0)
MSG = [WorkMsg(226, 3, "a1", 0.0)]


def test_a_completed_ads_own_delivery_still_ack_pending_is_redelivered_by_completion_plus_ack_wait() -> None:
    by = redelivered_by(_facts(), MSG, FLOOR)
    assert by == DONE.timestamp() + 30.0
    assert young(by, by + MARGIN) and not young(by, by + MARGIN + 0.1)
    assert note_text(by, by).startswith("ack lost: JetStream redelivers it by 01:13:20 UTC and a worker")


def test_a_dead_ads_own_delivery_still_ack_pending_is_the_same_rule_from_when_it_became_dead() -> None:
    """Dead-lettered under the delivery (``completedAt``: when it became dead): redelivered by then + ack_wait, a
    note until the margin (the one constant, also in the note's text) has passed too."""
    by = redelivered_by(_facts(AdStatus.DEAD), MSG, FLOOR)
    assert by == DONE.timestamp() + 30.0 and MARGIN == ACK_LOST_MARGIN
    assert young(by, by + MARGIN) and not young(by, by + MARGIN + 0.1)
    assert f"Past ack_wait (+{ACK_LOST_MARGIN:g} s) it is the error completed_with_message or dead_with_message" \
        in NOTES["ack_lost"]


@pytest.mark.parametrize(("facts", "messages", "floor"), [
    (_facts(delivery="225.1"), MSG, FLOOR),  # completed under another message: not this one's ack
    (_facts(delivery=None), MSG, FLOOR),
    (_facts(completed_at=None), MSG, FLOOR),
    (_facts(AdStatus.FAILED), MSG, FLOOR),  # purged: no worker ended it under that delivery
    (_facts(AdStatus.PROCESSING), MSG, FLOOR),
    (_facts(), MSG + [WorkMsg(240, 3, "a1", 0.0)], FLOOR),  # a second message besides
    (_facts(), MSG, Floor(ack_floor=226, delivered=230, ack_wait=30.0)),  # at the ack floor: stranded, not pending
    (_facts(), MSG, Floor(ack_floor=200, delivered=225, ack_wait=30.0)),  # not delivered (the consumer says)
    (_facts(), MSG, None),  # the consumer could not be read
    (None, MSG, FLOOR),
])
def test_anything_else_stays_the_finding(facts: Facts | None, messages: list[WorkMsg], floor: Floor | None) -> None:
    assert redelivered_by(facts, messages, floor) is None
