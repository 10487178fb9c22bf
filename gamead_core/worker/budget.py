"""An ad's analysis budget, kept apart from JetStream's delivery count. Pure rules, no I/O.

JetStream counts *deliveries*; gamead charges *analysis attempts*. The two differ whenever a delivery is
lost for a reason that is not the ad's fault:

* our own storage failed (the record could not be written: the delivery never reached the analysis);
* the worker was shut down and handed the ad back;
* the worker died while the ad was in flight beside other ads (any one of them may have killed it).

So the level consumers have no delivery limit (``max_deliver = -1``) and the budget lives in the record:

* ``attempts`` is charged by the first record write of an attempt. Most analyses are short: their attempt
  is written once, with its outcome (``completed``, or ``queued`` for a retry, or ``dead``), carrying the
  charge (issue 14.2: one awaited KV write per completed ad). An analysis still running after
  ``worker.processing_mark_after`` seconds is marked ``processing`` (charged, naming its delivery) by a timer,
  so operators see it; a redelivery (``num_delivered > 1``), a suspect ad, or ``processing_mark_after: 0``
  writes that mark before the analysis starts (the *slow path*, as every attempt did before). A delivery
  whose read or mark fails because our storage failed is not charged.
* An attempt that dies unmarked (its worker crashed or was killed) left nothing in its record. The worker
  listed it in its heartbeat before it started (``holding``, flag ``started``; an unconfirmed registry put
  followed by the record read on the same connection, so the server has it first), and whoever recovers
  the dead worker (:mod:`gamead_core.worker.reaper`) charges it as :func:`held_state` ``started``. Chosen
  over charging from ``num_delivered`` minus recorded refunds because the reaper must tell the one ad a
  crash is attributable to from the innocent ones beside it anyway, and the heartbeat already carries the
  held ads. If nobody recovers the death (every watcher gone until the entry expired), the first crash
  is uncharged but the redelivery takes the slow path, so a second crash is charged by the record itself:
  a poison ad then ends dead after at most ``max_attempts + 1`` crashes instead of exactly
  ``max_attempts``.
* A shutdown hand-back refunds the attempt (the record goes back to ``queued`` before the ``nak``).
* When a worker dies, :func:`death_verdict` decides from the ads it was *running* (record ``processing``
  with this very delivery): exactly one running ad is charged (the crash is attributable to it); with more
  than one, none is charged and each becomes ``suspect``. A suspect ad runs alone on its next worker
  (:mod:`gamead_core.worker.solo`), so a crash then is attributable. A poison ad therefore ends dead after
  ``worker.max_attempts`` crashes of its own, and an innocent ad beside it loses nothing.
* A delivery that finds its record ``processing`` under an *older* delivery knows that attempt never
  ended (nobody saw its worker die): the attempt stays charged and the ad runs alone (suspect).
* A delivery that finds the budget spent (``attempts >= max_attempts``, record not final) dead-letters
  the ad at once: that is how an ad whose last attempt crashed ends in the DLQ.

A message can therefore never be past its consumer's delivery budget; "past its budget" is a property of
the record: :func:`budget_spent`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from gamead_core.models import AdError, AdRecord, AdStatus, utcnow

#: Share of the level consumer's ``ack_wait`` after a dead worker's last heartbeat during which nobody else can
#: have been given its ads yet (its lease renewals run every ack_wait / 3), so a ``nak`` on its ack subjects is safe.
NAK_WINDOW = 2.0 / 3.0


def delivery_id(stream_seq: int, num_delivered: int) -> str:
    """The identity of one delivery of one message: ``"<stream seq>.<delivery count>"``."""
    return f"{stream_seq}.{num_delivered}"


def parse_delivery(delivery: str | None) -> tuple[int, int]:
    """``"<seq>.<count>"`` → ``(seq, count)``; ``(0, 0)`` for None or anything else. Later deliveries of one
    ad compare greater: a higher count of the same message, or a message published later (a replay)."""
    try:
        seq, count = (delivery or "").split(".")
        return int(seq), int(count)
    except ValueError:
        return 0, 0


def superseded(record: AdRecord, delivery: str) -> bool:
    """True when the record names a *later* delivery than ``delivery``: the holder of ``delivery`` is stale
    (it was frozen or cut off while the ad was handed to someone else) and must not write the outcome."""
    if record.delivery is None:  # a fresh ad (the common case): no delivery to compare with
        return False
    return parse_delivery(record.delivery) > parse_delivery(delivery)


def lost_error(max_attempts: int, record: AdRecord) -> AdError:
    """The error an ad whose budget ran out without an outcome is dead-lettered with: the ``WorkerLost``
    its last attempt was charged with, or a new one. Its message says what the record holds: an ad charged more
    attempts than ``max_attempts`` (the setting lowered since, or a record not of the API's) is not called "the
    last of its 5" (attack31a F4)."""
    if record.error is not None and record.error.error_class == "WorkerLost":
        return record.error
    if record.attempts > max_attempts:
        what = (f"its last attempt ({record.attempts} charged, more than worker.max_attempts {max_attempts} allows "
                "now)")
    else:
        what = f"the last of its {max_attempts} attempt(s)"
    return AdError(
        error_class="WorkerLost",
        message=f"no outcome was recorded for {what} (its worker died or hung during it)",
        retryable=True,
        at=utcnow(),
    )


def budget_spent(record: AdRecord, max_attempts: int) -> bool:
    """True when a non-final ad has used every analysis attempt it may (its next stop is the DLQ)."""
    return not record.status.terminal and record.attempts >= max_attempts


def ends_unrun(record: AdRecord, delivery: str, max_attempts: int) -> bool:
    """True when ``record`` settles ``delivery`` without an analysis, as the worker's verdicts before it runs an ad
    do: final (acked, skipped), claimed by a later delivery (stale), dead-lettered or its budget spent (given up).
    Such a verdict drops the message or sends the ad to the DLQ, so the worker takes it only on the stream leader's
    copy of the record: a direct read may be a replica's that has not applied the newest write yet, and on an R3
    cluster 6 of 608 DLQ replays were acked as still ``dead`` and lost (attack40b F1: record ``queued`` for ever, no
    message). Pure."""
    return (record.status.terminal or superseded(record, delivery) or record.dead_letter_error is not None
            or budget_spent(record, max_attempts))


def lost_attempt(record: AdRecord, delivery: str) -> bool:
    """True when ``record`` says an *earlier* delivery started an analysis that never ended.

    The record is ``processing`` but under another delivery id: that delivery's worker died or froze, or
    lost its lease. The attempt stays charged; the ad becomes suspect and runs alone.
    """
    return (record.status == AdStatus.PROCESSING and record.delivery is not None
            and parse_delivery(record.delivery) < parse_delivery(delivery))


HeldState = Literal["running", "started", "waiting", "settled"]


def held_state(record: AdRecord, delivery: str, started: bool = False) -> HeldState:
    """What a dead worker's held delivery ``delivery`` of ``record`` was doing when it died.

    * ``running``: the record is ``processing`` under this delivery: its analysis had started (charged).
    * ``started``: the heartbeat flagged it ``started`` (``HeldAd.started``) and the record names no later
      or other running delivery: it may have been analysed unmarked (the fast path; not charged yet).
    * ``waiting``: pulled but not started (or waiting to run alone); the record is not final.
    * ``settled``: nothing to do: the ad is final, or this delivery already recorded its outcome (a retry
      or a hand-back), or a later delivery has started or settled it.
    """
    if record.status.terminal:
        return "settled"
    if record.delivery == delivery:
        return "running" if record.status == AdStatus.PROCESSING else "settled"
    if record.status == AdStatus.PROCESSING or superseded(record, delivery):  # a later delivery owns it
        return "settled"
    return "started" if started else "waiting"


def death_verdict(running: int) -> bool:
    """Whether the ads a dead worker was running are charged for its death: only when it ran exactly one
    (``running`` counts :func:`held_state` ``running`` and ``started``).

    With one running analysis the crash is attributable to that ad (or to the worker, which we cannot tell
    apart: a SIGKILL charges it, as a lost lease always did). With several, nobody is charged; each runs
    alone next time.
    """
    return running == 1


def nak_window_open(now: float, heartbeat_at: float, ack_wait: float, renew_every: float | None = None) -> bool:
    """True while a dead worker's ads cannot have been redelivered to anyone yet (a ``nak`` is safe).

    ``ack_wait``: seconds, the ``ack_wait`` of the consumer that delivered them
    (:mod:`gamead_core.worker.consumer_ack_wait`); ``renew_every``: seconds between the worker's lease renewals
    (``keepalive_period`` of the ``ack_wait`` its heartbeat announces, the live one it paced by; default
    ``ack_wait / 3``, never taken as less).
    Its last renewal was at most ``renew_every`` before it died, and it died after its last heartbeat;
    JetStream redelivers no earlier than ``ack_wait`` after the last renewal. A ``nak`` sent later could hit a
    newer delivery of the same message (JetStream does not check the delivery count of a ``nak``): then
    ``ack_wait`` has handed the ad back already.
    """
    if renew_every is not None and renew_every > ack_wait * (1 - NAK_WINDOW):  # it renewed less often
        return now < heartbeat_at + ack_wait - renew_every
    return now < heartbeat_at + NAK_WINDOW * ack_wait


def waiting_since(
    record: AdRecord, published: float, now: float, *, ack_wait: float, task_timeout: float, handed: bool = False
) -> float | None:
    """When (epoch s) a delivered, unacknowledged ad is or was due for redelivery; None while it is in a
    worker's hands. The aging input for ads JetStream will *redeliver* (``num_pending`` counts new ones only):

    * ``queued`` with ``retryAt``: a retry (``nak`` with a delay), a hand-back or a recovered ad: due at
      ``retryAt`` (which may still be ahead: its backoff is running);
    * ``processing`` for longer than ``task_timeout + ack_wait``: its worker stopped renewing the lease and
      JetStream redelivers it: due since then;
    * ``queued`` with no ``retryAt`` and ``handed`` (the asking worker handed it back for want of room,
      :mod:`gamead_core.worker.handback`): due since ``published``, its first publish (attack32b F1);
    * anything else is in a worker's hands (pulled, running) or final.

    ``published`` (the message's timestamp) stands in for a missing ``startedAt``.
    """
    if record.status == AdStatus.QUEUED:
        return _epoch(due_since(record)) if record.retry_at is not None else published if handed else None
    if record.status == AdStatus.PROCESSING:
        started = _epoch(record.started_at) if record.started_at is not None else published
        lost_at = started + task_timeout + ack_wait
        return lost_at if lost_at <= now else None
    return None


def due_since(record: AdRecord) -> datetime:
    """When ``record``'s ad last became due in the queue (aware datetime): the moment both the aging order and the
    queue-wait figures (``gamead_ad_wait_seconds``, ``/v1/stats`` ``latency.queueWaitMs``, ``top``'s WAIT P95:
    the attempt's ``startedAt`` minus this) count its wait from. The first that is set of

    * ``retryAt``: a retry's backoff ended, or a hand-back / recovery made it due (what :func:`waiting_since`
      ages a redelivery from);
    * ``replayedAt``: a DLQ replay published it anew (a new message, aged from its publish time by
      :func:`gamead_core.queue.aging.delivery_key`), so the time it lay dead in the DLQ is no queue wait
      (attack27 F3: a replay of last night's DLQ showed every level hours past its promised wait);
    * ``submittedAt``: a first delivery.

    A replay clears ``retryAt`` (``gamead_core.dlq_ops``), so the first set is also the latest. Pure."""
    return record.retry_at or record.replayed_at or record.submitted_at


def _epoch(at: datetime) -> float:
    return at.timestamp()
