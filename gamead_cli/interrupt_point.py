"""Where a stop signal's :class:`KeyboardInterrupt` may land (session 48's fresh-clone failure: ``gamead dlq replay``
following its job, sent SIGHUP, was still running 30 s later; one run in hundreds).

The CLI's handlers (:mod:`gamead_cli.first_signals`, :func:`gamead_cli.stops.signals_interrupt`) raise a
KeyboardInterrupt in the main thread wherever it is, so that a Ctrl-C, SIGTERM or SIGHUP ends a blocking read at
once. Two places keep it from doing its job, whatever the command:

* **A lock being taken or given back.** ``with lock:`` whose ``__enter__`` is Python code (httpcore's
  ``ThreadLock``, around its connection pool and each connection's state) takes the lock, then Python runs the
  pending handler before ``__enter__`` returns: the interrupt comes out of ``__enter__``, the ``with`` never runs
  ``__exit__``, and the lock stays taken; the unwind (httpcore closes the request under the same lock) then waits
  on it for ever (CPython bpo-29988). The same in an ``__exit__`` before it releases, or an ``acquire``/``release``.
  Here the interrupt is raised again 1 ms later (``SIGALRM``), by then inside the ``with`` block, whose ``__exit__``
  runs; a frame still taking a lock after :data:`PUT_OFF_AT_MOST` seconds gets it anyway. The timer repeats every
  1 ms until the interrupt is raised or taken: an alarm that came after its handler set it and before a lock's wait
  began runs no handler, and a one-shot timer left that wait waiting for ever (session 50: a fresh clone's
  ``test_a_lock_taken_for_ever_gets_the_interrupt_anyway`` hung at load 30; 5 of 10 runs with the timer at 10 µs).
  A timer that was running before (pytest-timeout's) is set again then, and its handler still runs when it is
  due; an alarm of ours that comes late (delivered as the timer stopped) finds nothing due and does nothing.
* **A block's own setting up or putting back of the handlers** (:func:`whole`: the generators of
  :func:`gamead_cli.stops.signals_interrupt`, ``signals_held``, ``signals_flagged``). An interrupt raised there
  left some handlers replaced for the rest of the command (a Ctrl-C then only noted, never acted on), and one put off
  from the lock taken just before the block came out of its start instead of being taken by it (session 56's CI:
  ``test_an_interrupt_put_off_is_taken_by_a_block_that_must_not_be_cut``, the test runner's worker crashed). It is
  put off the same way, past the step.
* **A finalizer.** An interrupt raised while a ``__del__`` or a generator's clean-up runs (the garbage collector
  can run them anywhere) is printed as ``Exception ignored in: …`` and dropped (``sys.unraisablehook``): the
  command reads on as if no signal came. :func:`install` sets a hook that raises it again 1 ms later, the same way.

Only the standard library is imported here (it is installed before the CLI's other modules load).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, TypeVar

_F = TypeVar("_F", bound=Callable[..., Any])

#: frames in which an interrupt would leave a lock taken (or a context half set up): it is put off past them
TAKING = frozenset({"__enter__", "__exit__", "acquire", "release"})
#: seconds after which an interrupt put off is raised wherever the main thread is (a lock waited on for ever)
PUT_OFF_AT_MOST = 1.0
#: seconds between an interrupt put off and its next try
AGAIN_AFTER = 0.001
#: ``since``: the ``time.monotonic()`` of the first put-off of the interrupt due (None: none due)
_DUE: dict[str, float | None] = {"since": None}
#: the ``SIGALRM`` handler before the first interrupt put off (``handler``), and its timer: when it fires
#: (``at``, monotonic s; None: none runs) and every how many seconds after (``every``, 0: once)
_THEIRS: dict[str, Any] = {"handler": None, "at": None, "every": 0.0}
#: the code of the steps an interrupt never cuts (:func:`whole`), whatever they call
_WHOLE: set[CodeType] = set()


def whole(func: _F) -> _F:
    """``func`` (a function or a context manager's generator function, under ``@contextmanager``) is never cut by
    an interrupt: one that lands while its own frame or anything it calls runs is put off (module docstring), and
    raised once it has returned or yielded (a generator's block then takes it). For steps of a few lines that set
    up or put back handlers; returned as given."""
    _WHOLE.add(func.__code__)
    return func


def _put_off_in(frame: FrameType) -> bool:
    """Whether an interrupt landing in ``frame`` is put off: a lock's taking (innermost frame only) or a step
    :func:`whole` names anywhere below it."""
    if frame.f_code.co_name in TAKING:
        return True
    below: FrameType | None = frame
    while below is not None:
        if below.f_code in _WHOLE:
            return True
        below = below.f_back
    return False


def raise_interrupt(frame: FrameType | None) -> None:
    """Raise :class:`KeyboardInterrupt`, as a handler of a stop signal does; ``frame``: the frame the handler
    interrupted (its second argument). In a frame named in :data:`TAKING` or a step :func:`whole` names (module
    docstring) it is not raised there but 1 ms later, by ``SIGALRM`` (the main thread's handler), unless it has been
    put off for :data:`PUT_OFF_AT_MOST` seconds already. Main thread only (where Python runs signal handlers)."""
    while frame is not None and frame.f_globals is globals():  # our own handler, interrupted by our alarm:
        frame = frame.f_back  # the frame it interrupted is where it would land (session 51)
    since = _DUE["since"]
    if frame is not None and _put_off_in(frame) and (
            since is None or time.monotonic() - since < PUT_OFF_AT_MOST):
        _again_soon()
        return
    _not_due()
    raise KeyboardInterrupt


def _again_soon() -> None:
    """Raise the interrupt due every :data:`AGAIN_AFTER` seconds from now until it is raised or taken (``SIGALRM``,
    handled by :func:`_again`; the module docstring says why it repeats). The handler and timer there before are
    noted first, so that a signal handled at any point after gives them back (review50)."""
    if _DUE["since"] is not None:
        return  # the timer runs already
    now, handler = time.monotonic(), signal.getsignal(signal.SIGALRM)
    left, every = signal.getitimer(signal.ITIMER_REAL)
    if handler is not _again:
        _THEIRS.update(handler=handler, at=now + left if left > 0 else None, every=every)
    _DUE["since"] = now
    signal.signal(signal.SIGALRM, _again)
    signal.setitimer(signal.ITIMER_REAL, AGAIN_AFTER, AGAIN_AFTER)


def _not_due() -> bool:
    """No interrupt is due any more (returned: whether one was): our timer stops, the one before runs again (the time
    it had left less the time since; one that ran out meanwhile fires at once). Nothing due first: an alarm of ours
    delivered meanwhile does nothing (review50: it raised the interrupt a block was taking, from here)."""
    if _DUE["since"] is None:
        return False
    _DUE["since"] = None
    signal.setitimer(signal.ITIMER_REAL, 0)
    if (at := _THEIRS["at"]) is not None:
        signal.setitimer(signal.ITIMER_REAL, max(1e-6, at - time.monotonic()), _THEIRS["every"])
    return True


def _again(signum: int, frame: FrameType | None) -> None:
    """``SIGALRM`` while an interrupt is put off: try to raise it (:func:`raise_interrupt`). None due: the timer
    there before fired (its handler runs; our late alarms are left unanswered). Our timer stops while the handler
    acts and repeats after it if the interrupt is put off again, and an alarm that comes in one of this module's steps
    does nothing: session 51, a fresh clone at load ~5: alarms every 10 µs nested the handlers, one raised the
    interrupt inside another's half-done step and it escaped its ``except`` (12 of 40 runs of the race test beside 3
    busy loops; handlers nested past Python's recursion limit in others)."""
    if _DUE["since"] is None:
        at = _THEIRS["at"]
        if at is not None and time.monotonic() >= at - AGAIN_AFTER:
            _THEIRS["at"] = at + _THEIRS["every"] if _THEIRS["every"] else None
            if callable(theirs := _THEIRS["handler"]):
                theirs(signum, frame)
        return
    if frame is not None and frame.f_globals is globals():
        return  # our own handler or step, half done: it goes on, and the timer with it
    signal.setitimer(signal.ITIMER_REAL, 0)  # no alarm of ours comes while this one is acted on
    try:
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):  # another one (a Ctrl-C meanwhile) is acted on
            _not_due()
            return
        raise_interrupt(frame)
    finally:
        if _DUE["since"] is not None:  # put off again: the next try
            signal.setitimer(signal.ITIMER_REAL, AGAIN_AFTER, AGAIN_AFTER)


def take_due() -> bool:
    """Whether an interrupt was due (put off, not raised yet); it is no longer (the timer stopped). A block that
    must not be cut (:func:`gamead_cli.stops.signals_flagged`, :func:`~gamead_cli.stops.signals_held`) takes it at
    its start, as a signal that came meanwhile, instead of having it raised inside. Main thread only."""
    return _main_thread() and _not_due()


def _unraisable(unraisable: Any) -> None:
    """``sys.unraisablehook``: an interrupt a finalizer dropped is raised again (module docstring); anything else
    is reported as Python reports it."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _main_thread():
        _again_soon()
        return
    sys.__unraisablehook__(unraisable)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def install() -> None:
    """Raise again an interrupt a finalizer dropped (module docstring). Called once, by the entry point."""
    sys.unraisablehook = _unraisable


def settled() -> None:
    """The command has ended: no interrupt is due any more (a timer left would end the process by ``SIGALRM``)."""
    if _main_thread():
        _not_due()
