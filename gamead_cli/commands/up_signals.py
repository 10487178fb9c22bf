"""``gamead up``'s stop signals (SIGINT, SIGTERM, SIGHUP): a flag while the stack starts (a stop must not tear
a start apart), and the handlers installed for them. SIGHUP is left ignored when ``gamead up`` starts with it
ignored (``nohup gamead up &``): the operator asked for the stack to outlive the terminal."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

from gamead_cli import first_signals
from gamead_cli.interrupt_point import whole

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: the signals that stop this run: :data:`_STOP_SIGNALS`, less SIGHUP under nohup (:func:`choose_stop_signals`)
_stop_signals: list[int] = list(_STOP_SIGNALS)


class StopRequested(Exception):
    """A stop signal arrived while the stack was starting."""


#: set by SIGINT / SIGTERM / SIGHUP. Signals set a flag, never raise: a stop must not tear a start apart.
stop_requested = threading.Event()


def request_stop(signum: int, frame: object) -> None:
    """Ask the stop; the first signal is the stop acted on (:func:`first_signals.take`, for :func:`after_stop`)."""
    first_signals.take(signum)
    stop_requested.set()


def hang_up() -> None:
    """Ask the stop a SIGHUP asks, from any thread, whether SIGHUP is taken or came ignored (a wrapper ignoring it:
    :mod:`.up_terminal`, the terminal gone): noted as the first stop, one no signal asked, said as SIGHUP
    (:func:`first_signals.take`; a SIGHUP after it is another signal, ignored), then handed to the handler the stop
    signals have now (SIGTERM's is always one of them) as a SIGHUP: it never hurries a stop."""
    first_signals.take(signal.SIGHUP, signalled=False)
    handler = signal.getsignal(signal.SIGTERM)
    if callable(handler):
        handler(signal.SIGHUP, None)


def hurries(signum: int) -> bool:
    """Whether stop signal ``signum``, coming once ``gamead up``'s stop has begun, hurries it (its workers hand
    their ads back at once; README "Stopping": a second one hurries): SIGINT and SIGTERM do, SIGHUP never (a
    closed terminal's comes beside a supervisor's SIGTERM: ``timeout`` around ``script``, systemd's stop after the
    SSH session closed)."""
    return signum != signal.SIGHUP


def hurry_words(hurrying: int) -> str:
    """How the stop's line says to hurry it, from ``hurrying``: the stop signals taken so far that :func:`hurries`
    (the next one hurries once one did). A stop begun by a Ctrl-C or SIGTERM: ``again to hurry``; begun by a SIGHUP
    (which never counts as the first: README "Stopping") or a refusal: ``Ctrl-C or SIGTERM twice to hurry``
    (words56b F3: it said "again to hurry" after a SIGHUP, and one Ctrl-C then did not hurry)."""
    return "again to hurry" if hurrying else "Ctrl-C or SIGTERM twice to hurry"


def hurry_handler(hurry: Callable[[], None]) -> Callable[[int, Any], None]:
    """The handler of :func:`stop_signals` once the stop has begun outside the supervisor's loop (a stop asked
    while the stack started, a refusal): ``hurry`` for a signal that :func:`hurries`, nothing for SIGHUP."""

    def handler(signum: int, _frame: Any) -> None:
        first_signals.take(signum)  # the first stop, if none was acted on yet (a refusal stopped the stack)
        if hurries(signum):
            hurry()

    return handler


def check_stop() -> None:
    if stop_requested.is_set():
        raise StopRequested


def stop_signals_for(hangup: Any) -> tuple[int, ...]:
    """The signals that stop ``gamead up``, given SIGHUP's disposition as it started (``signal.getsignal``):
    all of :data:`_STOP_SIGNALS`, less SIGHUP if that was ``SIG_IGN``, as ``nohup`` (POSIX) leaves it. SIGINT is
    taken whatever its disposition: a shell ignores it for a background job on its own, not at the user's ask."""
    return tuple(s for s in _STOP_SIGNALS if not (s == signal.SIGHUP and hangup == signal.SIG_IGN))


def choose_stop_signals() -> bool:
    """Read SIGHUP's disposition now (call it before installing any handler) and keep the stop signals it
    gives (:func:`stop_signals_for`) for :func:`install_stop_handlers` and the supervisor. True if SIGHUP stays
    ignored."""
    _stop_signals[:] = stop_signals_for(signal.getsignal(signal.SIGHUP))
    return signal.SIGHUP not in _stop_signals


def stop_signals() -> tuple[int, ...]:
    """The signals that stop this run (:func:`choose_stop_signals`)."""
    return tuple(_stop_signals)


def after_stop() -> None:
    """The stack has stopped: the signal that stopped it again ends the process by its default action, another is
    ignored (:func:`first_signals.after_stop`: a closed terminal's SIGHUP after the SIGTERM turned exit 0 into
    129, attack56b F2); with no signal's stop (a refusal) each of :func:`stop_signals` takes its default action,
    Ctrl-C as in every command (:func:`first_signals.ctrl_c`)."""
    if not first_signals.after_stop(stop_signals()):
        install_stop_handlers(signal.SIG_DFL)
        signal.signal(signal.SIGINT, first_signals.ctrl_c)


@whole  # never cut half-way: a stop landing here is raised once every handler is set
def install_stop_handlers(handler: Callable[[int, Any], None]) -> None:
    """``handler`` for each of :func:`stop_signals`: from the first call on, ``gamead up`` has its own (before, the
    start-up's of :mod:`gamead_cli.first_signals`, which it replaces)."""
    first_signals.handed_over()
    for sig in _stop_signals:
        signal.signal(sig, handler)
