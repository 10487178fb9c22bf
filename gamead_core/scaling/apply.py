"""The autoscaler's *apply* step: one scale call through the backend and what came of it (:func:`apply_replicas`).

A call that failed before it went out did not happen. One that went out with no answer back (a timeout, a
connection reset: :class:`~gamead_core.errors.ScalerUnavailable` with ``sent``) may have landed all the same, so
the count is read back and what it shows counts: the Deployment at the asked count is *applied* (and uses the
step limits), any other count is *not applied*. When that read fails too the outcome is *unknown*: recorded as
such (``applied: null``), never as "not applied", and not counted as a scale event.
"""

from __future__ import annotations

from dataclasses import dataclass

from gamead_core.errors import ScalerUnavailable, error_text
from gamead_core.scaling.local import NoneScaler, Scaler


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one scale call did. ``applied``: True (the backend runs the asked count), False (it does not),
    None (unknown); ``running``: the replica count after the call (None: unknown); ``error``: the backend's
    message when the call failed (the caller retries later); ``note``: to append to the decision's reason."""

    applied: bool | None
    running: int | None
    error: str | None = None
    note: str = ""


async def apply_replicas(backend: Scaler, current: int, desired: int) -> Outcome:
    """Set ``desired`` replicas through ``backend`` (``current`` run now; equal counts: no call). Never raises
    a backend's error: it is in the outcome."""
    if desired == current:
        return Outcome(True, current)
    if isinstance(backend, NoneScaler):
        return Outcome(False, current, note=" (backend none: advice only, not applied)")
    try:
        await backend.set_replicas_async(desired)
        return Outcome(True, desired)
    except Exception as exc:  # noqa: BLE001 - recorded and retried by the caller, never raised
        error = error_text(exc)
        if not (isinstance(exc, ScalerUnavailable) and exc.sent):
            return Outcome(False, current, error)
    try:
        shows = await backend.current_replicas_async()
    except Exception as exc:  # noqa: BLE001
        return Outcome(None, None, f"{error}; reading the count back failed too: {error_text(exc)}",
                       " (outcome unknown: no answer to the call, and the count could not be read back)")
    if shows == desired:
        return Outcome(True, desired, note=f" (no answer to the call, but the count read back is {shows})")
    return Outcome(False, shows, error, f" (no answer to the call; the count read back is {shows}: not applied)")


__all__ = ["Outcome", "apply_replicas"]
