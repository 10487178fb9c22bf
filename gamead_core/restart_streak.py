"""How ``gamead up`` counts a child's deaths in a row for its restart back-off (pure; :mod:`gamead_core.supervisor`)."""

from __future__ import annotations

#: A child that ran this long before dying is considered healthy again: its failure streak resets.
HEALTHY_AFTER = 30.0


def streak_after_exit(failures: int, ran: float, code: int) -> tuple[int, int]:
    """A child that died ``failures`` times in a row has exited with ``code`` after running ``ran`` s: its streak now
    and the streak its restart's delay is reckoned from (:func:`~gamead_core.supervisor.restart_delay`). The streak
    restarts from 0 after :data:`HEALTHY_AFTER` s of life; an exit 0 (a stop asked from outside: an operator's
    SIGTERM) does not grow it and restarts at the base delay; any other exit grows it by one. Before (chaos47
    F4) an exit 0 counted as a death in a row: workers SIGTERMed every 4 s waited 16 s, then 30 s, to come back, and
    none ran meanwhile."""
    streak = 0 if ran >= HEALTHY_AFTER else failures
    if code == 0:
        return streak, 1
    return streak + 1, streak + 1


__all__ = ["HEALTHY_AFTER", "streak_after_exit"]
