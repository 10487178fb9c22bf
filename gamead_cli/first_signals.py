"""SIGTERM and SIGHUP from a command's first instant (newcomer35 F6): before, ``gamead`` spent its first 1-3 s on a
loaded machine importing typer, then the command's module (FastAPI, nats-py, uvicorn…), then reading its settings,
with no handler of its own: a SIGTERM or SIGHUP then (a ``timeout``, systemd's stop, a closed SSH session, ``gamead
up`` stopping while a child starts) ended ``gamead up``, ``worker``, ``serve`` or ``submit --count`` by the signal
with no line. :func:`install`, the entry point's first call (:mod:`gamead_cli.main`, before any other import of
the project), handles both as Ctrl-C is handled: a :class:`KeyboardInterrupt` in the main thread, which the error
boundary (:mod:`gamead_cli.root`) ends with one red line and exit 128 + the signal's number (143, 129: the README's
table), e.g. ``interrupted (SIGTERM) while gamead up was starting: nothing was started``.

While the command starts (until :func:`command` has named it and, for a command of :data:`NOTHING_YET`, until it
installs its own handlers: :func:`handed_over`) the line says what was not done yet; after, it is ``interrupted
(SIGTERM)``, as for a Ctrl-C. A command that installs its own handlers replaces these (``gamead up`` drains, a
worker hands back, ``serve`` stops serving, ``submit`` prints its summary); :func:`gamead_cli.stops.ended` sets the
default action back once the command has ended.

Left as they were: a signal inherited as ignored (``nohup``: ``gamead up`` still finds SIGHUP ignored and leaves
it so). SIGINT keeps Python's way (a :class:`KeyboardInterrupt`, :func:`ctrl_c`) but is never raised inside a lock's
taking either (session 50: Python's own handler raised it there, outside the blocks of
:func:`gamead_cli.stops.signals_interrupt`: the lock left taken, the unwind waiting on it for ever). A command of
:data:`NOTHING_YET` takes SIGINT even when it came ignored (a background job of a script: ``gamead serve &``;
from :func:`install` on when the command line names one, else once :func:`command` names it), as its own handlers
do once installed (uvicorn's, ``gamead up``'s,
the worker's): before, a ``kill -INT`` in the ~0.5 s between ``gamead serve``'s ``connections: at most …`` line and
uvicorn's handlers was dropped and the API served on (attack39b F17). Before :func:`install` runs (the interpreter's
start, 0.15 s idle, up to 0.9 s with 8 started at once at load 32) an inherited-ignored SIGINT is discarded by the
kernel, out of any process's reach (regress39 F8: a worker INT'd 1 s after its spawn retried NATS on; README).
The same signal a second time while the first is being acted on takes its default action (the process ends by it at
once, as before this module); the other one is ignored then (a closed terminal's SIGHUP and a supervisor's SIGTERM
come together): the one record of the first stop, :func:`take` (:data:`STOPPED`, :data:`PHASE`), is
:mod:`gamead_core.first_stop`'s, which ``gamead serve``'s server shares (leftovers56). Only the standard library,
:mod:`gamead_cli.interrupt_point` and :mod:`gamead_core.first_stop` (both import only it; ``gamead_core``'s
package only puts in its stand-ins for deferred libraries) are imported here.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from gamead_cli.interrupt_point import raise_interrupt
from gamead_core.first_stop import ASKED_INSIDE, PHASE, STOPPED, after_stop, end_by, ended_acts, none_yet, take

__all__ = ["ASKED_INSIDE", "NOTHING_YET", "PHASE", "STOPPED", "after_stop", "command", "ctrl_c", "end_by", "ended_acts",
           "handed_over", "install", "interrupted_words", "none_yet", "take"]

#: the signals this module handles: SIGTERM and SIGHUP, less one inherited as ignored
_TAKEN: list[int] = []
#: what a command stopped before its own handlers exist has not done yet: until then it has started nothing
#: (``up`` no process, ``serve`` no listener serving, ``worker`` took no ad) or sent nothing (``submit``). The
#: other commands make no claim once their body runs (their first request may be out).
NOTHING_YET = {"up": "nothing was started", "serve": "nothing was started", "worker": "nothing was started",
               "submit": "nothing was sent"}


def install(argv: list[str] | None = None) -> None:
    """Handle SIGTERM and SIGHUP as Ctrl-C from now on (module docstring), each unless it is ignored now
    (``nohup``, a launcher that ignores it); and SIGINT, ignored or not, when ``argv`` (default ``sys.argv[1:]``)
    names a command of :data:`NOTHING_YET` (regress39 F6: taken only once the command was parsed, a ``kill -INT``
    during the CLI's imports, 0.5-2 s on a loaded machine, was still dropped). Call it first, in the main thread,
    from the entry point only (never at import: a test runner importing the CLI keeps its own handlers)."""
    none_yet(command=None, starting=True)
    _TAKEN.clear()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) != signal.SIG_IGN:
            signal.signal(sig, _on_signal)
            _TAKEN.append(int(sig))
    words = sys.argv[1:] if argv is None else argv
    sigint = signal.getsignal(signal.SIGINT)
    if sigint is signal.default_int_handler or (sigint == signal.SIG_IGN and NOTHING_YET.keys() & set(words)):
        signal.signal(signal.SIGINT, ctrl_c)


def ctrl_c(_signum: int, frame: FrameType | None) -> None:
    """SIGINT's handler: Python's (``signal.default_int_handler``: a :class:`KeyboardInterrupt` in the main thread),
    never raised inside a lock's taking (:func:`gamead_cli.interrupt_point.raise_interrupt`; module docstring). While
    a SIGTERM or SIGHUP is acted on it is ignored (:func:`take`): a Ctrl-C then cut the unwind of the first. Once the
    command has ended, as :func:`ended_acts` says."""
    if not ended_acts(signal.SIGINT) and take(signal.SIGINT) != "other":
        raise_interrupt(frame)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    """Raise :class:`KeyboardInterrupt` in the main thread (never inside a lock's taking:
    :func:`gamead_cli.interrupt_point.raise_interrupt`), the signal remembered; a repeat of the one being acted
    on takes its default action, another one is ignored meanwhile (:func:`take`, module docstring). Once the command
    has ended, as :func:`ended_acts` says."""
    if ended_acts(signum):
        return
    taken = take(signum)
    if taken == "first":
        raise_interrupt(_frame)
    if taken == "again":
        end_by(signum)


def command(name: str | None) -> None:
    """The command line names command ``name`` (``up``, ``dlq``…; called once it is resolved and imported, before
    its body runs): from now on a command outside :data:`NOTHING_YET` is no longer starting."""
    PHASE["command"] = name
    if name not in NOTHING_YET:
        PHASE["starting"] = False
    elif signal.getsignal(signal.SIGINT) == signal.SIG_IGN and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, ctrl_c)  # the command takes it once serving: from now on


def handed_over() -> None:
    """The command installs handlers of its own for these signals: it is no longer starting."""
    PHASE["starting"] = False


def interrupted_words(argv: list[str], signal_name: str | None) -> str:
    """The line of a command a KeyboardInterrupt ended (``signal_name``: ``SIGTERM``, ``SIGHUP``, None for
    Ctrl-C): ``interrupted (SIGTERM) while gamead up was starting: nothing was started`` while it starts, else
    ``interrupted (SIGTERM)`` (``interrupted`` for Ctrl-C). ``argv``: the words after ``gamead``, for the command's
    name before :func:`command` has it (its first word not an option). Pure but for :data:`PHASE`."""
    head = f"interrupted ({signal_name})" if signal_name else "interrupted"
    if not PHASE["starting"]:
        return head
    name = PHASE["command"] or next((w for w in argv if not w.startswith("-")), None)
    if not isinstance(name, str) or not name.isidentifier():
        return f"{head} while gamead was starting: nothing was done"
    return f"{head} while gamead {name} was starting: {NOTHING_YET.get(name, 'nothing was done')}"
