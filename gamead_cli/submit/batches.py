"""Pure decisions of ``gamead submit``'s batches: their size, the runs of ads they are cut into, which ads are kept
for the listing, and what one ad's answer in a ``POST /ads/batch`` result means. No I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from typing import Any

from gamead_core.errors import ApiUnreachable

#: Ads per ``POST /ads/batch`` request (the API takes up to ``api.batch_max``, 500 by default).
BATCH_SIZE = 100
#: per-ad detail of ``-o json`` (``items``, ``acceptedIds``, ``maybeQueuedIds``, ``maybeQueuedKeys``) is kept for
#: the first ITEMS_KEPT ads in input order; later ads are counted only (``itemsOmitted``): an endless stdin
#: (``tail -f ads.ndjson | gamead submit --ndjson -``) must not grow the client's memory (attack27 F6: ~20 MB/s)
ITEMS_KEPT = 10_000
#: ``--wait`` follows the ads accepted among the first FOLLOWED_MAX ads in input order (an id kept for each, ~150
#: bytes); those accepted later are counted in ``notFollowed``
FOLLOWED_MAX = 100_000


Item = tuple[int, Any]  #: (index, an ad or the GameadError that stands for an unreadable one)
#: rejected ads named one by one (``FILE:LINE: code: message``) on stderr and in ``-o json``; the rest counted
REJECTIONS_LISTED = 20
#: API answers that refuse a batch for its size alone: nothing of it was queued, so it is split and resent
SIZE_REFUSALS = frozenset({"batch_too_large", "payload_too_large"})
#: API answers that refuse the run's token, so every batch of the run alike (newcomer57: a viewer's or a missing
#: token's `submit --count 50` sent every batch and printed 20 `ad N: forbidden: …` lines, `rejected 50`)
TOKEN_REFUSALS = frozenset({"unauthenticated", "forbidden"})


def stops_the_run(exc: Exception) -> bool:
    """Whether a batch's error stops the sending when no ad of the run was taken yet: the API unreachable
    (:class:`~gamead_core.errors.ApiUnreachable`) or the token refused (:data:`TOKEN_REFUSALS`). Pure."""
    return isinstance(exc, ApiUnreachable) or getattr(exc, "code", None) in TOKEN_REFUSALS


def keep_first(kept: dict[int, Any], index: int, value: Any, most: int) -> None:
    """Put ``value`` under ``index`` in ``kept`` if ``index`` is among the ``most`` smallest seen: ``kept`` holds the
    first ``most`` by index (input order) whatever order they come in (batches answer in any order). Mutates
    ``kept``; O(``most``) per call."""
    if len(kept) < most:
        kept[index] = value
    elif index < (last := max(kept)):
        del kept[last]
        kept[index] = value


def rejection_text(error: Mapping[str, Any]) -> str:
    """An API error object (``{"code", "message", "details"}``) → ``message`` or, for a 422 with field paths,
    ``title: String should have at least 1 character; duration: …``. Pure."""
    details = error.get("details")
    fields = [f"{d.get('loc')}: {d.get('msg')}" for d in details if isinstance(d, dict) and d.get("loc")] \
        if isinstance(details, list) else []
    return "; ".join(fields[:5]) if fields else str(error.get("message") or "")


def reused_key_text(message: str, key: str, index: int) -> str:
    """The line of an ad answered ``idempotency_key_reused`` to the key ``KEY-<index>`` that ``gamead submit
    --idempotency-key KEY`` gave it (``index``: 0-based, in input order, blank lines not counted): the API's
    ``message`` and the likely cause, since the keys go by position (attack30c F10). Pure."""
    return (f"{message} (likely cause: the input changed since the run with this key: keys are {key}-<index of "
            f"the ad in the input, from 0, blank lines not counted>, this one {key}-{index}, so a line deleted, "
            "blanked, inserted or moved shifts the keys of every ad after it)")


def reused_key_advice(key: str) -> str:
    """What the summary says once when ads were answered ``idempotency_key_reused`` to keys derived from
    ``key``: how to recover without queueing an ad twice. Pure."""
    return (f"to settle a run with --idempotency-key {key}, put the input back as it was for that run (a bad line "
            "fixed in place or replaced by {} — rejected again, its position kept — none deleted, blanked, "
            "inserted or moved) and send it again: the ads queued then are answered duplicate; a new key would "
            "queue every ad again")


def maybe_queued_id(error: Any) -> str | None:
    """The ad id of a per-ad ``queue_unavailable`` error that names one (``details.adId``: the API's answer to
    an ad whose publish got no answer in time, which may still be queued and analysed), else None. Pure."""
    if not isinstance(error, dict) or error.get("code") != "queue_unavailable":
        return None
    details = error.get("details")
    ad_id = details.get("adId") if isinstance(details, dict) else None
    return ad_id if isinstance(ad_id, str) else None


def counted(future: Future[None]) -> bool:
    """True if ``future`` is done and what it raised, if anything, is an ``Exception`` (counted as ``not_sent`` in
    ``send_many``): it need not be read again at the end."""
    return future.done() and not future.cancelled() and isinstance(future.exception() or Exception(), Exception)


def chunks(ads: Iterable[Item], size: Callable[[], int]) -> Iterator[list[Item]]:
    """Runs of ``size()`` items (asked again for each run: a batch size learnt from the API applies at once). An
    ``OSError`` of the input (read no further) comes after the run of the items read before it: they are sent."""
    chunk: list[Item] = []
    try:
        for item in ads:
            chunk.append(item)
            if len(chunk) >= size():
                yield chunk
                chunk = []
    except OSError:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


#: how a request's answer was lost (the ``lost`` of :func:`gamead_cli.api_errors.no_answer`), in words
LOST_WORDS = {"timeout": "no answer in time", "reset": "connection reset before the answer came",
              "closed": "connection closed without an answer", "garbled": "an answer that is not HTTP",
              "unreadable": "an answer that is not a gamead answer",
              "gateway": "a proxy answered for the API (HTTP 502/503/504)",  # outage46's leftover
              "interrupted": "its request still out when a second Ctrl-C ended the wait"}  # attack45 F4


def stop_reason(errors: list[Any], outage: bool | str, retry_for: float, keyed: bool, interrupted: bool = False,
                by: str = "Ctrl-C") -> str:
    """Why ``gamead submit`` stopped sending before its input's end (``stoppedBecause``; attack33b F5: a run cut
    after 20 of 400 ads said nowhere why): ``interrupted``, Ctrl-C (newcomer33 F7: said as a stop is), else
    ``outage``, the API unreachable past ``retry_for`` seconds, else
    the first of ``errors``, that of the batch that got no answer (:class:`~gamead_core.errors.NoAnswer`, its ``lost``:
    ``timeout``, ``reset``…) or could not reach the API before any ad was accepted; ``keyed``: the run's ads carry
    idempotency keys (such a batch was resent within ``retry_for``); ``by``: what interrupted it, as
    :func:`gamead_cli.stops.stopped_by` says it (``SIGTERM``: newcomer35 F3, a SIGTERM said Ctrl-C here). Pure."""
    if interrupted:
        return f"interrupted ({by})"
    if outage:  # the outage's own words (Outage.reason), or the API unreachable
        return outage if isinstance(outage, str) else "the API was still unreachable after client.retry_for"
    lost = getattr(errors[0], "lost", None) if errors else None
    if errors and getattr(errors[0], "code", None) in TOKEN_REFUSALS:
        return f"the API refused the run's token before any ad was accepted ({errors[0].code}): {errors[0]}"
    if errors and lost is None:
        return "a batch could not reach the API before any ad was accepted"
    how = LOST_WORDS.get(lost or "timeout", str(lost))
    if keyed:
        return f"a batch got no answer before any ad was accepted ({how}; resent for client.retry_for: {retry_for:g} s)"
    return (f"a batch got no answer before any ad was accepted ({how}; not resent: it may have been queued, and only "
            "a batch with --idempotency-key is safe to send twice)")


class Runs:
    """The runs of ads to send (``runs``: lists of items), with a put-back: :meth:`cut` keeps the first ``most``
    items of a run taken and gives the rest back, taken again before the next runs (outage38: a batch formed
    before a store outage began went out whole; it now goes one ad at a time, as :meth:`Outage.size` says)."""

    def __init__(self, runs: Iterable[list[Any]]) -> None:
        self._runs = iter(runs)
        self._back: list[list[Any]] = []

    def __iter__(self) -> Runs:
        return self

    def __next__(self) -> list[Any]:
        return self._back.pop() if self._back else next(self._runs)

    def cut(self, run: list[Any], most: int) -> list[Any]:
        """The first ``most`` (≥ 1) items of ``run``; the others are given back (the next run taken)."""
        if len(run) <= most:
            return run
        self._back.append(run[most:])
        return run[:most]

    def left(self) -> list[Any]:
        """The items given back and not taken again, in order."""
        return [item for run in reversed(self._back) for item in run]
