"""Small hooks around the handling of one ad, in the way dramatiq's middleware wraps a message.

A :class:`Hook` overrides only what it needs; every method is a no-op by default. The worker calls, for each
delivery it pulled::

    before_delivery(d)                       the message was pulled; its record is not read yet
        around_attempt(record, call)         wraps the analysis (outermost hook first): a time limit
            before_attempt(record)           just before the analysis: fault injection
            … the analysis …
        after_attempt(record, outcome)       the classified outcome (:class:`Analysis` or :class:`Failure`)
    after_delivery(d)                        always, however the delivery ended (settled, handed back, crashed)

What a hook raises from ``before_attempt``/``around_attempt`` is the attempt's failure, classified as any error
of the analysis is (:func:`classify`: :class:`PermanentError` dead-letters, :class:`RetryableError` and anything
else retries). What it raises from the other hooks is logged and ignored: as in dramatiq, a failing hook
is never fatal to the ad or the worker.

The worker's own hooks: :class:`gamead_core.worker.keepalive.AckWaitKeepAlive` (the ack-wait extension),
:class:`gamead_core.worker.timelimit.TimeLimit` (``worker.task_timeout``) and
:class:`gamead_core.worker.faults.FaultInjection` (``worker.faults``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg

from gamead_core.errors import PermanentError, RetryableError, error_text
from gamead_core.models import AdRecord, Analysis

log = logging.getLogger(__name__)

Analyse = Callable[[], Awaitable[Analysis]]


@dataclass(frozen=True, slots=True)
class Delivery:
    """One pulled message: its stream sequence, JetStream delivery id (``<seq>.<n>``) and the ad id header."""

    msg: Msg
    seq: int
    delivery: str
    ad_id: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt, classified."""

    error_class: str
    message: str
    retryable: bool
    delay: float | None = None  #: a delay the failure asked for (seconds), instead of the computed backoff


def classify(exc: Exception) -> Failure:
    """The :class:`Failure` of an attempt that raised ``exc``: permanent for :class:`PermanentError`, retryable
    (with its ``delay``) for :class:`RetryableError`, retryable for any other (unknown) exception."""
    if isinstance(exc, PermanentError):
        return Failure(type(exc).__name__, exc.message, retryable=False)
    if isinstance(exc, RetryableError):
        return Failure(type(exc).__name__, exc.message, retryable=True, delay=exc.delay)
    return Failure(type(exc).__name__, error_text(exc), retryable=True)


class Hook:
    """Base of the worker's hooks: every method does nothing. See the module doc for when each runs."""

    async def on_start(self) -> None:
        """The worker is about to pull its first ad."""

    async def before_delivery(self, delivery: Delivery) -> None:
        """A message was pulled (its record is not read yet)."""

    async def after_delivery(self, delivery: Delivery) -> None:
        """The delivery ended: settled, handed back, or abandoned after an error. Always called."""

    async def before_attempt(self, record: AdRecord) -> None:
        """The analysis of ``record`` (already marked ``processing``) is about to run; raise to fail it."""

    async def around_attempt(self, record: AdRecord, call: Analyse) -> Analysis:
        """Wrap the attempt (``before_attempt`` hooks and the analysis): ``return await call()``."""
        return await call()

    async def after_attempt(self, record: AdRecord, outcome: Analysis | Failure) -> None:
        """The attempt ended with ``outcome``; its result is not written yet."""


class Hooks:
    """The worker's hooks, in order (the first one's ``around_attempt`` is the outermost)."""

    def __init__(self, hooks: Sequence[Hook]) -> None:
        self.hooks = tuple(hooks)
        #: per method, only the hooks that override it (the base's no-ops cost a coroutine each, per ad)
        self._overriding: dict[str, tuple[Hook, ...]] = {
            name: tuple(h for h in self.hooks if getattr(type(h), name) is not getattr(Hook, name))
            for name in ("on_start", "before_delivery", "after_delivery", "before_attempt", "around_attempt",
                         "after_attempt")
        }
        self._before_delivery = self._overriding["before_delivery"]
        self._after_delivery = self._overriding["after_delivery"]

    async def _each(self, name: str, *args: object) -> None:
        for hook in self._overriding[name]:
            try:
                await getattr(hook, name)(*args)
            except Exception:  # noqa: BLE001 - a failing hook is logged, never fatal
                log.exception("worker hook %s.%s failed", type(hook).__name__, name)

    async def on_start(self) -> None:
        await self._each("on_start")

    # the two of every delivery: the loop of _each inlined (one coroutine and a getattr fewer each, per ad)
    async def before_delivery(self, delivery: Delivery) -> None:
        for hook in self._before_delivery:
            try:
                await hook.before_delivery(delivery)
            except Exception:  # noqa: BLE001 - a failing hook is logged, never fatal
                log.exception("worker hook %s.before_delivery failed", type(hook).__name__)

    async def after_delivery(self, delivery: Delivery) -> None:
        for hook in self._after_delivery:
            try:
                await hook.after_delivery(delivery)
            except Exception:  # noqa: BLE001 - a failing hook is logged, never fatal
                log.exception("worker hook %s.after_delivery failed", type(hook).__name__)

    async def attempt(self, record: AdRecord, analyse: Callable[[AdRecord], Awaitable[Analysis]]) -> Analysis | Failure:
        """Run one analysis attempt through the hooks; never raises (but for cancellation): the outcome is
        the :class:`Analysis` or the :class:`Failure` (:func:`classify`)."""

        befores = self._overriding["before_attempt"]

        async def run() -> Analysis:
            for hook in befores:
                await hook.before_attempt(record)
            return await analyse(record)

        # no before_attempt hook (the worker's own, faults off): the analysis itself, one coroutine less per ad
        call: Analyse = run if befores else functools.partial(analyse, record)
        for hook in reversed(self._overriding["around_attempt"]):
            call = functools.partial(hook.around_attempt, record, call)
        outcome: Analysis | Failure
        try:
            outcome = await call()
        except Exception as exc:  # noqa: BLE001 - unknown errors are retried, then dead-lettered
            outcome = classify(exc)
        if self._overriding["after_attempt"]:  # none of the worker's own: no coroutine per ad for nothing
            await self._each("after_attempt", record, outcome)
        return outcome
