"""Session 56's load hunt: both fresh clones ended after 300 of 4,880 tests on an INTERNALERROR — pytest-timeout's
alarm went off while pytest wrote a slow test's failure report (tests/timeout_reports.py). Here a test leaves the
alarm 50 ms to run and fails; its report takes a second (a hook that sleeps, as the AST walk did at load 49)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import clean_env

REPO = Path(__file__).resolve().parents[2]

LATE_FAILURE = """
import signal


def test_fails_with_the_alarm_nearly_due():
    signal.setitimer(signal.ITIMER_REAL, 0.05)  # pytest-timeout's own alarm (its handler), 50 ms left
    assert False, "the test's own failure"
"""

SLOW_REPORT = """
import time


def pytest_runtest_makereport(item, call):
    if call.when == "call":
        time.sleep(1)  # the failure's report is slow to write
"""

#: the premise's test: the alarm, 50 ms left, cannot go off before the report (SIGALRM blocked until it begins).
#: Left to the clock, at load 35 the 50 ms ran out in the call itself (load59A: "Failed: Timeout" raised while the
#: test's own failure was handled, exit 1), and pytest-timeout alone looked harmless
HELD_TILL_THE_REPORT = """
import signal


def test_fails_with_the_alarm_nearly_due():
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    signal.setitimer(signal.ITIMER_REAL, 0.05)  # pytest-timeout's own alarm (its handler), 50 ms left
    assert False, "the test's own failure"
"""

RELEASED_IN_THE_REPORT = """
import signal
import time


def pytest_runtest_makereport(item, call):
    if call.when == "call":
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGALRM})  # due now or within the slow report below
        time.sleep(1)  # the failure's report is slow to write
"""

#: a report written inside the call (as schemathesis' subtests do, one per API operation) leaves the alarm running
SUBTEST_THEN_HANG = """
import signal
import time

from _pytest.runner import CallInfo


def test_hangs_after_a_subtest_report(request):
    signal.setitimer(signal.ITIMER_REAL, 0.5)  # pytest-timeout's alarm, 0.5 s left
    call = CallInfo.from_call(lambda: None, when="call")
    request.node.ihook.pytest_runtest_makereport(item=request.node, call=call)
    for _ in range(600):
        time.sleep(0.1)  # hangs: the alarm must end it
"""


def _pytest_on(folder: Path, guarded: bool) -> tuple[subprocess.CompletedProcess[str], str]:
    """pytest run on ``folder`` in a process of its own with pytest-timeout alone (a 30 s alarm), and with
    tests.timeout_reports if ``guarded``; its result and all it said (stdout, then stderr)."""
    plugins = ["-p", "tests.timeout_reports"] if guarded else []
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "pytest_timeout", "-p", "no:cacheprovider",
                          "-o", "timeout=30", *plugins, str(folder)], cwd=folder, capture_output=True, text=True,
                         timeout=120, env=clean_env(PYTHONPATH=str(REPO), PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"))
    return run, run.stdout + run.stderr


@pytest.mark.parametrize("guarded", [False, True], ids=["pytest-timeout alone", "with tests.timeout_reports"])
def test_a_slow_report_is_not_cut_by_the_timeout(tmp_path: Path, guarded: bool, request: pytest.FixtureRequest) -> None:
    (tmp_path / "test_late.py").write_text(LATE_FAILURE if guarded else HELD_TILL_THE_REPORT)
    (tmp_path / "conftest.py").write_text(SLOW_REPORT if guarded else RELEASED_IN_THE_REPORT)
    run, said = _pytest_on(tmp_path, guarded)
    if not guarded:  # the premise: pytest-timeout alone ends the session on an internal error
        assert run.returncode == pytest.ExitCode.INTERNAL_ERROR and "INTERNALERROR" in said, said[-2000:]
        return
    assert request.config.pluginmanager.has_plugin("tests.timeout_reports"), "the suite runs without the guard"
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, said[-2000:]
    assert "INTERNALERROR" not in said and "the test's own failure" in said, said[-2000:]


def test_a_report_written_inside_a_test_leaves_its_timeout_running(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(SUBTEST_THEN_HANG)
    run, said = _pytest_on(tmp_path, guarded=True)
    assert run.returncode == pytest.ExitCode.TESTS_FAILED and "Timeout" in said, said[-2000:]
