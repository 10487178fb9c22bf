"""Settling a bulk submit's "may be queued" ads before its summary (attack30c F9): an ad whose publish got no answer
in time came back with its id, so the client asks the API (``GET /ads/{id}``, a few at a time, within a time bound)
which of them exist. One found is queued; one the API says does not exist (404, NATS answering) was never queued
(its record create was withdrawn: :mod:`gamead_core.unsettled`) and is safe to resend; only those the lookup could
not settle (NATS still away, the time bound reached) stay "may be queued". Each group is named by its FILE:LINE
ranges (:func:`where_ranges`), so text mode says which lines to resend, not only -o json."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from gamead_cli.client import ApiClient
from gamead_cli.output import note_line
from gamead_core.config import ClientSettings
from gamead_core.errors import ApiUnreachable, GameadError, NotFound

#: seconds all the lookups of one run take at most by default (``client.lookup_for``): none starts after, and each
#: GET's retries and timeout are cut to the time left (those not settled by then stay "may be queued")
LOOKUP_SECONDS: float = ClientSettings.model_fields["lookup_for"].default
#: lookups in flight at once
LOOKUP_CONCURRENCY = 8
#: lookups in a row that failed (API down, 401, 429 throughout) after which the others are not tried
GIVE_UP_AFTER = 20
#: seconds before a record found still ``queued`` is looked up again (a withdrawal lands within a round of 1 s)
RECHECK_AFTER = 3.0
#: ads whose where (and id) a run keeps for the lookup and the ranges; the others are only counted
MAYBE_KEPT = 100_000

#: why a keyed ad the lookup did not find stays "may be queued" (regress38 F1: its message is published before its
#: record, which a worker writes from it, so a 404 may be an ad waiting in the queue: 20 of 25 such were there)
KEYED_404 = ("keyed, no record yet: a keyed ad's message goes first and a worker writes its record, so it may be "
             "waiting in the queue; the same command with the same idempotency key settles it (never twice)")

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
            concurrency: int = LOOKUP_CONCURRENCY, recheck_after: float = RECHECK_AFTER
            ) -> tuple[set[int], set[int], Counter[str]]:
    """Ask the API which of ``ids`` (input index → ad id) exist: ``GET /ads/{id}``, ``concurrency`` at a time, each
    id taken when a lane is free (none queued ahead: 100,000 ids hold no 100,000 futures). Every lookup ends
    ``seconds`` after the first starts: each GET's retries and timeout are cut to the time left (review30b F4: a
    GET's own ``retry_for`` + ``timeout`` made "at most 30 s" ~50 s). A record found still ``queued`` may be one
    the API is withdrawing (its create's ack came late: :mod:`gamead_core.unsettled` sends its delete marker within
    a round, 1 s): those are looked up again ``recheck_after`` seconds later (within the same bound), and one gone
    by then was never queued. After :data:`GIVE_UP_AFTER` lookups in a row failed (API down, 401, 429 throughout)
    the others are not tried. Returns (indexes found, indexes the API says do not exist, why the others could not
    be looked up → how many: :func:`why_failed`, ``not tried: …``). Raises only :class:`KeyboardInterrupt` (Ctrl-C,
    or SIGTERM as one), after ending the lookups in flight (:meth:`ApiClient.abort`: the exit does not wait)."""
    deadline = time.monotonic() + seconds
    found, missing, queued, failed = _look(client, ids, deadline, concurrency, seconds)
    if queued and time.monotonic() + recheck_after < deadline:
        time.sleep(recheck_after)  # a Ctrl-C (or SIGTERM) meanwhile is the caller's: the run is interrupted
        again, gone, _, failed_again = _look(client, {i: ids[i] for i in queued}, deadline, concurrency, seconds)
        found, missing = (found - queued) | again, missing | gone
        failed += failed_again
    elif queued:  # no time left to look again: still unknown
        found -= queued
        failed[f"found still queued, no time left within the lookup's {seconds:g} s to look again"] += len(queued)
    return found, missing, failed


def failed_line(failed: Counter[str]) -> str:
    """The note that says how many lookups failed and why: ``could not look up 812 of them: API unreachable
    (connection refused)``, or with several reasons ``…: 20 API unreachable (no answer), 792 not tried …``. Pure."""
    reasons = failed.most_common()
    why = reasons[0][0] if len(reasons) == 1 else ", ".join(f"{n} {reason}" for reason, n in reasons)
    return f"could not look up {sum(failed.values())} of them: {why}"


def why_failed(exc: GameadError) -> str:
    """Why one lookup failed, worded to be counted with others (no timings, no URL): ``API unreachable
    (connection refused)``, ``API unreachable (no answer)``, ``HTTP 401 unauthorized``. Pure."""
    if isinstance(exc, ApiUnreachable):
        said = re.search(r"\(([^()]*)\)", exc.message or "")
        cause = re.sub(r" (after|within) [\d.]+ ?s\b", "", said[1].split(":")[0]) if said else "no connection"
        return f"API unreachable ({cause})"
    status = getattr(exc, "status", None)
    return f"HTTP {status} {exc.code}" if status else exc.code


def _look(client: ApiClient, ids: dict[int, str], deadline: float, concurrency: int,
          seconds: float) -> tuple[set[int], set[int], set[int], Counter[str]]:
    """One round of :func:`look_up`: (found, missing, found with status ``queued``, failures by reason)."""
    found: set[int] = set()
    missing: set[int] = set()
    queued: set[int] = set()
    failed: Counter[str] = Counter()
    lock, todo = threading.Lock(), iter(ids.items())
    state = {"tried": 0, "in_a_row": 0, "stopped": False}

    def lane() -> None:
        while True:
            with lock:
                if state["in_a_row"] >= GIVE_UP_AFTER or time.monotonic() >= deadline:
                    return
                index, ad_id = next(todo, (None, ""))
                if index is None:
                    return
                state["tried"] += 1
            try:
                record = client.get_ad(ad_id, until=deadline)
            except NotFound:
                with lock:
                    missing.add(index)
                    state["in_a_row"] = 0
            except GameadError as exc:  # NATS still away, the API gone or refusing: not settled, said why
                with lock:
                    failed[why_failed(exc)] += 1
                    state["in_a_row"] += 1
            except Exception:
                if state["stopped"]:  # interrupted: the client is closed under it; nothing more to count
                    return
                raise
            else:
                with lock:
                    found.add(index)
                    state["in_a_row"] = 0
                    if record.get("status") == "queued":
                        queued.add(index)

    # daemon lanes: a lane still in a connect when the run is interrupted never holds the process's exit (F11)
    lanes = [threading.Thread(target=lane, name=f"gamead-lookup-{k}", daemon=True)
             for k in range(max(1, min(concurrency, len(ids))))]
    try:
        for thread in lanes:
            thread.start()
        for thread in lanes:
            thread.join()
    except KeyboardInterrupt:  # Ctrl-C (or SIGTERM): no more lookups; the caller says the run was interrupted
        with lock:
            state["in_a_row"], state["stopped"] = GIVE_UP_AFTER, True  # no lane takes another id
        client.abort()  # the GETs in flight end now: the summary comes, then the exit (review30b F11)
        raise
    untried = len(ids) - state["tried"]
    if untried and state["in_a_row"] >= GIVE_UP_AFTER:
        failed[f"not tried after {GIVE_UP_AFTER} lookups in a row failed"] += untried
    elif untried:
        failed[f"not tried within the lookup's {seconds:g} s"] += untried
    return set(found), set(missing), set(queued), failed


def settle(summary: dict[str, Any], client: ApiClient, *, look: bool = True, seconds: float = LOOKUP_SECONDS) -> None:
    """Settle the summary's "may be queued" ads in place (:func:`look_up` within ``seconds``, ``client.lookup_for``,
    when ``look``), and name every group by its ranges. Reads and removes the private ``_unsure`` (index → (where, id,
    keyed); a keyed ad not found stays "may be queued": :data:`KEYED_404`) and ``_unknown`` (index → where: a batch with
    no answer at all, ids unknown) of :func:`gamead_cli.submit.sending.send_many`. Sets ``queuedFound`` /
    ``queuedFoundIds``, ``notQueued`` / ``notQueuedIds`` / ``notQueuedWhere``, and lowers ``maybeQueued`` /
    ``maybeQueuedIds`` to those still unknown, ``maybeQueuedWhere`` their ranges (and those of the batches without an
    answer), ``notLookedUp`` / ``notLookedUpWhy`` how many of them the lookup could not settle and why (reason → count;
    also said on stderr, :func:`failed_line`); ``items`` (-o json) say ``queued`` / ``notQueued`` for the ads
    settled."""
    unsure: dict[int, tuple[str, str, bool]] = summary.pop("_unsure", {})
    unknown: dict[int, str] = summary.pop("_unknown", {})
    found: set[int] = set()
    missing: set[int] = set()
    failed: Counter[str] = Counter()
    if look and unsure:
        note_line(f"looking up the {len(unsure)} ad(s) whose publish got no answer in time (GET /ads/ID, at most "
                  f"{seconds:g} s) …")
        try:
            found, missing, failed = look_up(client, {i: ad_id for i, (_, ad_id, _) in unsure.items()}, seconds=seconds)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM during the lookup (review30b F3: it was swallowed, the run
            summary["interrupted"] = True  # went on and exited 1): those stay "may be queued", the run interrupted
    if keyed := {i for i in missing if unsure[i][2]}:  # regress38 F1: its message goes first, a worker writes its
        missing -= keyed  # record: no record yet is not "never queued"; the same key settles it, never twice
        failed[KEYED_404] += len(keyed)
    if failed:  # review30b F4: an API down, 429 or 401 throughout read as "looked up: still unknown"
        note_line(failed_line(failed))
    summary["notLookedUp"] = sum(failed.values())
    summary["notLookedUpWhy"] = dict(failed.most_common())
    summary["queuedFound"] = len(found)
    summary["queuedFoundIds"] = [unsure[i][1] for i in sorted(found)]
    summary["notQueued"] = len(missing)
    summary["notQueuedIds"] = [unsure[i][1] for i in sorted(missing)]
    summary["notQueuedWhere"] = where_ranges(unsure[i][0] for i in sorted(missing))
    summary["maybeQueued"] = summary.get("maybeQueued", 0) - len(found) - len(missing)
    still = {i: w for i, (w, _, _) in unsure.items() if i not in found and i not in missing} | unknown
    summary["maybeQueuedIds"] = [unsure[i][1] for i in sorted(still) if i in unsure]
    summary["maybeQueuedWhere"] = where_ranges(still[i] for i in sorted(still))
    summary["maybeQueuedNotListed"] = max(0, summary["maybeQueued"] - len(still))
    now = {**{ad_id: "queued" for ad_id in summary["queuedFoundIds"]},
           **{ad_id: "notQueued" for ad_id in summary["notQueuedIds"]}}
    for item in summary.get("items") or []:
        if item.get("outcome") == "maybeQueued" and item.get("id") in now:
            item["outcome"] = now[item["id"]]
