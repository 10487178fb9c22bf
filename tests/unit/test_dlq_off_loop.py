"""The rule that sends a DLQ ``message`` search off the event loop (attack38b F2): pure, no servers."""

from __future__ import annotations

from gamead_core.ad_ids import new_ad_id
from gamead_core.models import DlqEntry
from gamead_core.queue.dlq_filter import DlqFilter
from tests.support import ad

COSTLY = ".{1,500}ZZ"  #: 4,505 RE2 instructions
NOW = "2026-12-04T22:00:00+00:00"


def made_up_entry(message: str) -> DlqEntry:
    return DlqEntry.model_validate({
        "adId": new_ad_id(), "title": "x", "priority": 3, "attempts": 1, "errorClass": "PermanentError",
        "errorMessage": message, "retryable": False, "firstFailureAt": NOW, "lastFailureAt": NOW, "deadAt": NOW,
        "submittedAt": NOW, "ad": ad("x")})


def test_only_a_search_that_may_be_long_leaves_the_loop() -> None:
    """The rule: the pattern's program size × the message's length over 500,000 steps (≤ ~15 ms at the drill's
    worst rate) runs in a thread; a short message or a small pattern is searched in place (no thread hop)."""
    long, short = made_up_entry("a" * 4000), made_up_entry("a" * 100)
    assert DlqFilter(message=COSTLY).off_loop(long)
    assert not DlqFilter(message=COSTLY).off_loop(short)
    assert not DlqFilter(message="timeout").off_loop(long)
    assert not DlqFilter(error_class="PermanentError").off_loop(long)
