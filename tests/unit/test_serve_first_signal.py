"""``gamead serve`` ends by the first signal that stopped it, whatever came after (signals56: the kind of session 55's
CI failure). uvicorn raises every signal it captured again once it has stopped serving, the last first: a
supervisor's SIGTERM, then the closed terminal's SIGHUP, ended the process by the SIGHUP (129, not 143).

The server's own signal handling (:meth:`gamead_core.api.acceptor.AcceptingServer.capture_signals`) in a real
process of its own, the two signals sent to itself in order (Python runs each handler as ``os.kill`` returns)."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.support import clean_env

_STOPPED_TWICE = """
import os, signal, sys, uvicorn
from gamead_core.api.acceptor import AcceptingServer
server = AcceptingServer(uvicorn.Config(app=None))
with server.capture_signals():
    for name in sys.argv[1:]:
        os.kill(os.getpid(), getattr(signal, name))
print("served on")
"""


@pytest.mark.parametrize(("first", "then"), [("SIGTERM", "SIGHUP"), ("SIGHUP", "SIGTERM")])
def test_serve_ends_by_the_first_signal_that_stopped_it(first: str, then: str) -> None:
    """Figure before: SIGTERM then SIGHUP ended it by SIGHUP (-1, the shell's 129); SIGHUP then SIGTERM by SIGTERM."""
    done = subprocess.run([sys.executable, "-c", _STOPPED_TWICE, first, then], env=clean_env(), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == -getattr(signal, first), done.stdout + done.stderr


_LATE_SIGTERM = """
import os, signal, sys, uvicorn
from gamead_core.api.acceptor import AcceptingServer
server = AcceptingServer(uvicorn.Config(app=None))
signal.signal(signal.SIGINT, getattr(signal, sys.argv[1]))  # as the process started: a terminal's, a background job's
try:
    with server.capture_signals():
        os.kill(os.getpid(), signal.SIGINT)
except KeyboardInterrupt:  # the Ctrl-C's interrupt unwinds (the CLI's boundary: one line, 130) …
    os.kill(os.getpid(), signal.SIGTERM)  # … when a SIGTERM comes
    sys.exit(130)
print("served on")
"""


@pytest.mark.parametrize("sigint", ["default_int_handler", "SIG_IGN"])
def test_a_sigterm_while_serve_s_ctrl_c_unwinds_leaves_its_130(sigint: str) -> None:
    """leftovers56: once served, SIGTERM and SIGHUP were set back to their default action while the Ctrl-C's
    KeyboardInterrupt unwound: a SIGTERM then ended ``gamead serve`` by SIGTERM (-15), not 130. Now the stop being
    acted on is the one in the process's record (:mod:`gamead_core.first_stop`), and the SIGTERM is ignored.
    SIG_IGN (final fresh clone of fd3ee6b5, run as a background job, which starts with SIGINT ignored): serve,
    stopped by a SIGINT, raised it again into the inherited SIG_IGN and went on, ``served on``, exit 0 (1 of 1)."""
    done = subprocess.run([sys.executable, "-c", _LATE_SIGTERM, sigint], env=clean_env(), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 130, done.stdout + done.stderr


_BETWEEN = """
import os, signal, sys, uvicorn
from gamead_core.api.acceptor import AcceptingServer
raise_signal = signal.raise_signal
def hooked(signum):  # between the handlers' reset and the first signal's raise: another stop lands
    os.kill(os.getpid(), getattr(signal, sys.argv[2]))
    raise_signal(signum)
signal.raise_signal = hooked
server = AcceptingServer(uvicorn.Config(app=None))
with server.capture_signals():
    os.kill(os.getpid(), getattr(signal, sys.argv[1]))
print("served on")
"""


@pytest.mark.parametrize(("first", "then"), [("SIGTERM", "SIGINT"), ("SIGHUP", "SIGINT"), ("SIGTERM", "SIGHUP")])
def test_a_signal_between_serve_s_reset_and_its_first_signal_s_raise_changes_nothing(first: str, then: str) -> None:
    """fix56c: once served, the handlers were set back and then the first signal raised again; a Ctrl-C between the
    two ran its handler (Python's here: a KeyboardInterrupt, exit 1 with a traceback) and won over the SIGTERM.
    Now every other stop is ignored by the kernel before the raise (:func:`gamead_core.first_stop.after_stop`)."""
    done = subprocess.run([sys.executable, "-c", _BETWEEN, first, then], env=clean_env(), capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == -getattr(signal, first), done.stdout + done.stderr
