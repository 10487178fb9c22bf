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
    after ``wait`` s, or to look again then; ``(None, why)`` not to, ``why`` the words of their ``notSent`` items
    (the run's stop, or the outage's stop time come: :meth:`Outage.cut`); ``(None, "")`` when their own resends
    ran out and no outage is under way: the caller settles them with their last answer (rejected).

    While an outage is under way its stop bounds the wait: a wait that would end past it ends at it, and one that
    does not fit the time left (``retryAfter`` or the back-off longer than it) waits for it instead of giving up
    (outage46: 50 ads refused ``storage_failing`` 0.2 s before the stop were counted ``rejected``, never judged by
    the API; an outage turned "unreachable" kept only the batch's own bound, alike); past their own bound they
    go again after each back-off, not only at the stop (review47 F8). The caller looks again after the wait
    (``Outage.cut``): the stop come, the ads are not sent; the outage over, they go."""
    cut = outage.cut(stopping)  # the run's stop, or the outage's: "" when neither (not a stop, not yet due)
    if cut:
        return None, cut
    wait = retry.outage_wait(attempt, retry.ad_retry_after(list(errors)), outage.resend_until(own) - now,
                             outage.left())  # an outage under way: never None (never settled), never blind to it
    return wait, ""


def own_end(errors: list[Mapping[str, object]], chunk_end: float, last_taken: float, retry_for: float) -> float:
    """When the own resends of ads refused with ``errors`` end: their chunk's (``chunk_end``: its start +
    ``client.retry_for``), or, all refused ``rate_limited``, ``retry_for`` after the run's last ad taken
    (``last_taken``) when that is later: the API takes ads, the run outpaces its limit (attack46 F2: at --rate 1000
    over a limit of 300/s, 58 of 4,000 ads ended rejected, their chunk's 10 s spent while the run's other batches
    took the tokens). Pure."""
    paced = bool(errors) and all(e.get("code") == "rate_limited" for e in errors)
    return max(chunk_end, last_taken + retry_for) if paced else chunk_end
