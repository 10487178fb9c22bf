"""Settling a bulk submit's "may be queued" ads before its summary (attack30c F9): an ad whose publish got no answer
in time came back with its id, so the client asks the API (``GET /ads/{id}``, a few at a time, within a time bound)
which of them exist. One found is queued; one the API says does not exist (404, NATS answering) was never queued
(its record create was withdrawn: :mod:`gamead_core.unsettled`) and is safe to resend; only those the lookup could
not settle (NATS still away, the time bound reached) stay "may be queued". Each group is named by its FILE:LINE
ranges (:func:`where_ranges`), so text mode says which lines to resend, not only -o json."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from gamead_cli.client import ApiClient
from gamead_cli.output import note_line
from gamead_core.errors import GameadError, NotFound

#: seconds all the lookups of one run may take (started after that: left "may be queued")
LOOKUP_SECONDS = 30.0
#: lookups in flight at once
LOOKUP_CONCURRENCY = 8
#: seconds before a record found still ``queued`` is looked up again (a withdrawal lands within a round of 1 s)
RECHECK_AFTER = 3.0
#: ads whose where (and id) a run keeps for the lookup and the ranges; the others are only counted
MAYBE_KEPT = 100_000

_NUMBERED = re.compile(r"^(?P<head>.*?)(?P<n>\d+)(?P<tail>\]?)$")


def where_ranges(wheres: Iterable[str]) -> list[str]:
    """Labels of ads (``ads.ndjson:7``, ``ad 7``, ``ads.json[6]``) in input order → their runs, consecutive
    numbers of one source joined: ``["ads.ndjson:3-5", "ads.ndjson:9", "ad 1-2"]``. A label without a number is
    kept as it is. Pure."""
    runs: list[list[Any]] = []  #: [head, first, last, tail]
    for where in wheres:
        match = _NUMBERED.match(where)
        if match is None:
            runs.append([where, None, None, ""])
            continue
        head, n, tail = match["head"], int(match["n"]), match["tail"]
        last = runs[-1] if runs else None
        if last is not None and last[1] is not None and last[0] == head and last[3] == tail and last[2] + 1 == n:
            last[2] = n
        else:
            runs.append([head, n, n, tail])
    return [head if first is None else f"{head}{first}{tail}" if first == last else f"{head}{first}-{last}{tail}"
            for head, first, last, tail in runs]


def look_up(client: ApiClient, ids: dict[int, str], *, seconds: float = LOOKUP_SECONDS,
            concurrency: int = LOOKUP_CONCURRENCY, recheck_after: float = RECHECK_AFTER) -> tuple[set[int], set[int]]:
    """Ask the API which of ``ids`` (input index → ad id) exist: ``GET /ads/{id}``, ``concurrency`` at a time; no
    lookup starts ``seconds`` after the first. A record found still ``queued`` may be one the API is withdrawing
    (its create's ack came late: :mod:`gamead_core.unsettled` sends its delete marker within a round, 1 s): those
    are looked up again ``recheck_after`` seconds later, and one gone by then was never queued. Returns (indexes
    found, indexes the API says do not exist); the others (an error, the time bound) are in neither.
    Raises only :class:`KeyboardInterrupt` (Ctrl-C, or SIGTERM as one), after stopping the lookups."""
    deadline = time.monotonic() + seconds
    found, missing, queued = _look(client, ids, deadline, concurrency)
    if queued and time.monotonic() + recheck_after < deadline:
        time.sleep(recheck_after)  # a Ctrl-C (or SIGTERM) meanwhile is the caller's: the run is interrupted
        again, gone, _ = _look(client, {i: ids[i] for i in queued}, deadline, concurrency)
        found, missing = (found - queued) | again, missing | gone
    elif queued:
        found -= queued
    return found, missing


def _look(client: ApiClient, ids: dict[int, str], deadline: float,
          concurrency: int) -> tuple[set[int], set[int], set[int]]:
    """One round of :func:`look_up`: (found, missing, found with status ``queued``)."""
    found: set[int] = set()
    missing: set[int] = set()
    queued: set[int] = set()

    def one(index: int, ad_id: str) -> None:
        if time.monotonic() > deadline:
            return
        try:
            record = client.get_ad(ad_id)
        except NotFound:
            missing.add(index)
        except GameadError:  # NATS still away, the API gone: not settled
            return
        else:
            found.add(index)
            if record.get("status") == "queued":
                queued.add(index)

    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="gamead-lookup")
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(one, i, ad_id) for i, ad_id in ids.items()]
        wait_futures(futures)
        pool.shutdown(wait=True)
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM): no more lookups; the caller says the run was interrupted
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return set(found), set(missing), set(queued)


def settle(summary: dict[str, Any], client: ApiClient, *, look: bool = True) -> None:
    """Settle the summary's "may be queued" ads in place (:func:`look_up`, when ``look``), and name every group
    by its ranges. Reads and removes the private ``_unsure`` (index → (where, id)) and ``_unknown`` (index → where:
    a batch with no answer at all, ids unknown) of :func:`gamead_cli.submit.sending.send_many`. Sets
    ``queuedFound`` / ``queuedFoundIds``, ``notQueued`` / ``notQueuedIds`` / ``notQueuedWhere``, and lowers
    ``maybeQueued`` / ``maybeQueuedIds`` to those still unknown, ``maybeQueuedWhere`` their ranges (and those of
    the batches without an answer); ``items`` (-o json) say ``queued`` / ``notQueued`` for the ads settled."""
    unsure: dict[int, tuple[str, str]] = summary.pop("_unsure", {})
    unknown: dict[int, str] = summary.pop("_unknown", {})
    found: set[int] = set()
    missing: set[int] = set()
    if look and unsure:
        note_line(f"looking up the {len(unsure)} ad(s) whose publish got no answer in time (GET /ads/ID, at most "
                  f"{LOOKUP_SECONDS:g} s) …")
        try:
            found, missing = look_up(client, {i: ad_id for i, (_, ad_id) in unsure.items()})
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM during the lookup (review30b F3: it was swallowed, the run
            summary["interrupted"] = True  # went on and exited 1): those stay "may be queued", the run interrupted
    summary["queuedFound"] = len(found)
    summary["queuedFoundIds"] = [unsure[i][1] for i in sorted(found)]
    summary["notQueued"] = len(missing)
    summary["notQueuedIds"] = [unsure[i][1] for i in sorted(missing)]
    summary["notQueuedWhere"] = where_ranges(unsure[i][0] for i in sorted(missing))
    summary["maybeQueued"] = summary.get("maybeQueued", 0) - len(found) - len(missing)
    still = {i: w for i, (w, _) in unsure.items() if i not in found and i not in missing} | unknown
    summary["maybeQueuedIds"] = [unsure[i][1] for i in sorted(still) if i in unsure]
    summary["maybeQueuedWhere"] = where_ranges(still[i] for i in sorted(still))
    summary["maybeQueuedNotListed"] = max(0, summary["maybeQueued"] - len(still))
    now = {**{ad_id: "queued" for ad_id in summary["queuedFoundIds"]},
           **{ad_id: "notQueued" for ad_id in summary["notQueuedIds"]}}
    for item in summary.get("items") or []:
        if item.get("outcome") == "maybeQueued" and item.get("id") in now:
            item["outcome"] = now[item["id"]]
