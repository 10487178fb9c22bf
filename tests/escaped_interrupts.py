"""A KeyboardInterrupt that a test's own signal raised outside the test's catch fails that test, not the whole run.

The tests of the CLI's stops send real signals to the pytest process (``os.kill(os.getpid(), …)``) and expect the
KeyboardInterrupt in a block of theirs. One that escaped (raised a moment early or late on a loaded machine) reached
pytest, which takes a KeyboardInterrupt for the operator's Ctrl-C: the xdist worker went ``node down:
keyboard-interrupt`` and the controller ended the run (session 56's CI: 75 % of 4,957 tests run, one failure
reported: ``tests/unit/test_interrupt_point.py``). Here it fails the test it escaped from (setup, call or
teardown); the SIGINT, SIGTERM and SIGHUP handlers are put back as they were before the test, and an interrupt
still put off by :mod:`gamead_cli.interrupt_point` is no longer due (its timer would interrupt a later test). The
runner's own Ctrl-C still ends the run where :mod:`tests.plain_sigint`'s handler raised it; during a test that set
a SIGINT handler of its own it fails that test only, and a second Ctrl-C ends the run (rcB).
"""

from __future__ import annotations

import signal
from collections.abc import Generator
from typing import Any

import pytest

from gamead_cli import interrupt_point
from tests import plain_sigint

_STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_BEFORE = pytest.StashKey[dict[int, Any]]()


def _guarded(item: pytest.Item, phase: str) -> Generator[None, object, object]:
    try:
        return (yield)
    except KeyboardInterrupt as exc:
        if plain_sigint.RUNNER["ctrl_c"]:
            raise  # the operator's Ctrl-C: the run ends
        interrupt_point.settled()
        for sig, handler in item.stash.get(_BEFORE, {}).items():
            signal.signal(sig, handler)
        raise pytest.fail.Exception(f"a KeyboardInterrupt escaped the test's {phase} (a signal it sent itself?): "
                                    "failed here instead of ending the whole run") from exc


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    item.stash[_BEFORE] = {sig: signal.getsignal(sig) for sig in _STOPS}
    plain_sigint.RUNNER["ctrl_c"] = False  # a test's own SIGINT, caught, is not the runner's Ctrl-C of a later one
    return (yield from _guarded(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item, "call"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    return (yield from _guarded(item, "teardown"))
