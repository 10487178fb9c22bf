"""SIGTERM and SIGHUP of a command that sends many things (``gamead submit``), treated as Ctrl-C is (attack30c F5):
stop reading, let the requests in flight finish, print the summary of what was sent, exit 128 + the signal's
number (143, 129; Ctrl-C 130), as a shell reports a process that signal ended. A ``timeout``, a CI job's cancel,
systemd's stop or an SSH drop then leave a line saying how far the run got, not silence. And the other way round,
:func:`signals_held` keeps those signals (and Ctrl-C) out of a step that must be whole."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from gamead_cli import exitcodes, first_signals
from gamead_cli.interrupt_point import raise_interrupt, take_due, whole

#: the signal that stopped the command (None: Ctrl-C, or not stopped); the one dict of :mod:`gamead_cli.first_signals`
STOPPED: dict[str, int | None] = first_signals.STOPPED
_NAMES = {int(signal.SIGTERM): "SIGTERM", int(signal.SIGHUP): "SIGHUP", int(signal.SIGINT): "Ctrl-C"}


@contextmanager
@whole  # its setting up and putting back of the handlers: never cut half-way
def signals_interrupt() -> Iterator[None]:
    """Inside the block SIGTERM and SIGHUP raise :class:`KeyboardInterrupt` in the main thread, as Ctrl-C does,
    never inside a lock's taking (:func:`gamead_cli.interrupt_point.raise_interrupt`; Ctrl-C too, unless another
    handler than Python's has it), and are remembered (:func:`stopped_by`, :func:`interrupted_code`). Outside the
    main thread (a test runner's thread) nothing changes: Python lets only the main thread set handlers. The
    command is then no longer starting (:func:`gamead_cli.first_signals.handed_over`): a stop says what it did, not
    "nothing was sent". The first signal is the one remembered and acted on; while it is, another is ignored (a
    supervisor's SIGTERM and a closed terminal's SIGHUP come together; the SIGHUP cut ``submit``'s summary and
    turned exit 143 into 129), in the block and after it (:func:`gamead_cli.first_signals.take`: the command's line
    and exit code come after it), and so is the same one again (README, ``submit``'s "Stopping it": once or twice
    at any moment, the summary always comes; a second Ctrl-C as it was written cut it to ``error: interrupted``,
    1 run in 8 with the two 20 ms apart). Once the command has ended (:func:`ended`) a further one ends the
    process."""
    first_signals.none_yet()
    first_signals.handed_over()

    def handler(signum: int, frame: FrameType | None) -> None:
        if first_signals.ended_acts(signum):  # the command has ended: as the end's handlers will
            return
        if first_signals.take(signum) == "first":  # another, or the same again, while the first is acted on: no
            raise_interrupt(frame)  # second interrupt in its unwind (its summary, its line)

    main = threading.current_thread() is threading.main_thread()  # elsewhere Python sets no handler
    with replaced({sig: handler for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT) if main and (
            sig != signal.SIGINT or signal.getsignal(sig) in (signal.default_int_handler, first_signals.ctrl_c))}):
        yield


_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
@whole  # its setting up and putting back of the handlers: never cut half-way
def signals_held() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP held back for the block, then acted on as the handlers before it would have (the
    first one that came): a hand-over of ads to the sender's pool is then whole or not done, never cut half-way by
    a Ctrl-C. Held in Python's handlers, not the thread's signal mask: the kernel gives a signal masked in the main
    thread to another thread, and Python still raises it in the main thread within milliseconds (review30b F2b).
    On the main thread only (elsewhere Python sets no handler: a plain block)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    came: list[int] = []
    before, due = {sig: signal.getsignal(sig) for sig in _HELD}, False
    try:
        with replaced(dict.fromkeys(_HELD, lambda signum, _frame: came.append(signum))):
            if due := take_due():  # one put off before the block or as it began (its handler took it): after it
                came.insert(0, _due())
            yield
    finally:
        if came:
            handler = before[came[0]]
            if due:
                raise_interrupt(None)  # not its handler again: to it, a repeat of the stop it took (ignored)
            if callable(handler):
                handler(came[0], None)  # raises (KeyboardInterrupt) here: after the block
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), came[0])  # its default action, now that it is back


@contextmanager
@whole  # never cut half-way: every handler set, or put back
def replaced(handlers: dict[int, Any]) -> Iterator[None]:
    """``handlers`` (signal number → handler) for the block, the ones before put back after it whatever it raised.
    A stop that lands while they are set or put back is raised after that step (:func:`~gamead_cli.interrupt_point.
    whole`), never with some set and others not. Main thread only (Python sets handlers there alone)."""
    before: dict[int, Any] = {}
    try:
        for sig, handler in handlers.items():
            before[sig] = signal.signal(sig, handler)
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def _due() -> int:
    """The signal of an interrupt that was put off: the one remembered (SIGTERM, SIGHUP), else Ctrl-C's."""
    return STOPPED["signal"] or int(signal.SIGINT)


#: seconds between two looks of a waiting main thread at the stops :func:`signals_flagged` noted
POLL = 0.1


@contextmanager
@whole  # its setting up and putting back of the handlers: never cut half-way
def signals_flagged() -> Iterator[list[int]]:
    """SIGINT, SIGTERM and SIGHUP noted, never raised, for the block: each appends its number to the list yielded
    (the first remembered for :func:`stopped_by`, as :func:`signals_interrupt` does), and the block looks
    at the list between its waits, each bounded by :data:`POLL` (attack45 F5). A KeyboardInterrupt raised inside
    a wait (``Event.wait``, ``Semaphore.acquire``, ``concurrent.futures.wait``) as ``Condition.wait`` takes its lock
    back left the lock unheld, and the ``with`` around it then ended the run on ``RuntimeError: release unlocked
    lock``, with no summary. A signal ignored (``nohup``) or at its default action is left as it is; on the main
    thread only (elsewhere: a plain block, the list stays empty)."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return

    def note(signum: int, _frame: Any) -> None:  # nothing that takes a lock: it runs wherever the thread is
        first_signals.take(signum)  # the first stop is the one remembered, here and once the block has ended
        came.append(signum)

    with replaced({sig: note for sig in _HELD if callable(signal.getsignal(sig))}):
        if take_due():  # one put off before the block (gamead_cli.interrupt_point): noted, never raised inside
            came.append(_due())
        yield came


def ended() -> None:
    """The command has ended (its output written, its exit code known): from now on SIGINT, SIGTERM and SIGHUP
    end the process at once, by their default action (the shell says 130, 143, 129), where a Python handler is
    set; after a stop acted on, only its signal again does, another is ignored (:func:`first_signals.after_stop`:
    the first stop's code stands). The interpreter's exit then joins the threads still running (a request in
    flight); a Ctrl-C during that join printed ``Exception ignored in: <module 'threading'> … KeyboardInterrupt``
    (review30b F11). A signal ignored (``nohup``, a background job) stays ignored. An interrupt put off
    (:mod:`gamead_cli.interrupt_point`: its signal came as a lock was taken in the command's last step, and the
    command ended within the millisecond before it landed) ends the process by its signal once the output is
    flushed, as that signal would a moment later (leftout59: it was dropped, exit 0 as if no stop came). On the
    main thread only (elsewhere: nothing). From its start, a handler of the CLI's that would raise a first stop acts
    as the end's handlers will (:func:`first_signals.ended_acts`): a SIGTERM between two changes here raised a
    KeyboardInterrupt (endstop57)."""
    if threading.current_thread() is not threading.main_thread():
        return
    first_signals.PHASE["ended"] = True
    due = take_due()  # as settled(): no alarm of ours left to fire
    # a stop acted on: only its signal again ends the process, by it; the others ignored, the defaults an event
    # loop's end put back included (a worker's: its handlers are the loop's)
    if not first_signals.after_stop(_HELD):
        for sig in _HELD:
            if callable(signal.getsignal(sig)):
                signal.signal(sig, signal.SIG_DFL)
    if due:  # never landed: the command's output is whole; the shell says 130 / 143 / 129 (first_stop.end_by)
        for stream in (sys.stdout, sys.stderr):
            try:
                if stream is not None:
                    stream.flush()
            except (OSError, ValueError):  # a closed or full stream: its line said (or not) already
                pass
        first_signals.end_by(_due())


def stopped_by() -> str:
    """What interrupted the command, as a message says it: ``SIGTERM``, ``SIGHUP`` or ``Ctrl-C``."""
    return _NAMES.get(STOPPED["signal"] or int(signal.SIGINT), "a signal")


def interrupted_line(argv: list[str]) -> str:
    """The one line of a command a KeyboardInterrupt ended (Ctrl-C, or SIGTERM / SIGHUP raised as one): ``argv``,
    the words after ``gamead`` (:func:`gamead_cli.first_signals.interrupted_words`)."""
    return first_signals.interrupted_words(argv, stopped_by() if STOPPED["signal"] is not None else None)


def interrupted_code() -> int:
    """The exit code of an interrupted command: :data:`~gamead_cli.exitcodes.TERMINATED` (143) after SIGTERM,
    :data:`~gamead_cli.exitcodes.HUNG_UP` (129) after SIGHUP, else :data:`~gamead_cli.exitcodes.INTERRUPTED`."""
    return {int(signal.SIGTERM): exitcodes.TERMINATED, int(signal.SIGHUP): exitcodes.HUNG_UP}.get(
        STOPPED["signal"] or 0, exitcodes.INTERRUPTED)


@contextmanager
def write_out(what: str, check: str) -> Iterator[None]:
    """The block sends one write (``what``: ``POST /v1/dlq/replay``) and notes what it did. A Ctrl-C (or SIGTERM /
    SIGHUP raised as one) in it cannot tell whether the API carried the write out, so the command ends with
    :class:`~gamead_cli.exitcodes.Interrupted` saying so and how to look (``check``: a command, as
    :func:`gamead_cli.program.follow_up` prints it), exit 130 (143, 129), instead of a bare "interrupted"
    (regress40 F1: `gamead dlq replay` Ctrl-C'd during its POST said only that while its job replayed 40 of 40)."""
    try:
        yield
    except KeyboardInterrupt:
        raise exitcodes.Interrupted(f"interrupted ({stopped_by()}) while {what} was out: it may have been carried "
                                    f"out — see {check}") from None
