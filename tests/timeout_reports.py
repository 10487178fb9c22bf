"""pytest-timeout's alarm never goes off while pytest writes a test's report.

pytest-timeout (``timeout = 120``, its ``signal`` method) arms ``SIGALRM`` for a test's whole run protocol: setup,
call, teardown *and* the report of each. A test that failed near its 120 s (at load 49, ``test_help_at_60x20``
beside five helpers) left pytest building the failure's report, whose source lookup walks the module's AST for
seconds at that load; the alarm then raised ``Failed`` inside ``pytest_runtest_makereport``, outside any test
phase: an INTERNALERROR that ended the xdist worker's session and so the whole run, 300 of 4,880 tests run and no
failure reported (session 56's load hunt, both fresh clones). A phase's own code stays under the alarm; the report
is written with the alarm paused, and what was left of it runs on from the next phase. Only pytest-timeout's own
alarm is touched (its handler lives in ``pytest_timeout``); a test's own ``SIGALRM`` is left as it is.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

_PAUSED = pytest.StashKey[float]()
#: the item is inside a phase (setup, call, teardown): a report written there (schemathesis' subtests write one per
#: API operation during the call) is under the phase's own guard, and the alarm runs on
_IN_PHASE = pytest.StashKey[bool]()


def _timeouts_alarm() -> bool:
    return getattr(signal.getsignal(signal.SIGALRM), "__module__", None) == "pytest_timeout"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    """Pause pytest-timeout's alarm while a phase's report is written after the phase (module docstring)."""
    if not item.stash.get(_IN_PHASE, False) and _timeouts_alarm():
        left, _interval = signal.setitimer(signal.ITIMER_REAL, 0)
        if left > 0:
            item.stash[_PAUSED] = left
    yield


def _phase(item: pytest.Item) -> Iterator[None]:
    """The alarm's rest resumed as a phase begins; the item marked inside the phase until it ends."""
    left = item.stash.get(_PAUSED, 0.0)
    if left > 0 and _timeouts_alarm():
        item.stash[_PAUSED] = 0.0
        signal.setitimer(signal.ITIMER_REAL, left)
    item.stash[_IN_PHASE] = True
    try:
        yield
    finally:
        item.stash[_IN_PHASE] = False


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _phase(item)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _phase(item)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _phase(item)
