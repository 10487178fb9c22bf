"""How ``gamead up`` reads a child's exit: the words its console says, and the deaths in a row its restart back-off
counts (pure; :mod:`gamead_core.supervisor`)."""

from __future__ import annotations

import signal
from collections.abc import Mapping

#: A child that ran this long before dying is considered healthy again: its failure streak resets.
HEALTHY_AFTER = 30.0


#: Signals sent to stop a process (an operator's kill, Ctrl-C, a closed terminal, a service manager): an end by one of
#: them is a stop asked from outside, as an exit 0 is; SIGKILL is not (the OOM killer sends it too).
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})


def stopped_from_outside(code: int) -> bool:
    """Whether a child's exit status ``code`` (``Popen.returncode``: negative for a signal) is a stop asked from
    outside: exit 0 (it drained on a SIGTERM) or an end by one of :data:`STOP_SIGNALS`."""
    return code == 0 or (code < 0 and -code in STOP_SIGNALS)


def exit_words(code: int, meanings: Mapping[int, str]) -> str:
    """The console's words for a child's exit status ``code``; ``meanings`` names gamead's own exit codes (70: the
    injected crash fault). attack47: an operator's SIGTERM to the API read "died with signal 15"."""
    if code == 0:
        return "exited cleanly (exit code 0: stopped from outside, e.g. a SIGTERM)"
    if code > 0:
        return f"died with exit code {code}" + (f" ({meanings[code]})" if code in meanings else "")
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"died with signal {-code}"
    if stopped_from_outside(code):
        return f"was stopped by {name} (signal {-code}, sent from outside)"
    return f"died with signal {-code} ({name})"


def streak_after_exit(failures: int, ran: float, code: int) -> tuple[int, int]:
    """A child that died ``failures`` times in a row has exited with ``code`` after running ``ran`` s: its streak now
    and the streak its restart's delay is reckoned from (:func:`~gamead_core.supervisor.restart_delay`). The streak
    restarts from 0 after :data:`HEALTHY_AFTER` s of life; a stop asked from outside (:func:`stopped_from_outside`:
    exit 0, or an end by an operator's SIGTERM) does not grow it and restarts at the base delay; any other exit grows it by one. Before (chaos47
    F4) an exit 0 counted as a death in a row: workers SIGTERMed every 4 s waited 16 s, then 30 s, to come back, and
    none ran meanwhile."""
    streak = 0 if ran >= HEALTHY_AFTER else failures
    if stopped_from_outside(code):
        return streak, 1
    return streak + 1, streak + 1


__all__ = ["HEALTHY_AFTER", "STOP_SIGNALS", "exit_words", "stopped_from_outside", "streak_after_exit"]
