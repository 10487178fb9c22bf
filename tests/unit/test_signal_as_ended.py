"""A stop signal that lands while :func:`gamead_cli.stops.ended` changes the handlers one ``signal.signal`` call at a
time, in the entry point's ``finally`` (:func:`gamead_cli.main.main`), once the command has ended (its exit code
known). Before (endstop57): after a normal end, a SIGTERM, SIGHUP or Ctrl-C meeting a handler of the CLI's not
changed yet (:func:`gamead_cli.first_signals.ctrl_c`, ``_on_signal``) was taken as a first stop and raised a
KeyboardInterrupt out of the ``finally``: a traceback, and the process ended by SIGINT whatever the signal; so did
a second Ctrl-C after a Ctrl-C's stop. Now the process ends by the signal (the shell says 143, 129, 130), as
``ended``'s docstring says; after a stop acted on, only that signal again does, another is ignored (its exit code
stands). Each case in its own process (it must die by the signal), the signal sent deterministically: from inside
``signal.signal``, before the given change of ``ended`` (as tests/unit/test_interrupt_point.py does)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

_ENDS = """
import os, signal, sys, types
from gamead_cli import exitcodes, first_signals, main as entry, stops

FIRST, SENT, AT = (int(a) for a in sys.argv[1:])
signal.signal(signal.SIGINT, signal.default_int_handler)  # a command started in a terminal's foreground
real, changes = signal.signal, []


def changing(signum, handler):
    if sys._getframe(1).f_code.co_name in ("ended", "after_stop"):  # stops.ended's changes (first_stop's rule)
        changes.append(signum)
        if len(changes) == AT + 1:
            print("sent", flush=True)
            os.kill(os.getpid(), SENT)  # its handler runs as this call returns: before this change
    return real(signum, handler)


def app():
    if FIRST:  # a stop acted on: its line written, its exit code known
        first_signals.take(FIRST)
        sys.exit(stops.interrupted_code())
    sys.exit(exitcodes.OK)


signal.signal = changing
sys.modules["gamead_cli.root"] = types.SimpleNamespace(app=app)  # the command: only its end matters here
entry.main()
"""

_INT, _TERM, _HUP = int(signal.SIGINT), int(signal.SIGTERM), int(signal.SIGHUP)


@pytest.mark.parametrize(("first", "sent", "at", "returncode"), [
    # a normal end: ended() sets SIGINT, SIGTERM, SIGHUP to their default action, in that order
    (0, _INT, 0, -_INT), (0, _TERM, 0, -_TERM), (0, _TERM, 1, -_TERM), (0, _HUP, 1, -_HUP), (0, _HUP, 2, -_HUP),
    # a stop acted on: only its signal again ends the process; another is ignored (the first stop's exit code)
    (_TERM, _TERM, 0, -_TERM), (_TERM, _HUP, 0, 143), (_INT, _INT, 0, -_INT), (_INT, _TERM, 0, 130),
])
def test_a_signal_amid_the_ends_handler_changes_ends_the_process_by_it(
        first: int, sent: int, at: int, returncode: int) -> None:
    """Before: 6 of these 9 cases a traceback (KeyboardInterrupt out of main's ``finally``), process ended by
    SIGINT (-2). Now 0: each ends by the signal sent, or with the first stop's code when another was sent."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _ENDS, str(first), str(sent), str(at)], capture_output=True,
                         text=True, timeout=60, env=env)
    assert out.stdout.split() == ["sent"], (out.stdout, out.stderr[-2000:])
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.returncode == returncode, (out.returncode, out.stderr[-2000:])


_DUE_AT_END = """
import signal, sys, types
from gamead_cli import exitcodes, first_signals, interrupt_point, main as entry

SENT = int(sys.argv[1])


def app():
    print("the whole report", flush=False)  # block-buffered to a pipe: flushed before the process ends
    first_signals.take(SENT)  # the command's handler took the stop as its last step took a lock: put off
    interrupt_point._again_soon()
    signal.setitimer(signal.ITIMER_REAL, 0)  # the command ends within the millisecond before it would land
    sys.exit(exitcodes.OK)


sys.modules["gamead_cli.root"] = types.SimpleNamespace(app=app)
entry.main()
"""


@pytest.mark.parametrize("sent", [_INT, _TERM, _HUP])
def test_a_stop_put_off_past_the_last_step_ends_the_process_by_it(sent: int) -> None:
    """leftout59: an interrupt put off (its signal came as the command's last step took a lock) and still due when
    the command ended was dropped: exit 0, as if no Ctrl-C, SIGTERM or SIGHUP came, where the same signal a moment
    later ends the process by it. Now it does, the output written whole first. Before: 0 of 3; after: 3 of 3."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", _DUE_AT_END, str(sent)], capture_output=True, text=True, timeout=60,
                         env=env)
    assert out.stdout == "the whole report\n", (out.stdout, out.stderr[-2000:])
    assert "Traceback" not in out.stderr and out.stderr == "", out.stderr[-2000:]
    assert out.returncode == -sent, (out.returncode, out.stderr[-2000:])
