"""Why a delivery follows an earlier one of the same message (``num_delivered`` > 1), and the line that says so.

``gamead_redeliveries_total`` counted redeliveries, but nothing said why one happened (attack40b F4: a delivery
lost between nats-server and the worker waited ``queue.ack_wait``, 30 s, and came back with no line at all). The
record, the message's metadata, nats-server's announced hand-backs (:mod:`gamead_core.worker.naks_seen`) and this
worker's own tell (:func:`why_redelivered`, pure):

* ``running``: the record is ``processing`` (under an earlier delivery: that attempt never ended, or it still runs
  on a live worker: :meth:`Redeliveries.holder_wait` tells and says which; under a later one: the handler leaves
  the message to it). No line of its own.
* ``recorded``: the record names the delivery just before this one, which ended there: a failed attempt handed
  back with its back-off (``retryAt``), a shutdown's hand-back (refunded), a recovery. Normal: DEBUG.
* ``final``: the record names the delivery just before this one and is final (or dead-lettered): that delivery's
  acknowledgement never reached NATS, so ``ack_wait`` brought the message back; it is acknowledged now. INFO.
* ``handed_back``: this worker handed the message back unstarted (no room: :mod:`gamead_core.worker.handback`,
  whose line names the ad). Normal: DEBUG.
* ``nak``: nothing recorded, but a worker handed the delivery before this one back: nats-server announced its
  ``nak``, or it came back sooner than ``ack_wait`` after the earliest moment that delivery can have been made (the
  message's store, or the last attempt the record names), which only a ``nak`` does. Normal: DEBUG.
* ``lost``: nothing recorded, no ``nak`` seen, and ``ack_wait`` or more since that moment: the earlier delivery
  was lost in flight (never reached a worker), or its worker died, froze or was too busy to take it within
  ``ack_wait`` (an acknowledgement lost after the outcome leaves a final record: ``final``). One WARNING
  (:func:`say`), :data:`NAK_GRACE` s after the redelivery unless the ``nak`` is announced meanwhile (nats-server
  sends the advisory before it puts the message back, but on another of its queues), with the ad id, the
  delivery count, the seconds since the message was stored and since the last attempt the record names, and
  the ``ack_wait`` it waited.
* ``unseen``: as ``lost``, but this worker began hearing the ``nak`` announcements after the earliest moment that
  delivery can have been made (it started since): a hand-back before then, a stopping worker's, is not known here.
  INFO (chaos47 F3: the first worker back after a spell with none called every ad handed back meanwhile lost).

The record's ``delivery`` (``"<seq>.<count>"``, shown by ``gamead ads get``) already says that an attempt ran at
a redelivery: no second place holds it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from nats.aio.msg import Msg

from gamead_core import clock
from gamead_core.models import AdRecord, AdStatus
from gamead_core.registry import Registry
from gamead_core.worker.budget import parse_delivery
from gamead_core.worker.holder import holder_of
from gamead_core.worker.naks_seen import NaksSeen

log = logging.getLogger("gamead_core.worker.runtime")  # the worker's own logger, as handle.py's

#: () → a worker's hand-backs for want of room: (stream, stream seq) → ``time.monotonic()`` of the hand-back
Handed = Callable[[], Mapping[tuple[str, int], float]]
Why = Literal["running", "recorded", "final", "handed_back", "nak", "lost", "unseen"]

#: Seconds a redelivery may seem to come early and still be taken as ``ack_wait``'s: the clocks compared (the
#: message's stored stamp, this process's view of nats-server's clock: :mod:`gamead_core.clock`) agree within
#: half a round trip, milliseconds; the margin keeps a loss from being called a ``nak`` by that error.
CLOCK_SLACK = 0.25
#: Seconds a ``lost`` verdict's line waits for the ``nak`` advisory of the delivery before (it may come just after)
NAK_GRACE = 1.0


@dataclass(frozen=True)
class Redelivery:
    """Why delivery ``count`` of a message came (:data:`Why`); ``stored_ago``: seconds since the message was
    stored; ``since``: seconds since the earliest moment the delivery before this one can have been made (the
    store, the last attempt the record names, this worker's hand-back); ``earlier``: the delivery the record
    names (``"<seq>.<count>"``, None: none)."""

    why: Why
    count: int
    stored_ago: float
    since: float
    earlier: str | None


def why_redelivered(record: AdRecord, *, seq: int, count: int, stored_at: float, now: float, ack_wait: float,
                    handed_ago: float | None = None, naked: int | None = None,
                    listening_since: float | None = None) -> Redelivery:
    """Why delivery ``count`` (> 1) of the message at stream sequence ``seq``, stored at ``stored_at`` (Unix s,
    nats-server's clock), came at ``now`` (the same clock), given the ad's ``record`` as read at this delivery, the
    level consumer's ``ack_wait`` (seconds), ``handed_ago``: seconds since this worker handed this message back
    unstarted (None: it did not), ``naked``: the delivery count of its last ``nak`` nats-server announced
    (None: none seen), and ``listening_since``: since when (the same clock) this worker hears those announcements
    (None: not known). The rules are the module's; a delivery that would be ``lost`` but may have been handed back
    before this worker listened is ``unseen`` (chaos47 F3: after a spell with no worker, the first back called every
    ad handed back meanwhile lost). Pure."""
    stored_ago = max(0.0, now - stored_at)
    if record.status == AdStatus.PROCESSING:  # lost attempt, live holder, later claim: the handler's lines
        return Redelivery("running", count, stored_ago, stored_ago, record.delivery)
    earlier_seq, earlier_count = parse_delivery(record.delivery)
    mine = earlier_seq == seq and 0 < earlier_count < count  #: the record names an earlier delivery of this message
    latest = stored_at  #: the earliest moment the delivery before this one can have been made
    if mine:
        for at in (record.started_at, record.retry_at):
            if at is not None:
                latest = max(latest, at.timestamp())
    since = max(0.0, now - latest)
    if mine and earlier_count == count - 1:
        return Redelivery("final" if record.status.terminal else "recorded", count, stored_ago, since, record.delivery)
    if handed_ago is not None:
        return Redelivery("handed_back", count, stored_ago, min(since, handed_ago), record.delivery)
    why: Why = "lost" if since >= ack_wait - CLOCK_SLACK and naked != count - 1 else "nak"
    if why == "lost" and listening_since is not None and listening_since > latest:
        why = "unseen"
    return Redelivery(why, count, stored_ago, since, record.delivery)


def say(seen: Redelivery, ad_id: str, ack_wait: float) -> None:
    """The line of a redelivery (:func:`why_redelivered`): WARNING for ``lost``, INFO for ``final``, DEBUG for the
    normal ones, none for ``running`` (the handler says that one). JSON fields: ``redelivery`` (the why),
    ``deliveries`` (the count), ``stored_ago_s``, ``since_s``, ``earlier_delivery``, ``ack_wait_s``."""
    if seen.why == "running":
        return
    extra = {"ad_id": ad_id, "redelivery": seen.why, "deliveries": seen.count,
             "stored_ago_s": round(seen.stored_ago, 3), "since_s": round(seen.since, 3),
             "earlier_delivery": seen.earlier, "ack_wait_s": ack_wait}
    if seen.why == "lost":
        after = f", {seen.since:.1f}s after its attempt under {seen.earlier}" if seen.since < seen.stored_ago else ""
        log.warning("ad %s: delivered again (delivery %d, %.1fs after its message was stored%s) with no attempt "
                    "recorded for its earlier delivery and no hand-back (nak) of it: that delivery was lost on its way "
                    "to a worker, or its worker died, froze or was too busy to take it, and queue.ack_wait (%gs) "
                    "brought it back",
                    ad_id, seen.count, seen.stored_ago, after, ack_wait, extra=extra)
    elif seen.why == "unseen":
        log.info("ad %s: delivered again (delivery %d, %.1fs after its message was stored) with no attempt recorded "
                 "for its earlier delivery; a hand-back (nak) of it before this worker listened for them (it started "
                 "since) is not known here: handed back by a worker that stopped, or lost on its way and brought back "
                 "by queue.ack_wait (%gs)", ad_id, seen.count, seen.stored_ago, ack_wait, extra=extra)
    elif seen.why == "final":
        log.info("ad %s: delivered again (delivery %d) though its record says delivery %s ended it: that delivery's "
                 "acknowledgement did not reach NATS, so queue.ack_wait (%gs) brought it back", ad_id, seen.count,
                 seen.earlier, ack_wait, extra=extra)
    elif log.isEnabledFor(logging.DEBUG):
        log.debug("ad %s: delivered again (delivery %d): %s", ad_id, seen.count, _NORMAL[seen.why], extra=extra)


_NORMAL = {"recorded": "its earlier delivery ended as the record says (a retry, a hand-back)",
           "handed_back": "this worker handed it back unstarted",
           "nak": "a worker handed it back (a nak)"}


class Redeliveries:
    """A worker's view of its redeliveries: ``ack_wait`` (() → seconds: the level consumers' live value, the
    keep-alive's), ``handed`` (its hand-backs for want of room, :meth:`~gamead_core.worker.handback.HandBacks.handed`;
    None: none), ``registry`` (where a live holder of a delivery the record names as running is looked up; None: none
    is) and ``holder_wait`` (seconds a delivery waits beside such a holder: ``registry.heartbeat_interval``). Call
    :meth:`seen` at each redelivery."""

    def __init__(self, ack_wait: Callable[[], float], handed: Handed | None = None, *,
                 registry: Registry | None = None, holder_wait: float = 2.0) -> None:
        self._ack_wait = ack_wait
        self._handed = handed or (lambda: {})
        self._registry, self._holder_wait = registry, holder_wait
        self.naks = NaksSeen()  #: nats-server's nak advisories (started on the worker's connection: .start)

    async def holder_wait(self, record: AdRecord, delivery: str) -> float | None:
        """For ``delivery`` of an ad whose ``record`` is ``processing`` under an earlier delivery
        (:func:`~gamead_core.worker.budget.lost_attempt`): the seconds to put it back for while a live worker holds
        that delivery (:func:`~gamead_core.worker.holder.holder_of`, attack31a F10; said at INFO), else None: that
        attempt never ended, said at WARNING (the one charge an operator cannot otherwise trace, issue I5): it stays
        charged and the ad runs alone. One registry read."""
        ad_id = record.id
        if (holder := await holder_of(self._registry, record)) is not None:
            log.info("ad %s: another delivery of this ad (%s) is running on %s: this one (%s) waits %.1fs and looks "
                     "again", ad_id, record.delivery, holder, delivery, self._holder_wait, extra={"ad_id": ad_id})
            return self._holder_wait
        log.warning("ad %s: its attempt under delivery %s (worker %s) never ended and no recovery of that worker "
                    "(dead, frozen or too slow) reached it first: the attempt stays charged (%d so far); it runs "
                    "alone", ad_id, record.delivery, record.worker_id, record.attempts,
                    extra={"ad_id": ad_id, "lost_delivery": record.delivery})
        return None

    def seen(self, msg: Msg, record: AdRecord, ad_id: str) -> Redelivery:
        """Judge and say the redelivery ``msg`` of ``ad_id`` (``record``: as read at it): :func:`why_redelivered`,
        :func:`say` (a ``lost`` one :data:`NAK_GRACE` s later, unless its ``nak`` is announced meanwhile: then a
        ``nak`` one). A message without a stored time stamp is judged as stored now."""
        meta, now = msg.metadata, clock.now()
        key = (meta.stream, meta.sequence.stream)
        back, ack_wait = self._handed().get(key), self._ack_wait()
        seen = why_redelivered(record, seq=key[1], count=meta.num_delivered or 1,
                               stored_at=meta.timestamp.timestamp() if meta.timestamp is not None else now, now=now,
                               ack_wait=ack_wait, handed_ago=None if back is None else time.monotonic() - back,
                               naked=self.naks.naked(*key), listening_since=self.naks.since)
        if seen.why == "lost":  # the callback runs in a copy of this context: the ad's log fields
            asyncio.get_running_loop().call_later(NAK_GRACE, self._say_lost, seen, key, ad_id, ack_wait)
        else:
            say(seen, ad_id, ack_wait)
        return seen

    def _say_lost(self, seen: Redelivery, key: tuple[str, int], ad_id: str, ack_wait: float) -> None:
        if self.naks.naked(*key) == seen.count - 1:  # its nak was announced just after the redelivery
            seen = Redelivery("nak", seen.count, seen.stored_ago, seen.since, seen.earlier)
        say(seen, ad_id, ack_wait)


__all__ = ["CLOCK_SLACK", "NAK_GRACE", "Handed", "Redeliveries", "Redelivery", "Why", "say", "why_redelivered"]
