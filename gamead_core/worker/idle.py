"""The pull loop's idle wait (:class:`IdleWait`): the puller's wait for work awaited in the loop's own task, cut
short by the worker's stop (issue 14).

At a steady trickle of ads a worker goes idle after nearly every ad. The wait was a task of its own raced
against the stop with ``asyncio.wait`` (a task, a future and four done-callbacks per idle spell, ~10 µs); now
the loop awaits it directly and the stop cancels the loop's task while, and only while, it waits
(:meth:`IdleWait.cut`). That cancellation is taken back (``Task.uncancel``) so it never escapes the wait: a
cancellation of the worker from outside still propagates, whether it comes alone or together with the stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger


class IdleWait:
    """One pull loop's idle wait. :meth:`wait` from the loop's task; :meth:`cut` from anywhere on the loop."""

    __slots__ = ("_task", "_cut")

    def __init__(self) -> None:
        self._task: asyncio.Task[object] | None = None  #: the task waiting now (None: not waiting)
        self._cut = False  #: :meth:`cut` cancelled that task

    def cut(self) -> None:
        """End the wait in progress, if any (the worker stops). Does nothing when the loop is not waiting: it
        checks the stop itself before it waits again."""
        task = self._task
        if task is not None and not self._cut:
            self._cut = True
            task.cancel()

    async def wait(self, work: Awaitable[None]) -> None:
        """Await ``work`` (the puller's ``wait_for_work``) until it returns or :meth:`cut` ends it. Raises
        :class:`asyncio.CancelledError` only for a cancellation that did not come from :meth:`cut`."""
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        try:
            await work
        except asyncio.CancelledError:
            if not self._cut:
                raise
            self._cut = False
            if task.uncancel() > 0:  # cancelled from outside as well: that one goes on
                raise
        finally:
            self._task = None
            if self._cut:  # cut, but the wait returned (or swallowed it) first: take the cancellation back
                self._cut = False
                task.uncancel()


def pull_said(before: str | None, problem: str | None) -> str | None:
    """The pull loop's ``problem`` (None: pulls work) now that it was ``before``: logged when it starts (or changes)
    and when it ends, and returned to be ``before`` next time."""
    if problem != before:
        log.info("pulling works again") if problem is None else log.warning(
            "pull failed (retrying every second): %s", problem)
    return problem
