"""What became of each ad of one bulk ``gamead submit``, counted once: accepted, duplicate, rejected (with its code,
the first ones named), "may be queued" (its publish or its whole batch unanswered: settled by lookup later,
:mod:`~gamead_cli.submit.settling`), or not sent. No I/O: :mod:`~gamead_cli.submit.sending` feeds it under its lock.

An ad is *not sent* (``notSent``, with the ads the run never handed out) when nothing of it was queued and the run
stopped before it was sent (read ahead of a stream, its batch cancelled by a second Ctrl-C) or sent again (left39b item 1: an outage past ``client.retry_for`` counted the ads it was still
resending as ``rejected`` with their last code, as if refused for good — 489 ``storage_failing`` of 5,000 at 500/s,
NATS frozen 9 s): its connection never made (``api_unreachable``), or its last answer NATS's certain refusal
(:func:`gamead_cli.retry.resendable`) with its next try cut by the stop. Each is named (``notSentWhere``, ranges of
the first :data:`~gamead_cli.submit.settling.MAYBE_KEPT`).

A keyed run's ad answered ``duplicate`` after a try of its request whose answer was lost (the API SIGKILLed
mid-batch, a link reset), whose record was submitted after this run handed it to a request (its ``submittedAt``,
on the service's clock, at most :data:`OWN_MARGIN` s before that), was queued by this run's lost try. It counts as
accepted, in ``acceptedIds``. Before (attack58), a keyed ``submit --count 3000`` whose API was SIGKILLed mid-batch
said 322 ``duplicate`` (not newly queued, not in ``acceptedIds``), each submitted during that very run: a script
following the run's ``acceptedIds`` never followed them. A rerun's duplicates (queued by an earlier run, before
this one sent them) stay duplicates. By the same lost try, a request then refused its connection until the run
stopped (the API down past ``client.retry_for``) is no proof that nothing was queued: its ads "may be queued"
(before: "not sent", never queued; 75 of 900 were queued, duplicates to a rerun with the key)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

from gamead_cli import service_clock
from gamead_cli.api_words import cli_words
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
from gamead_core.times import read_utc

#: seconds before an ad was handed to a request (on the service's clock, known within ~1.5 s:
#: :mod:`gamead_cli.service_clock`) from which a keyed duplicate's ``submittedAt`` is this run's own
OWN_MARGIN: Final[float] = 1.5


class Tally:
    """The counts of one run. ``keep_items``: each ad's outcome kept (``-o json`` ``items``, the first
    :data:`ITEMS_KEPT`); ``ids_kept``: the newly accepted ads whose ids are kept (input index below it);
    ``idempotency_key``: the run's key (each ad's is ``KEY-<index>``); ``lost``: whether the answer being counted
    came after a try of its request whose answer was lost (:meth:`gamead_cli.ad_calls.AdCalls.answer_lost`)."""

    def __init__(self, *, keep_items: bool, ids_kept: int, idempotency_key: str | None,
                 lost: Callable[[], str] = lambda: "", again: str = "") -> None:
        self.keep_items, self.ids_kept, self.key = keep_items, ids_kept, idempotency_key
        self.again = again  #: the flags that reach the same API: a command a rejection names (api_words)
        self.lost_first = lost  #: how a try's answer was lost before the answer being counted ("": none was)
        self.rejected: Counter[str] = Counter()
        self.listed: dict[int, dict[str, str]] = {}  #: input index → rejection: the first REJECTIONS_LISTED
        self.unsure: dict[int, tuple[str, str, bool]] = {}  #: index (< MAYBE_KEPT) → (where, adId, keyed)
        self.unknown: dict[int, str] = {}  #: index (< MAYBE_KEPT) → where of an ad whose batch got no answer
        self.unsent: dict[int, str] = {}  #: index (< MAYBE_KEPT) → where of an ad not sent (module doc)
        self.counts = {"accepted": 0, "duplicates": 0, "split": 0, "unsure": 0, "unknown": 0, "answered": 0,
                       "unsent": 0, "split_bytes": 0}  #: split: batches refused for their ads (422), _bytes (413)
        self.lost: Counter[str] = Counter()  #: how the answers of batches that got none were lost → ads
        self.items: dict[int, dict[str, Any]] = {}  #: input index (< ITEMS_KEPT) → what became of that ad
        self.order: dict[int, str] = {}  #: input index → id of a newly accepted ad
        self.out: dict[int, str] = {}  #: index → where of an ad handed to a request and not counted yet
        self.closed = False  #: counted for good (:meth:`abandon`): what a request still out says is not counted
        self.handed: dict[int, float] = {}  #: index → when it went to its first request (monotonic), until counted

    def split_settings(self) -> list[str]:
        """The API settings that refused the run's bigger batches, as ``-o json`` ``batchSizeBy`` names them: its ads
        (422 ``batch_too_large``: ``api.batch_max``), its body's bytes (413: ``api.batch_max_body_bytes``)."""
        return [name for key, name in (("split", "api.batch_max"), ("split_bytes", "api.batch_max_body_bytes"))
                if self.counts[key]]

    def hand_out(self, pairs: list[tuple[int, str]]) -> None:
        """The ads ``(index, where)`` go to a request now: each is counted by an outcome, or by :meth:`abandon`."""
        self.out.update(pairs)
        if self.key is not None:  # read only by :meth:`own`, for a keyed run's duplicates
            now = time.monotonic()
            self.handed.update((index, now) for index, _ in pairs if index not in self.handed)

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
        self.handed.pop(index, None)
        self.rejected[code] += 1
        keep_first(self.listed, index, {"where": where, "code": code, "message": message}, REJECTIONS_LISTED)
        if self.keep_items and index < ITEMS_KEPT:
            self.items[index] = {"where": where, "outcome": "rejected", "code": code, "message": message}

    def done(self, index: int, where: str, outcome: str, ad_id: str | None) -> None:
        """The ad at ``index``: ``outcome`` (``accepted``, ``duplicate``, ``maybeQueued``), its id if known."""
        self.out.pop(index, None)
        self.handed.pop(index, None)
        if self.keep_items and index < ITEMS_KEPT:
            self.items[index] = {"where": where, "outcome": outcome, "id": ad_id}
            if ad_id is None and self.key:
                self.items[index]["idempotencyKey"] = f"{self.key}-{index}"

    def not_sent(self, index: int, where: str, why: str) -> None:
        """The ad at ``index`` was handed out but is not queued and was not sent again (module doc): ``why``."""
        if self.closed:
            return
        self.out.pop(index, None)
        self.handed.pop(index, None)
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
        first = self.lost_first() if isinstance(body, ApiUnreachable) else ""  # refused after a try that went out
        if isinstance(body, NoAnswer) or first:  # sent, never answered: it may be queued (not rejected)
            self.counts["unknown"] += 1
            self.lost[first or getattr(body, "lost", "timeout")] += 1
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
            text = cli_words(rejection_text(error), self.again)  # an API path to look at: the command
            if self.key and error.get("code") == "idempotency_key_reused":  # keys go by position
                text = reused_key_text(text, self.key, index)
            self.reject(index, where, str(error.get("code") or "error"), text)
        elif not isinstance(body, dict) or "id" not in body:
            self.reject(index, where, "bad_answer", "the API's answer has no ad id")
        elif body.get("duplicate") and not self.own(index, body.get("submittedAt")):
            self.counts["duplicates"] += 1
            self.done(index, where, "duplicate", str(body["id"]))
        else:
            self.counts["accepted"] += 1
            if index < self.ids_kept:
                self.order[index] = str(body["id"])
            self.done(index, where, "accepted", str(body["id"]))

    def own(self, index: int, submitted_at: Any) -> bool:
        """Whether the keyed duplicate at ``index``, submitted at ``submitted_at`` (ISO, the service's clock), was
        queued by this run (module doc); False without a key, a hand-out, or a time that reads."""
        handed = self.handed.get(index)
        if self.key is None or handed is None or not self.lost_first():
            return False
        try:
            submitted = read_utc(str(submitted_at)).timestamp()
        except ValueError:
            return False
        return submitted >= service_clock.now() - (time.monotonic() - handed) - OWN_MARGIN

    def not_sent_figures(self, never: int) -> dict[str, Any]:
        """``notSent`` (``never``: the ads never handed out, plus those :meth:`not_sent` counted),
        ``notSentCaught`` (those alone) and ``notSentWhere`` (their ranges, input order). Pure."""
        return {"notSent": never + self.counts["unsent"], "notSentCaught": self.counts["unsent"],
                "notSentWhere": where_ranges(self.unsent[i] for i in sorted(self.unsent))}
