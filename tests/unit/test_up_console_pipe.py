"""``gamead up``'s console lines once the reader of its stderr pipe is gone (``gamead up 2>&1 | tee up.log``, tee
killed with the terminal): dropped, never fatal (:func:`gamead_cli.commands.up_console.say`). Before (attack57b),
rich's console ended the process with ``SystemExit(1)`` at the first such line, raised from whichever thread said it:
the terminal watch's thread ended unseen before it asked the stop, and the stack ran on with its terminal gone."""

from __future__ import annotations

import subprocess
import sys

#: stderr a pipe whose reader is gone; ``say`` twice from a thread (as the terminal watch does), then the main
#: thread: prints what each call did and what fd 1 still is
SCRIPT = """
import os, sys, threading
r, w = os.pipe(); os.close(r); os.dup2(w, 2)
from gamead_cli.commands.up_console import say
done = []
def call():
    try:
        say("[yellow]![/] the terminal on gamead up's stdin hung up (closed)")
        done.append("returned")
    except BaseException as exc:
        done.append(type(exc).__name__)
thread = threading.Thread(target=call); thread.start(); thread.join()
call()
print(" ".join(done), os.path.realpath(f"/proc/self/fd/1") != os.devnull)
"""


def test_a_console_line_with_its_reader_gone_is_dropped_not_an_exit() -> None:
    """Before: 'SystemExit SystemExit' (and stdout put on /dev/null, nothing printed: exit 0, empty); after: both
    calls return, stdout kept."""
    got = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert (got.returncode, got.stdout.strip()) == (0, "returned returned True"), (got.stdout, got.stderr)
