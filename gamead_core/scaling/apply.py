"""The autoscaler's *apply* step: one scale call through the backend and what came of it (:func:`apply_replicas`).

A call that failed before it went out did not happen. One that went out and whose answer does not say whether it
was carried out (a timeout, a connection reset, a 5xx such as ``etcdserver: request timed out``, a 2xx that is not
JSON: :class:`~gamead_core.errors.ScalerUnavailable` with ``sent``) may have landed all the same, so the count is
read back, again after short waits (:data:`SETTLE_SECONDS`) while it reads a count other than the asked one (a
write held in the API server lands late): the Deployment at the asked count is *applied* (and uses the step limits),
any other count is *not applied* — ``in_doubt`` all the same, as it may land later still (the loop then names it
and counts its step: :class:`~gamead_core.scaling.loop.Autoscaler`). When the read fails too (and no earlier read
showed another count) the outcome is *unknown*: recorded as such (``applied: null``), never as "not applied", and
not counted as a scale event. A call refused with 409 Conflict (:class:`~gamead_core.errors.ScalerConflict`) is
one the backend already sent again while only the Deployment's status had moved; what it raises did nothing, for
sure: the count changed since it was read (an outside change), or every attempt was refused. *Not applied*, not in
doubt, nothing read back, and no error: not a failure to back off from (the note says why); the next tick reads the
count again and decides from it.

A scale-down through a backend that can (``kubernetes``) first marks the pods to go (:mod:`.removal`: quiet workers
first, then the idlest; one PATCH each, all within one call's time) and says which in the note (``removes first:
gamead-worker-…-x2 (quiet-1, quiet)``), or why it could not: the scale call is made either way. The ``local``
backend (``gamead up``) picks the workers it stops by the same rule, given the workers' entries (:mod:`.local_stops`:
unhealthy ones first), and the note says which: ``stops local-1 (quiet)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from gamead_core import clock
from gamead_core.errors import ScalerConflict, ScalerUnavailable, error_text
from gamead_core.registry.wire import NodeInfo
from gamead_core.scaling.local import LocalScaler, NoneScaler, Scaler
from gamead_core.scaling.local_stops import stops_note
from gamead_core.scaling.removal import removal_note, to_remove

log = logging.getLogger(__name__)

#: Waits (seconds) before reading the count back again while it does not show a sent call's count yet.
SETTLE_SECONDS = (0.5, 1.0, 2.0)
#: PATCHes one Kubernetes scale call sends at most (:meth:`~gamead_core.scaling.kubernetes.KubernetesScaler.
#: set_replicas`): each 409 whose fresh read shows the count the decision was made on is sent once more.
SCALE_ATTEMPTS = 3
#: ``request_timeout``\ s one Kubernetes HTTP call may take before it is given up on: a connect and a read
CALL_TIMEOUTS = 2
#: ``apply_replicas``'s ``workers`` when not given: it marks no pod before a scale-down
NO_MARKS: Any = object()
#: Appended to the reason of a call refused with 409 Conflict because the count changed (``{now}``: the new count).
CONFLICT_NOTE = (" (not applied: the count changed to {now} since it was read, outside the autoscaler (409 Conflict); "
                 "decided again next tick)")
#: Appended to the reason of a call whose every attempt was refused with 409 Conflict at the same count.
CONFLICT_RETRIED_NOTE = (" (not applied: the Deployment kept changing (409 Conflict to each attempt) though its count "
                         "did not; tried again next tick)")


def tick_calls_seconds(request_timeout: float) -> float:
    """The longest a tick's Kubernetes calls can take, ``request_timeout`` (s) per connect and per read, each call
    given up on at :data:`CALL_TIMEOUTS` of them (:class:`~gamead_core.scaling.call_thread.CallThread`): the GET of
    the count, a scale-down's pod marks (one call's time in all), a scale call's PATCHes and the reads between them
    (2 × :data:`SCALE_ATTEMPTS` − 1), and after a call in doubt the read-back, once more after each wait of
    :data:`SETTLE_SECONDS`: 11 calls and 3.5 s, 113.5 s at the default 5 s. What ``gamead scale status`` allows a
    leader before calling its state stale (review30 F12). Pure."""
    calls = 1 + 1 + (2 * SCALE_ATTEMPTS - 1) + 1 + len(SETTLE_SECONDS)
    return CALL_TIMEOUTS * request_timeout * calls + sum(SETTLE_SECONDS)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one scale call did. ``applied``: True (the backend runs the asked count), False (it does not),
    None (unknown); ``running``: the replica count after the call (None: unknown); ``error``: the backend's
    message when the call failed (the caller retries later); ``note``: to append to the decision's reason;
    ``in_doubt``: the call went out and was not seen to land, so it may land later."""

    applied: bool | None
    running: int | None
    error: str | None = None
    note: str = ""
    in_doubt: bool = False


