"""How ``gamead up`` reads a child's exit: the words its console says, the deaths in a row its restart back-off
counts, at the exit and once a worker's recovery has read its death, and how often a refused child is said (pure;
:mod:`gamead_core.supervisor`)."""

from __future__ import annotations

import signal
from collections.abc import Mapping

from gamead_core.count_words import counted

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
    and the streak its restart's delay is reckoned from (:func:`~gamead_core.supervisor.restart_delay`). The
    streak restarts from 0 after :data:`HEALTHY_AFTER` s of life; a stop asked from outside
    (:func:`stopped_from_outside`: exit 0, or an end by an operator's SIGTERM) does not grow it and restarts at
    the base delay; any other exit grows it by one. Before (chaos47 F4) an exit 0 counted as a death in a row:
    workers SIGTERMed every 4 s waited 16 s, then 30 s, to come back, and none ran meanwhile."""
    streak = 0 if ran >= HEALTHY_AFTER else failures
    if stopped_from_outside(code):
        return streak, 1
    return streak + 1, streak + 1


def restart_words(delay: float, verb: str = "restarting") -> str:
    """The console's words for a restart ``delay`` s away: ``restarting at once`` (a first death in a row, or a
    restart already due), else ``restarting in 1.0s``; ``verb`` instead of ``restarting`` (``retrying``). Pure."""
    return f"{verb} at once" if delay < 0.05 else f"{verb} in {delay:.1f}s"


def forgiven_words(completed: int) -> str:
    """Why a death did not lengthen the back-off (:func:`streak_after_recovery`): ``it completed 12 ads`` (progress
    since its start), else the lone-run charge. Pure."""
    return f"it completed {counted(completed, 'ad')}" if completed else "its crash was the one ad it ran, charged"


def streak_after_recovery(before: int, completed: int, lone_charged: bool) -> int | None:
    """A worker's death has been recovered (its held ads handed back, :func:`gamead_core.worker.reaper.recover`):
    the streak it leaves, ``before`` being the deaths in a row before it; None: it counts as a death in a row, its
    back-off doubles. Not a crash loop, so no lengthening and a restart at the base delay (chaos48 F4: 4 poison ads
    in 9,000 kept both workers of a ``gamead up`` in the 30 s back-off for minutes, 1,886 ads still queued):

    * it had ``completed`` ads since its start (its last heartbeat's ``processed``): it works; the streak restarts
      from 0, as after :data:`HEALTHY_AFTER` s of life;
    * its recovery charged the one ad it was running (``lone_charged``, the lone-run rule): the crash is that ad's,
      which dies after its ``max_attempts`` crashes; the streak is left at ``before``.

    A worker that dies before completing anything with no such charge (a broken configuration, every ad crashing
    while not yet alone) keeps the doubling back-off."""
    if completed > 0:
        return 0
    return before if lone_charged else None


#: A child refused again and again is said on the console at its first two refusals, then every this many
REFUSALS_SAID_EVERY = 10


def refusal_said(refusals: int) -> bool:
    """Is a child's ``refusals``-th refusal in a row said on the console (pure)? The first two (the second says it
    will be retried for as long as it is refused), then every :data:`REFUSALS_SAID_EVERY`-th: about every 5 min
    at the 30 s back-off cap, so a stack that lost a child for good says so without flooding its console."""
    return refusals <= 2 or refusals % REFUSALS_SAID_EVERY == 0


def restart_said(refusals: int) -> bool:
    """Is the restart that follows a child's ``refusals``-th refusal in a row said on the console (pure; 0: its exit
    was no refusal, said)? After its first only: the refusal lines say the count and "retrying in …"; a
    ``restarted (pid …)`` line at every retry flooded the console between them (attack28c F3)."""
    return refusals <= 1


__all__ = ["HEALTHY_AFTER", "REFUSALS_SAID_EVERY", "STOP_SIGNALS", "exit_words", "forgiven_words", "refusal_said",
           "restart_said", "restart_words", "stopped_from_outside", "streak_after_exit", "streak_after_recovery"]
