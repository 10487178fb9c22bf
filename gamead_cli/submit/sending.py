"""Sending many ads with ``POST /ads/batch`` (``gamead submit --count``, NDJSON, an array): paced, a few requests
in flight, a batch refused for its size split and resent, each ad counted (accepted, duplicate, rejected, may be
queued); Ctrl-C stops sending and keeps what was counted."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from functools import partial
from typing import Any

from gamead_cli import retry
from gamead_cli.client import ApiClient
from gamead_cli.submit.batches import (  # ITEMS_KEPT, FOLLOWED_MAX: here for their readers
    BATCH_SIZE,
    FOLLOWED_MAX,
    ITEMS_KEPT,
    SIZE_REFUSALS,
    Item,
    Runs,
    chunks,
    counted,
    reused_key_advice,
    stop_reason,
    stops_the_run,
)
from gamead_cli.stops import POLL, signals_flagged, signals_held, stopped_by
from gamead_cli.submit.feeding import Feed
from gamead_cli.submit.outage import MARKS, Outage, pace
from gamead_cli.submit.reading import InputStopped, Labeled
from gamead_cli.submit.resending import next_try, own_end
from gamead_cli.submit.tally import Tally
from gamead_cli.submit.views import progress_bar, progress_info
from gamead_core.errors import ApiClientError, ApiUnreachable, GameadError

def send_many(
    client: ApiClient,
    ads: Iterable[Mapping[str, Any] | GameadError | Labeled],
    *,
    total: int | None,
    rate: float,
    concurrency: int,
    idempotency_key: str | None,
    batch_size: int = BATCH_SIZE,
    keep_items: bool = False,
    follow: bool = True,
    live: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """Submit ``ads`` with ``POST /ads/batch``, ``batch_size`` ads a request, at ``rate`` ads per second (0 = as
    fast as possible), ``concurrency`` requests in flight.

    An ad that is not a JSON object (a bad NDJSON line: a :class:`GameadError` in its place) is counted as rejected
    under that error's code: the summary's ``rejected`` counts them all (as its row and the API's batch answer do),
    ``rejectedByCode`` by code. Each rejected ad is named (``FILE:LINE`` for a :class:`Labeled` one, else ``ad N``,
    1-based) with its code and message: the first :data:`REJECTIONS_LISTED` in input order (not in the order their
    batches were answered) in the summary's ``rejections``, the others counted in ``rejectionsNotListed``. A batch
    the API refuses for its size alone (422 ``batch_too_large``: ``details.max``; 413 ``payload_too_large``) queued
    nothing: it is split (to the API's max, else in halves), resent, and later batches use the smaller size. A
    chunk whose sending raised anything else (a bug, an ad the HTTP client cannot encode) counts its ads not yet
    counted rejected ``not_sent``, each named with the exception: every future of the pool is read, none vanishes.
    With ``keep_items`` (``-o json``) the summary also has ``items``: one per ad sent, in input order, ``{"where",
    "outcome", "id"}`` (outcome ``accepted``, ``duplicate`` — the first ad's id — or ``maybeQueued``) or ``{"where",
    "outcome": "rejected", "code", "message"}``, and ``acceptedIds``, the ids of the ads newly queued, in input
    order (~150 bytes an ad held until the end, so only when asked). Per-ad detail (``items``, ``acceptedIds``,
    ``maybeQueuedIds``, ``maybeQueuedKeys``) is kept for the first :data:`ITEMS_KEPT` ads in input order only;
    ``itemsOmitted`` counts the ads sent after them: memory stays bounded whatever the input (an endless stdin);
    ``acceptedPerSecond``: ads newly queued a second; ``answeredPerSecond``: ads answered a second.
    Returns the summary so far and, with ``follow`` (``--wait``), the ids of the ads newly accepted among the first
    :data:`FOLLOWED_MAX` (input order; ``notFollowed`` counts the others). If the API cannot be reached before
    any ad was accepted, stops and raises :class:`ApiUnreachable`; once it answered, an outage pauses the sending
    and stops it past ``client.retry_for`` (:mod:`~gamead_cli.submit.outage`). Ctrl-C stops sending, lets the
    requests in flight finish, and returns the summary so far with ``interrupted: true``, ``notSent``.
    With ``live`` (stdin) a partial batch goes out once the stream pauses (:class:`Feed`, attack30c F4), Ctrl-C
    sends it and names what was read ahead (``notSent``, ``notSentWhere``), as a second Ctrl-C names those it
    cancelled.

    A batch that went out and got no answer (:class:`NoAnswer`) may have been queued: its ads are not rejected
    (if no ad was accepted before it, sending stops there and ``notSent`` counts the ads never sent) but counted
    as "may be queued" (``maybeQueuedUnknown``: their ids never came back; with ``idempotency_key``, whose ``KEY-N``
    per ad, N its input index, lets the client send the batch again first, :mod:`gamead_cli.retry`, their keys in
    ``maybeQueuedKeys``: the same command with the same key settles them, queueing nothing twice; how each such
    batch's answer was lost in ``maybeQueuedLost``, its error's ``lost`` → ads). A run that stopped sending
    before its input's end says why in ``stoppedBecause`` (:func:`stop_reason`). The private ``_unsure`` (index →
    (where, id)) and ``_unknown`` (index → where) of the first ``MAYBE_KEPT`` such ads are for :func:`~gamead_cli.
    submit.settling.settle`, which looks them up; an interrupted run's ``lastSent``: the last ad sent's place."""
    lock, stop, slots = threading.Lock(), threading.Event(), threading.BoundedSemaphore(concurrency * 2)
    #: the ads whose id is kept (tally.order): those listed in acceptedIds (-o json), those --wait follows
    tally = Tally(keep_items=keep_items, ids_kept=max(ITEMS_KEPT if keep_items else 0, FOLLOWED_MAX if follow else 0),
                  idempotency_key=idempotency_key, lost=client.answer_lost, again=client.again)
    counts, rejected, reject = tally.counts, tally.rejected, tally.reject  # read under the lock
    fatal: list[ApiClientError] = []  #: a batch's error that stopped the sending: none was accepted before it
    sent = 0  # ads handed to the pool (lowered for those a second Ctrl-C cancelled)
    limit = {"size": max(1, min(batch_size, int(rate / 10) if rate > 0 else batch_size))}  # ≥ 10 req/s paced
    taken = {"n": 0, "at": time.monotonic()}  #: the run's ads taken (accepted, duplicates), and when that last grew

    def keyed(index: int, ad: Mapping[str, Any]) -> Mapping[str, Any]:
        return {**ad, "idempotencyKey": f"{idempotency_key}-{index}"} if idempotency_key else ad

    def labelled(index: int, item: Any) -> tuple[str, Any]:
        return (item.where, item.ad) if isinstance(item, Labeled) else (f"ad {index + 1}", item)

    # a stop signal is a flag here, looked at between bounded waits, never raised inside one (attack45 F5)
    with signals_flagged() as came, progress_bar() as progress:
        task = progress.add_task("submitting", total=total, info="")
        shown = total  #: the bar's total: the count, grown with the ads read past it
        outage = client.watch = Outage(client.api_url, client.retry_for, lambda mark, text: progress.console.print(
            f"{mark} {text}", style=MARKS[mark], soft_wrap=True, highlight=False, markup=False))  # above the bar

        def one(chunk: list[Item], slot: bool = True) -> None:
            try:
                send(chunk)
            except Exception as exc:  # a chunk that could not be sent is counted and named, never dropped: its
                with lock:  # ads still out, not those an answer already counted (review47 F4: counted twice)
                    for i, item in (pair for pair in chunk if pair[0] in tally.out):
                        reject(i, labelled(i, item)[0], "not_sent", f"not sent: {type(exc).__name__}: {exc}"[:200])
                raise
            finally:
                outage.finished()
                if slot:
                    slots.release()

        def post(good: list[tuple[int, str, Mapping[str, Any]]]) -> list[tuple[int, str, Any]]:
            """(index, where, result or GameadError) for each ad; splits on a size refusal."""
            try:
                results = client.submit_batch([keyed(i, ad) for i, _, ad in good])["results"]  # one per ad
            except ApiClientError as exc:
                if exc.code in SIZE_REFUSALS and len(good) > 1 and not isinstance(exc, ApiUnreachable):
                    most = exc.details.get("max") if isinstance(exc.details, dict) else None
                    part = most if isinstance(most, int) and 0 < most < len(good) else (len(good) + 1) // 2
                    with lock:
                        limit["size"] = min(limit["size"], part)
                        counts["split_bytes" if exc.code != "batch_too_large" else "split"] += 1  # 413: its bytes
                    return [r for k in range(0, len(good), part) for r in post(good[k:k + part])]
                if stops_the_run(exc):  # unreachable, or the token refused (as every batch's would be)
                    with lock:
                        if counts["accepted"] + counts["duplicates"] == 0:
                            fatal.append(exc)  # raised at the end unless an ad may be queued (one NoAnswer)
                            stop.set()
                return [(i, where, retry.as_ad_answer(exc)) for i, where, _ in good]
            except GameadError as exc:  # the whole request was refused (429, 503…): every ad of it
                return [(i, where, exc) for i, where, _ in good]
            return [(i, where, body) for (i, where, _), body in zip(good, results, strict=True)]

        def send(chunk: list[Item]) -> None:
            """Send one chunk and count what became of each ad; the ads whose own error says NATS took nothing of
            them (:func:`gamead_cli.retry.resendable`) are sent again after the back-off (or their
            ``retryAfter``) within ``client.retry_for`` of the chunk's start, the others counted at once (a
            Ctrl-C during the wait counts those as answered). Ads refused ``rate_limited`` alone are sent again
            within ``client.retry_for`` of the run's last ad taken: the API takes ads, the run outpaces its limit
            (attack46 F2: at --rate 1000 over a limit of 300/s, 58 of 4,000 ads ended rejected, their chunk's 10 s
            spent while the run's other batches took the tokens)."""
            named = [(i, *labelled(i, item)) for i, item in chunk]
            good = [(i, where, ad) for i, where, ad in named if not isinstance(ad, GameadError)]
            answers: list[tuple[int, str, Any]] = [(i, where, ad) for i, where, ad in named
                                                   if isinstance(ad, GameadError)]
            sent = time.monotonic()  # the latest post's (the outage's clock): only its ads can have been taken
            deadline = sent + client.retry_for
            answers += post(good) if good else []
            for attempt in itertools.count(1):
                outage.judge((body for _, _, body in answers), sent)  # every ad refused for the store: an outage (F3)
                again = {i: body["error"] for i, _, body in answers
                         if isinstance(body, dict) and retry.resendable(body.get("error"))}
                errors = list(again.values())
                own = own_end(errors, deadline, taken["at"], client.retry_for)
                wait, cut = next_try(outage, attempt, errors, own, time.monotonic(),
                                     stop.is_set()) if again else (None, "")  # cut: the run's stop, not the ads' own
                again = again if cut else {} if wait is None else again
                with lock:
                    for i, where, body in answers:
                        if i not in again:
                            tally.settle(i, where, body)
                        elif cut:  # certainly not queued, and the stop came before its next try (left39b)
                            tally.not_sent(i, where, f"not sent again ({again[i].get('code')}): {cut}")
                    if (n := counts["accepted"] + counts["duplicates"]) > taken["n"]:
                        taken.update(n=n, at=time.monotonic())
                    said = progress_info(counts, rejected, outage.status())
                progress.update(task, advance=len(answers) - (0 if cut else len(again)), info=said)
                if not again or cut:
                    return
                answers = [a for a in answers if a[0] in again]
                if cut := outage.cut(stop.wait(wait)):  # Ctrl-C, a fatal error or the outage's stop meanwhile, or
                    # its stop time come (outage46): not sent again (the outage's lock, never taken under ours)
                    with lock:
                        for i, where, _ in answers:
                            tally.not_sent(i, where, f"not sent again ({again[i].get('code')}): {cut}")
                    progress.update(task, advance=len(answers))
                    return
                client.count_retry()
                resend = [g for g in good if g[0] in again][:(most := outage.size(len(answers)))]  # 1 if refusing
                sent = time.monotonic()
                answers = post(resend) + answers[most:]  # the others wait with their last answer (outage38)

        start = time.monotonic()
        interrupted, last, unread = False, "", ""
        pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="gamead-submit")
        futures: dict[Future[None], list[Item]] = {}  #: each request's ads, to name them if it is cancelled
        before: dict[Future[None], str] = {}  #: the last ad handed out before each request (lastSent if cancelled)

        def woken() -> bool:  # a stop signal noted
            return bool(came)

        def check() -> None:  # a stop signal noted: acted on here, where no wait is under way
            if came:
                raise KeyboardInterrupt

        def tick() -> None:  # the bar while an outage holds the sending back: what it says of the outage
            progress.update(task, info=progress_info(counts, rejected, outage.status()))

        feed = Feed(enumerate(ads), woken=woken) if live else None
        chunk: list[Item] = []  #: the run in hand, not yet given to the pool
        runs = Runs((feed.chunks if feed else partial(chunks, enumerate(ads)))(lambda: outage.size(limit["size"])))
        acted = 0  #: the stop signals acted on: the first stops the sending, a second the wait for those out
        try:
            for run in runs:
                chunk = run
                if rate > 0 and pace(stop, start + outage.paused + chunk[-1][0] / rate, woken, POLL):
                    check()  # its last ad's turn came, or a stop
                    break
                if outage.hold(stop, tick, woken):
                    with lock:  # sending stops (the API away past client.retry_for); with no count to take notSent
                        named = chunk + runs.left() + (feed.rest() if feed else []) if total is None else []
                        for i, item in named:  # from (a stream), the ads in hand and read ahead are named
                            tally.not_sent(i, labelled(i, item)[0], f"not sent: {outage.reason()}")
                    break
                check()
                chunk = run = runs.cut(run, outage.size(len(run)))  # a store outage begun since it was formed
                while not outage.waiting(partial(slots.acquire, timeout=POLL)):  # an outage's part: paused
                    check()
                if stop.is_set():
                    slots.release()
                    break
                outage.started()
                with signals_held():  # a Ctrl-C lands before or after the hand-over, never inside it: the run
                    with lock:
                        tally.hand_out([(i, labelled(i, item)[0]) for i, item in run])
                    future = pool.submit(one, run)  # could be sent twice (review30b F2), and
                    futures[future], before[future], chunk = run, last, []
                    sent, last = sent + len(run), labelled(*run[-1])[0]  # counted with it: held, the Ctrl-C is
                    # raised as the block ends, past a count after it (regress41 F2: "sent 100, accepted 110")
                if shown is not None and sent > shown:  # more than counted (a file appended while read): the bar's
                    shown, total = sent, None  # total grows with them (attack40a F5: it showed 3000/1000), and a
                    progress.update(task, total=shown)  # stop names the ads in hand, as a stream's does
                if len(futures) > 4 * concurrency:  # those done and counted go: a long stream keeps no list of all
                    futures = {f: c for f, c in futures.items() if not counted(f)}
                    before = {f: before[f] for f in futures}
                check()  # before the next run is taken: a stop during the hand-over sends no run more
        except OSError as exc:  # the input read no further (review30b F6: EIO, a non-blocking pipe; attack38b F1:
            unread = str(exc) if isinstance(exc, InputStopped) else f"{type(exc).__name__}: {exc}"  # a 64 MiB line)
        except KeyboardInterrupt:
            interrupted, acted = True, min(len(came), 1)
            stop.set()
            client.cancel_retries()
            held = chunk + runs.left() + (feed.partial() if feed else [])  # in hand, partial run: sent, not dropped;
            with lock:  # read ahead of them: named (review30b F1: a paced run's Ctrl-C sent ~1,000 more at once)
                for i, item in feed.rest() if feed else []:
                    tally.not_sent(i, labelled(i, item)[0], f"not sent: read ahead when {stopped_by()} came")
            for piece in (held[k:k + limit["size"]] for k in range(0, len(held), limit["size"])):
                outage.started()
                with lock:
                    tally.hand_out([(i, labelled(i, item)[0]) for i, item in piece])
                future = pool.submit(one, piece, False)
                futures[future], before[future] = piece, last  # the last ad of the piece before (flake57: of all
                sent, last = sent + len(piece), labelled(*piece[-1])[0]  # held, one a second Ctrl-C may cancel)
        # the requests in flight finish (each bounded by the client timeout), looked at every POLL s for a stop
        while pending := [f for f in futures if not f.done()]:
            if len(came) > acted and not interrupted:  # the first stop after the last send: no resends
                stop.set()
                client.cancel_retries()
                interrupted, acted = True, acted + 1
            if len(came) > acted:  # a second stop: the requests in flight end now, the exit does not wait (F11)
                pool.shutdown(wait=False, cancel_futures=True)
                client.abort()
                break
            if not outage.hold(stop, tick, woken):
                outage.waiting(partial(wait_futures, pending, timeout=POLL))  # an outage's part: paused
            # held as before a next batch: an outage's stop comes, said (review47 F2: unsaid, stoppedByOutage false)
        pool.shutdown(wait=not pending)  # its threads idle, or left to end as their requests are cut
        elapsed, client.watch = time.monotonic() - start, None  # the lookups after it are not the run's
        cancelled = 0  # of the ads handed out, those a second Ctrl-C cancelled (counted by the tally)
        with lock:  # a second Ctrl-C cancelled these before they went out: named, not lost
            for i, item in (pair for f, run in futures.items() if f.cancelled() for pair in run):
                tally.not_sent(i, labelled(i, item)[0], f"not sent: {stopped_by()} came before its batch went out")
                sent, cancelled = sent - 1, cancelled + 1  # never sent: notSent once (left39b: it was rejected too)
            tally.abandon()  # those still out when a second Ctrl-C ended the wait: may be queued (attack45 F4)
        # the pool starts requests in order: those cancelled are the last handed out, none of their ads went out
        last = next((before[f] for f in futures if f.cancelled()), last)  # (regress45: it named their last ad)
        for future in futures:  # every future is read: an exception not counted in one() (none is) surfaces here
            if future.done() and not future.cancelled() and not isinstance(future.exception(), Exception):
                future.result()

    interrupted = interrupted or bool(came)  # a stop as the last request ended: the run says so, exit 130
    if fatal and counts["accepted"] + counts["duplicates"] == 0 and not counts["unknown"]:
        raise fatal[0]
    order, unsure, unknown = tally.order, tally.unsure, tally.unknown
    kept = sorted(order)  # input order: the batches answer in any order
    ids = [order[i] for i in kept if i < FOLLOWED_MAX] if follow else []  # what --wait follows
    summary: dict[str, Any] = {
        "sent": sent,
        "accepted": counts["accepted"],
        "duplicates": counts["duplicates"],
        "rejected": sum(rejected.values()), "rejectedByCode": dict(rejected),  # after retries (gamead_cli.retry)
        "retried": client.retried,  # requests sent again after a 429, a 503 or a lost connection
        "elapsedSeconds": round(elapsed, 3),
        "ratePerSecond": round(sent / elapsed, 1) if elapsed > 0 else 0.0,  # ads sent a second
        "acceptedPerSecond": round(counts["accepted"] / elapsed, 1) if elapsed > 0 else 0.0,  # newly queued a second
        "answeredPerSecond": round(counts["answered"] / elapsed, 1) if elapsed > 0 else 0.0,  # answered, any answer
        "targetRate": rate or None,
        # the first REJECTIONS_LISTED rejected ads in input order (whatever order they were answered in)
        "rejections": [tally.listed[i] for i in sorted(tally.listed)],
        "rejectionsNotListed": max(0, sum(rejected.values()) - len(tally.listed)),
        # neither accepted nor rejected: their publish (or their whole batch) got no answer in time, so they may
        # still be analysed; every id, to look up (gamead ads get), and the keys of those whose id never came back
        "maybeQueued": counts["unsure"] + counts["unknown"],
        "maybeQueuedIds": [unsure[i][1] for i in sorted(unsure) if i < ITEMS_KEPT],
        "_unsure": unsure, "_unknown": unknown,  # for gamead_cli.submit.settling, which removes them
        # of those, the ones whose whole batch got no answer: ids unknown (found in `gamead ads list`); with
        # --idempotency-key their keys, which the same command with the same key settles (nothing queued twice)
        "maybeQueuedUnknown": counts["unknown"], "maybeQueuedLost": dict(tally.lost),  # how: timeout, reset, closed
        "maybeQueuedKeys": [f"{idempotency_key}-{i}" for i in sorted(unknown) if i < ITEMS_KEPT if idempotency_key],
        "idempotencyKey": idempotency_key, "itemsOmitted": max(0, sent - ITEMS_KEPT),  # past ITEMS_KEPT: counted
        **outage.summary(counts["unsent"]),  # the API away: when, the pause, the ads it left not sent
    }
    if keep_items:
        summary["acceptedIds"] = [order[i] for i in kept if i < ITEMS_KEPT]
        summary["items"] = [tally.items[i] for i in sorted(tally.items)]
    if follow:
        summary["notFollowed"] = counts["accepted"] - len(ids)  # accepted past the first FOLLOWED_MAX ads
    if idempotency_key and rejected.get("idempotency_key_reused"):
        summary["keyAdvice"] = reused_key_advice(idempotency_key)  # said once: how to settle without doubling
    if counts["split"] or counts["split_bytes"]:  # the API refused bigger batches: which setting (attack60)
        summary.update(batchSize=limit["size"], batchSizeBy=tally.split_settings())
    if interrupted or unread:
        summary["interrupted" if interrupted else "inputError"] = True if interrupted else unread
    never = 0  # ads never handed out
    stopped = interrupted or (stop.is_set() and not unread)  # stopped before its input's end, Ctrl-C too
    if stopped:
        never = total - sent - cancelled if total is not None and sent + cancelled < total else 0
    # always, 0 for a run that sent everything: the README's sum holds over the JSON's keys (regress39 F4)
    summary.update(figures := tally.not_sent_figures(never))  # with those the stop caught (left39b)
    # why; a stop that came once every ad of a known input had gone out stopped nothing: not said (attack52 F5)
    if stopped and (interrupted or total is None or figures["notSent"]):
        summary["stoppedBecause"] = stop_reason(fatal, outage.reason(), client.retry_for, bool(idempotency_key),
                                                interrupted, stopped_by())
    if interrupted or unread or outage.stopped:
        summary["lastSent"] = last or None  # the input's ads up to this one went out; none after it
    return summary, ids
