"""The deliveries one worker holds (pulled, not yet settled): what its heartbeat lists as ``holding``.

Each entry is a :class:`~gamead_core.registry.HeldAd`; its ``started`` flag says the delivery may be analysed
without a ``processing`` mark in its record (the fast path of :mod:`gamead_core.worker.handle`), so that
whoever recovers the worker after its death counts it as running (:func:`gamead_core.worker.budget.held_state`).
No I/O: the worker announces the ledger (an unconfirmed registry put) after every change that matters.
"""

from __future__ import annotations

from collections.abc import KeysView

import orjson
from nats.aio.msg import Msg

from gamead_core import names
from gamead_core.registry import HeldAd
from gamead_core.worker.budget import delivery_id

#: A held delivery's key: (stream, stream sequence); a sequence alone repeats across work-stream partitions.
HeldKey = tuple[str, int]
#: what a started delivery's JSON has after its not-started JSON's fields (``started`` is its last key)
_STARTED = b',"started":true}'


def held_json(held: dict[str, object]) -> bytes:
    """One held delivery's JSON (``held``: :class:`HeldAd`'s wire form) for the announcement, without
    ``"started":false``: ``HeldAd.started`` defaults to False in every gamead that reads it, so a reader validates
    the same ``HeldAd``; 16 of ~150 bytes per held ad, most of them not started (announce44: 13 of 17 per
    announcement at 1,000 ads/s)."""
    return _flagged(orjson.dumps({k: v for k, v in held.items() if k != "started"}), bool(held.get("started")))


def _flagged(plain: bytes, started: bool) -> bytes:
    """A held delivery's JSON from its JSON without ``started`` (``plain``): ``"started":true`` spliced on last."""
    return plain[:-1] + _STARTED if started else plain


class HeldAds:
    """(stream, stream sequence) → the :class:`HeldAd` this worker holds, kept in its wire form (a dict, as the
    heartbeat writes it); the models are built only for :meth:`listing` (once per heartbeat), not per ad."""

    def __init__(self) -> None:
        self._wire: dict[HeldKey, dict[str, object]] = {}  #: each one as the heartbeat writes it (camelCase)
        #: each one's JSON, made when it changes, in the same order: an announcement joins them (:meth:`wire_json`)
        #: instead of serialising every held delivery at every start step (~70 at a backlog; session 34);
        #: ``started`` only when set (:func:`held_json`)
        #: (a flag's change splices ``"started":true`` on or off, :meth:`_flag`, instead of serialising it again)
        self._json: dict[HeldKey, bytes] = {}
        self.changes = 0  #: deliveries held or let go so far (a confirmed announcement compares it: .confirm)

    def __len__(self) -> int:
        return len(self._wire)

    def keys(self) -> KeysView[HeldKey]:
        return self._wire.keys()

    def add(self, seq: HeldKey, held: HeldAd) -> None:
        self.hold(seq, held.ad_id, held.delivery, held.ack_subject, started=held.started)

    def hold(self, seq: HeldKey, ad_id: str, delivery: str, ack_subject: str, *, started: bool = False) -> None:
        """Hold the delivery ``seq`` (:class:`HeldAd`'s fields, without building one)."""
        self.changes += 1
        self._wire[seq] = {"adId": ad_id, "delivery": delivery, "ackSubject": ack_subject, "started": started}
        self._json[seq] = _flagged(orjson.dumps({"adId": ad_id, "delivery": delivery, "ackSubject": ack_subject}),
                                   started)

    def pop(self, seq: HeldKey) -> None:
        self.changes += 1
        self._wire.pop(seq, None)
        self._json.pop(seq, None)

    def wire(self) -> list[dict[str, object]]:
        """:meth:`listing` as JSON-ready dicts (``HeldAd``'s wire form), for the announcement between beats."""
        return list(self._wire.values())

    def wire_json(self) -> bytes:
        """:meth:`wire` as JSON (each delivery as :func:`held_json` writes it), joined from each delivery's JSON made
        when it changed: the same ``holding`` once validated as a list of ``HeldAd``."""
        return b"[%s]" % b",".join(self._json.values())

    def listing(self) -> list[HeldAd]:
        """Every held delivery (for the heartbeat)."""
        return [HeldAd.model_validate(w) for w in self._wire.values()]

    def started(self, seq: HeldKey) -> bool:
        """True while the delivery at ``seq`` is flagged as possibly running unmarked."""
        held = self._wire.get(seq)
        return held is not None and bool(held["started"])

    def mark_started(self, seq: HeldKey) -> bool:
        """Set the ``started`` flag of the delivery ``seq`` (a prefetched ad about to start on the fast path);
        True when it changed (announce the change before the analysis starts)."""
        return self._flag(seq, True)

    def unmark(self, seq: HeldKey) -> bool:
        """Clear the ``started`` flag of the delivery ``seq``; True when it was set (announce the change)."""
        return self._flag(seq, False)

    def _flag(self, seq: HeldKey, started: bool) -> bool:
        held = self._wire.get(seq)
        if held is None or held["started"] is started:
            return False
        self._wire[seq] = {**held, "started": started}  # a new dict: a listing handed out stays as it was
        was = self._json[seq]  # flagged as it was: not started (plain) when it is now set, else ending in _STARTED
        self._json[seq] = _flagged(was if started else was[:-len(_STARTED)] + b"}", started)
        return True

    def unmark_others(self, seq: HeldKey) -> bool:
        """Clear every ``started`` flag but that of ``seq`` (a suspect ad is about to run alone: nothing else
        may count as running beside it). True when any flag changed (announce the change)."""
        changed = False
        for other in list(self._wire):
            if other != seq and self.unmark(other):
                changed = True
        return changed

    def hold_delivery(self, msg: Msg) -> None:
        """Hold ``msg``, a new delivery of a work stream, not started: keyed by its stream and stream sequence, with
        its ad id (its header; ``?`` without one), its delivery id and its ack subject."""
        meta = msg.metadata
        self.hold((meta.stream, meta.sequence.stream), (msg.headers or {}).get(names.HDR_AD_ID, "?"),
                  delivery_id(meta.sequence.stream, meta.num_delivered or 1), msg.reply or "")