async def apply_replicas(backend: Scaler, current: int, desired: int, *,
                         settle: Sequence[float] = SETTLE_SECONDS, workers: Any = NO_MARKS) -> Outcome:
    """Set ``desired`` replicas through ``backend`` (``current`` run now; equal counts: no call). A call that may
    have landed is read back, then again after each wait of ``settle`` (seconds) while the count differs. A
    scale-down through a backend that marks pods first marks those of ``workers`` (the registry's entries; None:
    unread; :data:`NO_MARKS`, the default: marks none) to go (module doc). Never raises a backend's error: it is in
    the outcome."""
    if desired == current:
        return Outcome(True, current)
    if isinstance(backend, NoneScaler):
        return Outcome(False, current, note=" (backend none: advice only, not applied)")
    mark = getattr(backend, "mark_for_removal_async", None)
    marked = await _mark_first(mark, workers, current - desired) \
        if mark is not None and desired < current and workers is not NO_MARKS else ""
    outcome = await _apply(backend, current, desired, settle, None if workers is NO_MARKS else workers)
    return dataclasses.replace(outcome, note=marked + outcome.note) if marked else outcome


async def _mark_first(mark: Any, workers: Iterable[NodeInfo] | None, count: int) -> str:
    """Mark the pods of ``count`` of ``workers`` to go first through ``mark``; the note that says which. Never
    raises."""
    if workers is None:
        return " (the workers could not be read: Kubernetes picks which pods go)"
    marks = to_remove(workers, count, clock.now())
    if not marks:
        return removal_note([], count)
    try:
        done, failed = await mark(marks)
    except Exception as exc:  # noqa: BLE001 - the scale-down goes on: Kubernetes picks which pods go
        done, failed = [], error_text(exc)
    if failed:
        log.warning("autoscaler: could not mark the pods a scale-down removes first: %s", failed)
    return removal_note(done, count, failed)


async def _apply(backend: Scaler, current: int, desired: int, settle: Sequence[float],
                 workers: Iterable[NodeInfo] | None) -> Outcome:
    """The scale call of :func:`apply_replicas` and what came of it (a local backend's stops by ``workers``)."""
    try:
        if isinstance(backend, LocalScaler):  # it stops the quiet, then the idlest first (.local_stops)
            return Outcome(True, desired, note=stops_note(await backend.set_replicas_async(desired, workers)))
        await backend.set_replicas_async(desired)
        return Outcome(True, desired)
    except Exception as exc:  # noqa: BLE001 - recorded and retried by the caller, never raised
        error = error_text(exc)
        if isinstance(exc, ScalerConflict):
            now = exc.replicas_now
            if now is None:  # not read again: nothing known of the count (a failure, then)
                return Outcome(False, current, error, " (not applied: 409 Conflict, and the count could not be read "
                                                      "again)")
            return Outcome(False, current, None, CONFLICT_NOTE.format(now=now) if now != exc.replicas_read
                           else CONFLICT_RETRIED_NOTE)
        if not (isinstance(exc, ScalerUnavailable) and exc.sent):
            return Outcome(False, current, error)
        answer = exc.answer
    shows: int | None = None
    read_error = ""
    for wait in (0.0, *settle):
        if wait:
            await asyncio.sleep(wait)
        try:
            shows = await backend.current_replicas_async()
        except Exception as exc:  # noqa: BLE001 - the API is failing reads too: waiting on it says no more
            read_error = error_text(exc)
            break
        if shows == desired:
            return Outcome(True, desired, note=f" ({answer}, but the count read back is {shows})")
    if shows is None:
        return Outcome(None, None, f"{error}; reading the count back failed too: {read_error}",
                       f" (outcome unknown: {answer}, and the count could not be read back)", in_doubt=True)
    return Outcome(False, shows, error, f" ({answer}; the count read back is {shows}: not applied)", in_doubt=True)


__all__ = ["CALL_TIMEOUTS", "CONFLICT_NOTE", "CONFLICT_RETRIED_NOTE", "NO_MARKS", "SCALE_ATTEMPTS", "SETTLE_SECONDS",
           "Outcome", "apply_replicas", "tick_calls_seconds"]
