"""A Ctrl-C handler of our own in each pytest process, so that ``asyncio.run`` does not ``repr`` what it returns.

On Python 3.11 (cpython#112559, fixed in later releases) ``asyncio.run`` in the main thread, while SIGINT has
``signal.default_int_handler``, installs ``functools.partial(runner._on_sigint, main_task=task)`` and, when the
coroutine has returned, asks ``signal.getsignal(SIGINT)``, which tries ``signal.Handlers(partial)``: the
``ValueError`` it builds and drops says ``repr(partial)``, that is the task's repr, whose ``reprlib.repr`` of the
*result* calls that object's full ``repr`` and only then cuts it to 30 characters. Twice per call. The tests call
``asyncio.run`` ~400 times, many returning what they read from NATS: in
``test_snapshot_storm::test_a_listing_during_a_write_storm_lists_every_record_once`` the page of 21,000 records
it returns was formatted twice (42,000 pydantic reprs, 9.3 of its 52 s under ``cProfile``); ``py-spy record
--gil`` of 24 integration modules in one process: 600 of 12,479 samples in those reprs.

``asyncio.run`` installs its handler only over ``signal.default_int_handler``: this plugin (``pytest_plugins`` of
tests/conftest.py) puts in its place a handler that does what that one does (raise ``KeyboardInterrupt``), in
the pytest process's main thread only. A Ctrl-C still stops pytest as before; inside an ``asyncio.run`` it raises
``KeyboardInterrupt`` where the loop is instead of cancelling the main task first. A test that needs
``default_int_handler`` itself sets it and puts back what it found (tests/unit/test_settling.py). The processes
the tests start are untouched: the fork server's children and fresh interpreters set ``default_int_handler``.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType


#: ``ctrl_c``: this handler has raised a KeyboardInterrupt (the runner's Ctrl-C: :mod:`tests.escaped_interrupts`)
RUNNER = {"ctrl_c": False}


def interrupted(signum: int, frame: FrameType | None) -> None:
    """SIGINT: raise ``KeyboardInterrupt``, as ``signal.default_int_handler`` does (and is not it)."""
    RUNNER["ctrl_c"] = True
    raise KeyboardInterrupt


def _replace() -> None:
    """Replace ``default_int_handler`` by :func:`interrupted` (main thread only; another handler is kept)."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupted)


def pytest_configure(config: object) -> None:
    _replace()


def pytest_runtest_setup(item: object) -> None:
    """Again before each test: an earlier test of the same process may have put ``default_int_handler`` back (a
    library that restores the handler it found at its start: a fresh clone's run failed
    test_plain_sigint, 2 reprs, after another module in its xdist worker)."""
    _replace()
