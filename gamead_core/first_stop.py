"""The one record of a process's first stop (SIGINT, SIGTERM, SIGHUP, or a stop no signal asked), shared by every
handler that acts on one: the CLI's (:mod:`gamead_cli.first_signals` takes it from here, names and all) and
``gamead serve``'s server (:meth:`gamead_core.api.acceptor.AcceptingServer.capture_signals`), which cannot import
the CLI (tests/unit/test_import_graph.py). The first stop is the one the process says and exits by; while it is
acted on, another signal is ignored and the same one again takes its default action (session 55's CI: a
SIGTERM, then the closed terminal's SIGHUP, exited 129; leftovers56: ``gamead serve`` Ctrl-C'd, then SIGTERM'd
while the interrupt unwound, ended by SIGTERM, -15, not 130). Only the standard library is imported here."""

from __future__ import annotations

import signal
from types import FrameType

#: the signal that stopped the command (None: Ctrl-C, or not stopped); :mod:`gamead_cli.stops` shares this dict
STOPPED: dict[str, int | None] = {"signal": None}
#: the command as far as it is known, whether it is still starting (both the CLI's:
#: :func:`gamead_cli.first_signals.command`, :func:`~gamead_cli.first_signals.handed_over`), and the stop being
#: acted on (``acting``: a signal's number, :data:`ASKED_INSIDE`, None: none yet), and whether the command has
#: ended (``ended``: :func:`ended_acts`)
PHASE: dict[str, object] = {"command": None, "starting": False, "acting": None, "ended": False}
#: ``PHASE["acting"]`` of a stop that no signal asked (:func:`take`)
ASKED_INSIDE = 0


def none_yet(*, command: object = ..., starting: object = ...) -> None:
    """No stop yet: a command (or a block that acts on its own first stop) begins. :data:`STOPPED` and
    :data:`PHASE`'s ``acting`` forgotten; ``command`` (a name or None) and ``starting`` (bool) set in :data:`PHASE`
    when given, else kept. The one place the record is reset (before, four copies of these two lines)."""
    STOPPED["signal"] = None
    PHASE.update({k: v for k, v in (("command", command), ("starting", starting)) if v is not ...}, acting=None,
                 ended=False)


def take(signum: int, *, signalled: bool = True) -> str:
    """Note stop signal ``signum`` (SIGINT, SIGTERM, SIGHUP) in the one record of the stop being acted on
    (:data:`PHASE`, ``acting``), shared by every handler of the process: ``"first"`` when none was (it is remembered
    for the command's line and exit code, :data:`STOPPED`; none for Ctrl-C), ``"again"`` when it is that one again,
    ``"other"`` when another one is (the caller ignores it: the first cause of a stop is the one the command
    says and exits by). ``signalled`` False: a stop no signal asked, said as ``signum`` (``gamead top``'s Ctrl-C
    key, its terminal gone: as SIGHUP); every signal after it is another one. Safe in a signal handler: no lock,
    no I/O."""
    acting = PHASE["acting"]
    if acting is None:
        PHASE["acting"] = int(signum) if signalled else ASKED_INSIDE
        STOPPED["signal"] = None if signum == signal.SIGINT else int(signum)
        return "first"
    return "again" if acting == signum else "other"


def after_stop(signals: tuple[int, ...]) -> bool:
    """The stop acted on is over, the command's exit code known (its line written; ``gamead up``'s stack stopped;
    ``gamead serve`` about to end by its first signal): of ``signals``, the one that stopped it (:data:`PHASE`
    ``acting``) again takes its default action (ends the process by it, as the same one again always did), another
    is ignored, by the kernel: no handler of this process runs for it. A closed terminal's SIGHUP after a
    supervisor's SIGTERM ended a stopped ``gamead up`` (exit 0) or a ``submit`` (143) by SIGHUP, 129, the first
    stop's code lost (attack56b F2); ``gamead serve``'s SIGINT between its handlers' reset and its first signal's
    raise ended it by Python's KeyboardInterrupt (fix56c). Returns False, changing nothing, when no signal's stop
    was acted on. From the main thread only. The one rule: :mod:`gamead_cli.first_signals` shares it."""
    acting = PHASE["acting"]
    if not acting:  # none, or a stop no signal asked (ASKED_INSIDE)
        return False
    for sig in signals:
        signal.signal(sig, signal.SIG_DFL if sig == acting else signal.SIG_IGN)
    return True


def after_the_first(signum: int, _frame: FrameType | None) -> None:
    """SIGTERM's or SIGHUP's handler once the process has stopped acting on signals itself (``gamead serve`` has
    stopped serving) but has not ended yet: the stop being acted on again, or the first of all, takes its default
    action (the process ends by it); another one is ignored (:func:`take`), e.g. a SIGTERM while a Ctrl-C's
    interrupt unwinds (before: the process ended by the SIGTERM, not with the Ctrl-C's 130)."""
    if take(signum) != "other":
        end_by(signum)


def ended_acts(signum: int) -> bool:
    """Whether the command has ended (:data:`PHASE` ``ended``, set first thing by :func:`gamead_cli.stops.ended`,
    reset by :func:`none_yet`); if so, stop signal ``signum``, in a handler that would raise a first stop, has
    been acted on as :func:`after_stop` and the default actions after it have it: the stop acted on again, or any
    signal when none was (or one no signal asked), ends the process by its default action (the shell says 143, 129,
    130); another is ignored. False, doing nothing, before the end. endstop57: a SIGTERM between two of ``ended``'s
    handler changes after a normal end met the CLI's handler, which raised a KeyboardInterrupt: a traceback."""
    if not PHASE["ended"]:
        return False
    if PHASE["acting"] in (None, ASKED_INSIDE, signum):
        end_by(signum)
    return True


def end_by(signum: int) -> None:
    """End the process by ``signum``'s default action (the shell says 128 + its number), from its handler: the
    default set again, then the signal raised. The one place the stop rules above (and the CLI's handlers) do it."""
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)
