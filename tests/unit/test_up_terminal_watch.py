"""Which terminal ``gamead up`` watches (hangup57, :mod:`gamead_cli.commands.up_terminal`): stdin's when it is one,
none with ``--no-tty-check`` or stdin not a terminal (``nohup``, ``< /dev/null``, a service: the stack outlives the
terminal; the nohup case end to end is tests/integration/test_up_parent.py), and what it says of an ignored SIGHUP.
Each case is a real process whose stdin is a real pty's slave or /dev/null."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import pytest

from gamead_cli.commands.up_terminal import hangup_words

#: starts a watch as ``gamead up`` does (argv[1]: ``check`` or not), prints whether a terminal is watched; and, with
#: argv[2] ``wait``, waits for it to call back (the terminal gone), printing ``gone``
WATCH = """
import sys, threading
from gamead_cli.commands.up_terminal import TerminalWatch
gone = threading.Event()
watch = TerminalWatch(gone.set)
print(watch.start(sys.argv[1] == "check"), flush=True)
if sys.argv[2:] == ["wait"]:
    print("gone" if gone.wait(60) else "still watching", flush=True)
watch.close()
"""


@pytest.mark.parametrize(("check", "on_a_terminal", "watched"), [
    (True, True, "True"), (False, True, "False"), (True, False, "False")],
    ids=["stdin a terminal", "--no-tty-check", "stdin /dev/null"])
def test_the_terminal_on_stdin_is_watched_unless_told_not_to(check: bool, on_a_terminal: bool, watched: str) -> None:
    master, slave = pty.openpty()
    try:
        got = subprocess.run([sys.executable, "-c", WATCH, "check" if check else "no"], capture_output=True,
                             stdin=slave if on_a_terminal else subprocess.DEVNULL, text=True, timeout=60)
        assert (got.returncode, got.stdout.strip()) == (0, watched), got.stderr
    finally:
        os.close(master)
        os.close(slave)


def test_the_watch_calls_back_once_the_terminal_hangs_up() -> None:
    """The pty's master closed (a terminal emulator closing): called back, with no signal sent."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", WATCH, "check", "wait"], stdin=slave, stdout=subprocess.PIPE,
                            text=True)
    os.close(slave)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "True"
        os.close(master)
        master = -1
        assert proc.stdout.readline().strip() == "gone"
        assert proc.wait(timeout=60) == 0
    finally:
        if master != -1:
            os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_what_it_says_of_an_ignored_sighup() -> None:
    assert hangup_words(False, True, 42) is None and hangup_words(False, False, 42) is None
    assert hangup_words(True, False, 42) == (
        "SIGHUP was ignored when gamead up started (nohup?): closing the terminal leaves the stack running; stop it "
        "with Ctrl-C or `kill 42` (SIGTERM)")
    assert hangup_words(True, True, 42) == (
        "SIGHUP was ignored when gamead up started, but its stdin is a terminal: closing that terminal stops the "
        "stack all the same; to keep it running, start it with `nohup`, stdin not a terminal, or --no-tty-check")


#: starts a watch with no descriptor left to open (RLIMIT_NOFILE at the highest one open): prints whether watched
NO_DESCRIPTOR_LEFT = """
import os, resource
from gamead_cli.commands.up_terminal import TerminalWatch
highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print(TerminalWatch(lambda: None).start(True), flush=True)
"""


def test_a_watch_that_cannot_open_its_descriptors_is_not_watched() -> None:
    """rcB: ``epoll()`` or ``eventfd()`` failing (EMFILE) escaped from ``gamead up``'s start as an ``OSError``
    (before: exit 1 with a traceback); now the terminal is not watched and the start goes on."""
    master, slave = pty.openpty()
    try:
        got = subprocess.run([sys.executable, "-c", NO_DESCRIPTOR_LEFT], capture_output=True, stdin=slave, text=True,
                             timeout=60)
        assert (got.returncode, got.stdout.strip(), got.stderr) == (0, "False", "")
    finally:
        os.close(master)
        os.close(slave)
