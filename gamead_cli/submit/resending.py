"""One step of a bulk ``gamead submit``'s resends (:func:`gamead_cli.submit.sending.send_many`): after a batch's
answer, whether its ads refused certainly unsent (:func:`gamead_cli.retry.resendable`) go again and when, or are
not sent again (the run's stop: ``notSent``), or are settled with their last answer (their own resends spent).
Pure but for :meth:`~gamead_cli.submit.outage.Outage.cut`, which records the outage's stop when it is due."""

from __future__ import annotations

from collections.abc import Mapping

from gamead_cli import retry
from gamead_cli.submit.outage import Outage


def next_try(outage: Outage, attempt: int, errors: list[Mapping[str, object]], own: float, now: float,
             stopping: bool) -> tuple[float | None, str]:
    """For the ads refused with ``errors`` after try ``attempt`` of their batch, whose own resends end at ``own``
    (the outage's clock, as ``now``; ``stopping``: the run's stop event is set): ``(wait, "")`` to send them again
    after ``wait`` s; ``(None, why)`` not to, ``why`` the words of their ``notSent`` items; ``(None, "")`` when
    their own resends ran out: the caller settles them with their last answer (rejected)."""
    wait = None if stopping else retry.next_wait(attempt, retry.ad_retry_after(list(errors)),
                                                 outage.resend_until(own) - now)
    return wait, (outage.cut(stopping) if wait is None else "")
