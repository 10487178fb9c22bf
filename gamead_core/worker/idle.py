"""The pull loop's idle wait (:class:`IdleWait`): the puller's wait for work awaited in the loop's own task, cut
short by the worker's stop (issue 14).

At a steady trickle of ads a worker goes idle after nearly every ad. The wait was a task of its own raced
against the stop with ``asyncio.wait`` (a task, a future and four done-callbacks per idle spell, ~10 µs); now
the loop awaits it directly and the stop cancels the loop's task while, and only while, it waits
(:meth:`IdleWait.cut`). That cancellation is taken back (``Task.uncancel``) so it never escapes the wait: a
cancellation of the worker from outside still propagates, whether it comes alone or together with the stop.

**How long its long polls wait** (:func:`poll_life`). An idle worker parks one pull request per level at
nats-server (:mod:`gamead_core.queue.long_poll`) for ``queue.idle_wait`` seconds. A worker frozen (SIGSTOP, a frozen
cgroup, a paused VM) keeps its parked polls, and nats-server gives them ads for as long as they live, which the
frozen process does not read: each waits the level consumer's ``ack_wait``. With ``registry.ttl`` short beside
``queue.idle_wait`` (ttl 3 s, idle_wait 5 s) the reaper judged a frozen worker dead while its polls still lived,
and the ad it charged and handed back (``nak``) went straight back into one of them (flake46: an ad of a worker
frozen mid-analysis still ``running`` 30 s later, its consumer's ack_wait 300 s, while another worker idled). So a
poll lives at most ``registry.ttl`` − 1.5 × ``registry.heartbeat_interval``: a worker frozen at F wrote its last
heartbeat at F − interval or later, so its entry expires at F − interval + ttl or later, and a poll it parked by F
is gone by F + ttl − 1.5 × interval, half an interval before (a heartbeat late by up to that on a loaded machine
still leaves the poll gone first; the reaper's round and the ``nak``'s backoff come after the expiry too). Never
below ``queue.idle_poll``: an idle worker looks again that often, and a shorter poll would leave levels unwatched
between looks. At the defaults (ttl 10 s, interval 2 s) the bound is 7 s: the polls live ``idle_wait`` (5 s) as
before; at ttl 3 s, interval 0.5 s, 2.25 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from gamead_core.config import GameadSettings, QueueSettings

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


def poll_life(idle_wait: float, idle_poll: float, ttl: float, heartbeat_interval: float) -> float:
    """Seconds a long poll waits at the server: ``idle_wait``, at most ``ttl − 1.5 × heartbeat_interval``, at least
    ``idle_poll`` (the module doc)."""
    return max(idle_poll, min(idle_wait, ttl - 1.5 * heartbeat_interval))


def puller_settings(settings: GameadSettings) -> QueueSettings:
    """``settings.queue`` with ``idle_wait`` cut to :func:`poll_life`: what the worker's puller runs with."""
    qs, reg = settings.queue, settings.registry
    life = poll_life(qs.idle_wait, qs.idle_poll, reg.ttl, reg.heartbeat_interval)
    return qs if life == qs.idle_wait else qs.model_copy(update={"idle_wait": life})
