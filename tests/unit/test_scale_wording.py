"""regress44 F5: `gamead scale status` said `reason  manual override to 8 until 2026-12-05T16:04:55.442Z → hold 4`
(the up console too) where `gamead scale set` said `until 16:04:55 UTC`; and `workers 2 → 2 (min 2, max 4)` did
not say which figure is current and which desired. Now one way of saying a time (`16:04:55 UTC`, with its date
when not today's: an override lasts up to 7 days) and `current 2 → desired 2`.

Without the fix: the reason held `2026-12-05T16:04:55.442Z` (and `override_reason` took no `now`), the workers
row read `2 → 2`."""

from __future__ import annotations

from calendar import timegm

from rich.console import Console

from gamead_cli.commands.scale import status_view
from gamead_core.scaling.store import Override, override_reason

NOW = timegm((2026, 12, 5, 16, 0, 0)) + 0.25  #: 2026-12-05 16:00:00.250 UTC


def test_an_overrides_end_is_said_as_the_verb_says_it() -> None:
    until = Override(replicas=8, until=NOW + 295.192, set_at=NOW)  # 16:04:55.442
    desired, reason = override_reason(until, 4, 2, 4, now=NOW)
    assert desired == 4
    assert reason == ("manual override to 8 workers until 16:04:55 UTC → hold 4 workers (override 8 clamped to 4 "
                      "(max_replicas))")
    later = Override(replicas=3, until=NOW + 2 * 86400, set_at=NOW)  # not today: its date too
    assert override_reason(later, 2, 2, 4, now=NOW)[1] == ("manual override to 3 workers until 2026-12-07 16:00:00 "
                                                           "UTC → scale 2→3 workers")


def test_the_workers_row_says_which_figure_is_current_and_which_desired() -> None:
    console = Console(width=200, record=True, color_system=None)
    console.print(status_view({"backend": "local", "current": 2, "desired": 3, "minReplicas": 2, "maxReplicas": 4}))
    row = next(line for line in console.export_text().splitlines() if line.startswith("workers"))
    assert " ".join(row.split()) == "workers current 2 → desired 3 (min 2, max 4)", row


def test_the_leader_row_says_when_the_leader_is_not_the_node_that_answered() -> None:
    """regress45: ``scale status`` against a follower (``gamead serve`` beside a ``gamead up``) named the leader
    without saying it was another node; its JSON said so (``appliedBy.leaderIsThisNode``). Both ways now."""
    def leader_row(here: bool | None) -> str:
        console = Console(width=200, record=True, color_system=None)
        console.print(status_view({"backend": "local", "leader": {"id": "up-vm-1", "since": "2026-12-05T18:00:00Z"},
                                   "appliedBy": {"by": "leader", "leaderIsThisNode": here}}))
        return next(line for line in console.export_text().splitlines() if line.startswith("leader"))

    assert "(not the API node that answered)" in leader_row(False)
    assert "answered" not in leader_row(True) and "answered" not in leader_row(None)

