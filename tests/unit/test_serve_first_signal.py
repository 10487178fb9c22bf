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
