"""Session 56's CI ended after 75 % of the suite: a KeyboardInterrupt that a test's own SIGTERM raised outside its
catch crashed its xdist worker and the run (tests/escaped_interrupts.py). Here a test does that, and one after it
passes: with the plugin, 1 failed and 1 passed; without it, pytest ends at the first and never runs the second."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import clean_env

REPO = Path(__file__).resolve().parents[2]

ESCAPES = """
import os
import signal


def _raise(signum, frame):
    raise KeyboardInterrupt


def test_a_signal_of_its_own_escapes():
    signal.signal(signal.SIGTERM, _raise)
    os.kill(os.getpid(), signal.SIGTERM)  # its handler runs as this call returns: nothing here catches it


def test_the_next_one_runs_on_the_handlers_before():
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
"""


@pytest.mark.parametrize("guarded", [False, True], ids=["pytest alone", "with tests.escaped_interrupts"])
def test_an_escaped_interrupt_fails_its_test_and_the_run_goes_on(
        tmp_path: Path, guarded: bool, request: pytest.FixtureRequest) -> None:
    (tmp_path / "test_escapes.py").write_text(ESCAPES)
    plugins = ["-p", "tests.plain_sigint", "-p", "tests.escaped_interrupts"] if guarded else []
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *plugins, str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env=clean_env(PYTHONPATH=str(REPO), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
    said = run.stdout + run.stderr
    if not guarded:  # the premise: pytest takes it for the operator's Ctrl-C and ends the session
        assert run.returncode == pytest.ExitCode.INTERRUPTED and "1 passed" not in said, said[-2000:]
        return
    assert request.config.pluginmanager.has_plugin("tests.escaped_interrupts"), "the suite runs without the guard"
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, said[-2000:]
    assert "1 failed, 1 passed" in said and "escaped the test's call" in said, said[-2000:]
