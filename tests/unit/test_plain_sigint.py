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
    """Ctrl-C (SIGINT to the pytest process) is still a ``KeyboardInterrupt`` where the test is."""
    with pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs between bytecodes of the main thread
            pass
