"""tests/plain_sigint.py: ``asyncio.run`` in a test does not format what it returns, and Ctrl-C still interrupts.

Without the plugin (Python 3.11, cpython#112559) the result below was formatted twice per ``asyncio.run``: a page
of 21,000 records read from NATS took 42,000 pydantic reprs
(``test_snapshot_storm::test_a_listing_during_a_write_storm_lists_every_record_once``)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from tests import plain_sigint


class Costly:
    """A result that counts how often it is formatted."""

    formatted = 0

    def __repr__(self) -> str:
        Costly.formatted += 1
        return "Costly()"


async def _give() -> Costly:
    return Costly()


def test_asyncio_run_does_not_format_its_result() -> None:
    """Figure: 0 reprs per ``asyncio.run`` with the plugin, 2 without (Python 3.11.7)."""
    assert threading.current_thread() is threading.main_thread()
    Costly.formatted = 0
    result = asyncio.run(_give())
    assert isinstance(result, Costly) and Costly.formatted == 0


def test_a_sigint_still_raises_keyboard_interrupt_in_the_test() -> None:
    """Ctrl-C (SIGINT to the pytest process) is still a ``KeyboardInterrupt`` where the test is, once the plugin has
    put its handler in place of Python's own. From Python's own handler on, whatever the process began with: a
    suite started in the background (``make test &``, a CI runner without a terminal) has SIGINT ignored from its
    start, where no Ctrl-C comes and the plugin leaves it so (a fresh clone's run started so failed here once)."""
    found = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        plain_sigint.pytest_runtest_setup(None)
        assert signal.getsignal(signal.SIGINT) is plain_sigint.interrupted
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between bytecodes of the main thread
                pass
    finally:
        signal.signal(signal.SIGINT, found)
