"""What became of each ad of one bulk ``gamead submit``, counted once: accepted, duplicate, rejected (with its code,
the first ones named), "may be queued" (its publish or its whole batch unanswered: settled by lookup later,
:mod:`~gamead_cli.submit.settling`), or not sent. No I/O: :mod:`~gamead_cli.submit.sending` feeds it under its lock.

An ad is *not sent* (``notSent``, with the ads the run never handed out) when nothing of it was queued and the run
stopped before it was sent (read ahead of a stream, its batch cancelled by a second Ctrl-C) or sent again (left39b item 1: an outage past ``client.retry_for`` counted the ads it was still
resending as ``rejected`` with their last code, as if refused for good — 489 ``storage_failing`` of 5,000 at 500/s,
NATS frozen 9 s): its connection never made (``api_unreachable``), or its last answer NATS's certain refusal
(:func:`gamead_cli.retry.resendable`) with its next try cut by the stop. Each is named (``notSentWhere``, ranges of
the first :data:`~gamead_cli.submit.settling.MAYBE_KEPT`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from gamead_cli.submit.batches import (
    ITEMS_KEPT,
    REJECTIONS_LISTED,
    keep_first,
    maybe_queued_id,
    rejection_text,
    reused_key_text,
)
from gamead_cli.submit.settling import MAYBE_KEPT, where_ranges
from gamead_core.errors import ApiClientError, ApiUnreachable, GameadError, NoAnswer


class Tally:
    """The counts of one run. ``keep_items``: each ad's outcome kept (``-o json`` ``items``, the first
    :data:`ITEMS_KEPT`); ``ids_kept``: the newly accepted ads whose ids are kept (input index below it);
    ``idempotency_key``: the run's key (each ad's is ``KEY-<index>``)."""

    def __init__(self, *, keep_items: bool, ids_kept: int, idempotency_key: str | None) -> None:
        self.keep_items, self.ids_kept, self.key = keep_items, ids_kept, idempotency_key
        self.rejected: Counter[str] = Counter()
        self.listed: dict[int, dict[str, str]] = {}  #: input index → rejection: the first REJECTIONS_LISTED
        self.unsure: dict[int, tuple[str, str, bool]] = {}  #: index (< MAYBE_KEPT) → (where, adId, keyed)
        self.unknown: dict[int, str] = {}  #: index (< MAYBE_KEPT) → where of an ad whose batch got no answer
        self.unsent: dict[int, str] = {}  #: index (< MAYBE_KEPT) → where of an ad not sent (module doc)
        self.counts = {"accepted": 0, "duplicates": 0, "split": 0, "unsure": 0, "unknown": 0, "answered": 0,
                       "unsent": 0}
        self.lost: Counter[str] = Counter()  #: how the answers of batches that got none were lost → ads
        self.items: dict[int, dict[str, Any]] = {}  #: input index (< ITEMS_KEPT) → what became of that ad
        self.order: dict[int, str] = {}  #: input index → id of a newly accepted ad
        self.out: dict[int, str] = {}  #: index → where of an ad handed to a request and not counted yet
        self.closed = False  #: counted for good (:meth:`abandon`): what a request still out says is not counted

    def hand_out(self, pairs: list[tuple[int, str]]) -> None:
        """The ads ``(index, where)`` go to a request now: each is counted by an outcome, or by :meth:`abandon`."""
        self.out.update(pairs)

    def abandon(self) -> None:
        """The run ends without waiting for its requests still out (a second Ctrl-C): their ads went out and may
        be queued, so each counts as "may be queued", its answer lost ``interrupted`` (attack45 F4: they were in
        ``sent`` and in no other figure, 10 queued ads said by none); what those requests answer later is not
        counted (the summary is made)."""
        for index, where in list(self.out.items()):
            self.counts["unknown"] += 1
            self.lost["interrupted"] += 1
            if index < MAYBE_KEPT:
                self.unknown[index] = where
            self.done(index, where, "maybeQueued", None)
        self.closed = True

    def reject(self, index: int, where: str, code: str, message: str) -> None:
        """The ad at ``index`` (named ``where``) refused: ``code``, ``message``."""
        if self.closed:
            return
        self.out.pop(index, None)
        self.rejected[code] += 1
        keep_first(self.listed, index, {"where": where, "code": code, "message": message}, REJECTIONS_LISTED)
        if self.keep_items and index < ITEMS_KEPT:
            self.items[index] = {"where": where, "outcome": "rejected", "code": code, "message": message}

    def done(self, index: int, where: str, outcome: str, ad_id: str | None) -> None:
        """The ad at ``index``: ``outcome`` (``accepted``, ``duplicate``, ``maybeQueued``), its id if known."""
        self.out.pop(index, None)
        if self.keep_items and index < ITEMS_KEPT:
            self.items[index] = {"where": where, "outcome": outcome, "id": ad_id}
            if ad_id is None and self.key:
                self.items[index]["idempotencyKey"] = f"{self.key}-{index}"

    def not_sent(self, index: int, where: str, why: str) -> None:
        """The ad at ``index`` was handed out but is not queued and was not sent again (module doc): ``why``."""
        if self.closed:
            return
        self.out.pop(index, None)
        self.counts["unsent"] += 1
        if index < MAYBE_KEPT:
            self.unsent[index] = where
        if self.keep_items and index < ITEMS_KEPT:
            self.items[index] = {"where": where, "outcome": "notSent", "message": why}

    def settle(self, index: int, where: str, body: Any) -> None:
        """What became of one ad sent: ``body`` is its result (``{"id", …}``, ``{"error": …}``) or the
        :class:`GameadError` standing for it (its whole request refused, no answer, a bad line)."""
        if self.closed:
            return
        error = body.get("error") if isinstance(body, dict) else None
        # an answer of the API: any per-ad result, or the whole request refused (not a local bad line)
        self.counts["answered"] += isinstance(body, dict) or (isinstance(body, ApiClientError)
                                                              and not isinstance(body, ApiUnreachable))
        if isinstance(body, NoAnswer):  # sent, never answered: it may be queued (not rejected)
            self.counts["unknown"] += 1
            self.lost[getattr(body, "lost", "timeout")] += 1
            if index < MAYBE_KEPT:
                self.unknown[index] = where
            self.done(index, where, "maybeQueued", None)
        elif isinstance(body, ApiUnreachable):  # its connection never made: nothing reached the API
            self.not_sent(index, where, f"not sent: {body.message}"[:200])
        elif isinstance(body, GameadError):
            self.reject(index, where, body.code, body.message)
        elif (maybe := maybe_queued_id(error)) is not None:
            self.counts["unsure"] += 1  # its publish got no answer: it may still be analysed
            if index < MAYBE_KEPT:
                self.unsure[index] = (where, maybe, bool((error.get("details") or {}).get("keyed")))
            self.done(index, where, "maybeQueued", maybe)
        elif isinstance(error, dict):
            text = rejection_text(error)
            if self.key and error.get("code") == "idempotency_key_reused":  # keys go by position
                text = reused_key_text(text, self.key, index)
            self.reject(index, where, str(error.get("code") or "error"), text)
        elif not isinstance(body, dict) or "id" not in body:
            self.reject(index, where, "bad_answer", "the API's answer has no ad id")
        elif body.get("duplicate"):
            self.counts["duplicates"] += 1
            self.done(index, where, "duplicate", str(body["id"]))
        else:
            self.counts["accepted"] += 1
            if index < self.ids_kept:
                self.order[index] = str(body["id"])
            self.done(index, where, "accepted", str(body["id"]))

    def not_sent_figures(self, never: int) -> dict[str, Any]:
        """``notSent`` (``never``: the ads never handed out, plus those :meth:`not_sent` counted),
        ``notSentCaught`` (those alone) and ``notSentWhere`` (their ranges, input order). Pure."""
        return {"notSent": never + self.counts["unsent"], "notSentCaught": self.counts["unsent"],
                "notSentWhere": where_ranges(self.unsent[i] for i in sorted(self.unsent))}
