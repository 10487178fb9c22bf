"""The Kubernetes backend's blocking calls, run one at a time in a daemon thread, each bounded in total time.

Why: the official client is synchronous, and its ``_request_timeout`` bounds each socket read, not a call. An API
server (or a proxy) answering a byte every 2 s kept one GET running for good: the autoscaler's tick never ended, it
logged nothing, its leader kept renewing the lease so no other node took over, ``gamead scale set`` was never
applied, and at SIGINT the process did not exit, the executor's thread stuck in the read (attack30b F5). A thread
cannot be stopped from outside, so :class:`CallThread`:

* waits for a call at most ``total`` seconds, then raises :class:`~gamead_core.errors.ScalerUnavailable` (``sent``:
  a write may have landed) and asks ``on_give_up`` to cut the call (the scaler shuts its socket down:
  :meth:`~gamead_core.scaling.capped_answers.CappedAnswers.abort`), so the thread ends;
* runs it in a daemon thread of its own (not the loop's executor: a stuck one of those blocks the interpreter's
  exit, and takes a slot of the pool DNS lookups use);
* makes no other call while one has not returned: each raises at once, saying which call and for how long
  (so at most one thread is ever stuck, and no write queues up behind it to land minutes later).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from gamead_core.errors import ScalerUnavailable

_T = TypeVar("_T")
#: seconds a call given up on and cut is given to end
CUT_WAIT = 1.0


class CallThread:
    """One blocking call at a time, off the event loop, each awaited at most its ``total`` seconds."""

    def __init__(self, *, on_give_up: Callable[[int | None], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        #: called with the thread's ident when its call is given up on: to cut it (close its socket) so it ends
        self._on_give_up = on_give_up
        self._clock = clock
        #: the call not returned yet: (what it is, when it started, clock s)
        self._running: tuple[str, float] | None = None

    async def run(self, what: str, fn: Callable[[], _T], total: float, *, sent: bool) -> _T:
        """``fn()`` in a daemon thread; its result, or what it raised. ``what``: the call in words for errors
        (``"get deployments/scale of ns/name"``); ``sent``: whether a call cut short may have been carried out.
        Raises :class:`ScalerUnavailable` after ``total`` seconds, and at once while an earlier call runs."""
        if self._running is not None:
            earlier, since = self._running
            raise ScalerUnavailable(
                f"the call to {earlier} started {self._clock() - since:.0f}s ago has not returned (the Kubernetes "
                f"API answers it slowly, or not at all); no other call is made until it does",
                answer="no call made: an earlier one has not returned")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_T] = loop.create_future()
        self._running = mine = (what, self._clock())

        def settle(error: BaseException | None, result: _T | None) -> None:  # on the loop, when fn returns
            if done.done():  # given up on (its time passed) or cancelled: nobody waits for it
                return
            if error is not None:
                done.set_exception(error)
            else:
                done.set_result(result)  # type: ignore[arg-type]

        def work() -> None:
            error: BaseException | None = None
            result: _T | None = None
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task as it is
                error = exc
            if self._running is mine:  # here, not on the loop: that loop may be gone (asyncio.run ended)
                self._running = None
            try:
                loop.call_soon_threadsafe(settle, error, result)
            except RuntimeError:  # the loop closed meanwhile (the process stopping): nobody waits
                pass

        thread = threading.Thread(target=work, name=f"gamead-kubernetes {what}", daemon=True)
        thread.start()
        try:
            return await asyncio.wait_for(asyncio.shield(done), total)
        except TimeoutError:
            if self._on_give_up is not None:
                self._on_give_up(thread.ident)
                with contextlib.suppress(Exception):  # its outcome is moot; a thread that cannot be cut is left
                    await asyncio.wait_for(asyncio.shield(done), CUT_WAIT)  # (a daemon thread still running Python
                    # as the interpreter exits can abort the process)
            raise ScalerUnavailable(
                f"the call to {what} did not end within {total:g}s (an answer still coming, a byte at a time?); "
                f"it was cut", sent=sent) from None
