"""A delivery whose outcome was not written because the record was no longer its attempt's: what becomes of its
message, decided on the stream leader's copy of the record and said in one log line with the ad id.

Before attack40b F2 a record that was neither final nor a later delivery's left the message as it was, unsaid: a
replayed ad whose dead-lettering read a lagging replica's ``dead`` came back only after ``queue.ack_wait`` (30 s),
and the worker's log showed an analysis that never ended. Now nothing waits a whole ``ack_wait`` silently.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg

from gamead_core.errors import GameadError, error_text
from gamead_core.models import AdRecord
from gamead_core.store.ads import AdStore
from gamead_core.worker.budget import delivery_id, parse_delivery, superseded

log = logging.getLogger("gamead_core.worker.settle")  # the settler's logger, as before the split

#: the line's head when the ad is final or a later delivery runs it (tests and README quote it)
NOT_OURS = "ad %s: %s under delivery %s, but it is final or a later delivery runs it now: this outcome is not written"


def foreign_verdict(record: AdRecord, delivery: str) -> str:
    """What to do with the message of ``delivery`` whose outcome was not written, by ``record`` (the leader's copy):
    ``"ack"`` (final, or a later publish of the ad runs it: ours is an obsolete copy), ``"leave"`` (a later delivery
    of the same message runs it: its holder settles the message; a ``nak`` from us would hand it back under its
    holder, JetStream does not check the delivery count), ``"back"`` (nobody else will settle it: ``nak``). Pure."""
    if record.status.terminal:
        return "ack"
    if superseded(record, delivery):
        return "ack" if parse_delivery(record.delivery)[0] != parse_delivery(delivery)[0] else "leave"
    return "back"


#: what :func:`settle_unexpected` did, by verdict, as its caller's line says it (``delay``: the hand-back's seconds)
DONE = {"ack": "acknowledged: the ad is final, or a later publish of it runs it",
        "leave": "left to the later delivery of its message that runs the ad",
        "back": "handed back, due again in {delay:.1f}s",
        "unsent": "its reply to NATS was not sent: it comes back after queue.ack_wait"}


async def settle_foreign(store: AdStore, shielded: Callable[[Awaitable[Any]], Awaitable[Any]], msg: Msg, ad_id: str,
                         what: str, delay: float, *, say: bool = True) -> str:
    """Settle ``msg`` (ad ``ad_id``) whose outcome (``what``: "analysed", "failed", "dead-lettered") was not written:
    :func:`foreign_verdict` on the leader's record (a replica's may lag: attack40b F1/F2), ``nak(delay)`` (seconds)
    for ``"back"``. A record that cannot be read leaves the message to come back after ``queue.ack_wait``. Logs one
    line with the ad id and the delivery count as fields (``say`` False: the caller says it, :data:`DONE`); returns
    the verdict (``"unread"`` for an unreadable record). Raises what ``ack``/``nak`` raise (nats-py's: not sent)."""
    meta = msg.metadata
    delivery = delivery_id(meta.sequence.stream, meta.num_delivered or 1)
    # ``delivery``, as on every line of a delivery (handle.py's fields, README "Logs"), is the delivery count (a
    # number): the "<seq>.<count>" id is in the text (regress41b F3: "35.1" here broke jq's .delivery > 1)
    extra = {"ad_id": ad_id, "delivery": meta.num_delivered or 1}
    try:
        record = (await store.get(ad_id, consistent=True)).record
    except GameadError as exc:
        if not say:
            return "unread"
        log.warning("ad %s: %s under delivery %s, but its outcome was not written and its record cannot be read now "
                    "(%s): it comes back after queue.ack_wait", ad_id, what, delivery, error_text(exc), extra=extra)
        return "unread"
    verdict = foreign_verdict(record, delivery)
    if verdict == "back":
        await shielded(msg.nak(delay=delay))
        if not say:
            return verdict
        log.warning("ad %s: %s under delivery %s, but its outcome was not written and no later delivery runs it "
                    "(record %s, delivery %s): handed back, due again in %.1fs", ad_id, what, delivery,
                    record.status.value, record.delivery, delay, extra=extra)
        return verdict
    if verdict == "ack":
        await shielded(msg.ack())
    if not say:
        return verdict
    if verdict == "ack" and record.delivery == delivery:  # its own write landed, its answer did not (chaos47 F7)
        log.info("ad %s: %s under delivery %s: its outcome was written after all (record %s under this delivery; the "
                 "write's answer was lost): acknowledged", ad_id, what, delivery, record.status.value, extra=extra)
        return verdict
    log.info(NOT_OURS + " (record %s, delivery %s: %s)", ad_id, what, delivery, record.status.value, record.delivery,
             "acknowledged" if verdict == "ack" else "left to its holder", extra=extra)
    return verdict


async def settle_unexpected(store: AdStore, shielded: Callable[[Awaitable[Any]], Awaitable[Any]], msg: Msg, ad_id: str,
                            delay: float) -> str:
    """Settle ``msg`` (ad ``ad_id``) whose handling raised an error the worker has no rule for, as
    :func:`settle_foreign` would (on the leader's record: attack40b F2), quietly; one whose record cannot be read is
    handed back after ``delay`` seconds all the same, not left to ``queue.ack_wait``. A nak regardless (65d1a3e0)
    handed back a message a later delivery of it held: redelivered as delivery 3 while delivery 2 ran the ad
    (review41 F6). Returns what was done, a key of :data:`DONE`. Never raises."""
    try:
        done = await settle_foreign(store, shielded, msg, ad_id, "failed", delay, say=False)
        if done == "unread":
            await shielded(msg.nak(delay=delay))
            done = "back"
    except Exception:  # noqa: BLE001 - not sent (or after an ack: nats-py refuses): ack_wait brings it back
        done = "unsent"
    return done
