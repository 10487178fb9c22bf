"""The API going away and coming back during one bulk ``gamead submit`` (fix33a): what is done, and what is said.

An outage begins at the first connection that cannot be made (refused, connect timeout) once the API had answered
this run, or been connected to; it ends at the next answer of any kind. Meanwhile (:class:`Outage`):

* sending pauses: no new batch goes out while one is out (the batches out retry, :mod:`gamead_cli.retry`; with none
  out, the next one goes to try again), and the ``--rate`` schedule waits with it, so it resumes where it paused —
  no burst of the ads whose turn came meanwhile — and the run ends later by the pause;
* the pause lasts at most ``client.retry_for`` (the budget of one request's retries): an API still unreachable then
  ends the sending, at that time whatever is out — the requests out give up and the ads never sent, or caught
  waiting for their next try, are ``notSent`` (never queued, safe to resend: :mod:`~gamead_cli.submit.tally`) —
  rather than counting every later batch refused;
* one line on stderr when it begins (since when, why, what is done, until when), one when it ends or stops the
  run, and the progress bar says it meanwhile (:meth:`Outage.status`).

The API's store refusing every ad is an outage too: it begins at a batch answer in which no ad was taken and at
least one was refused for the store (:func:`store_verdict`: a 503 ``queue_unavailable``, ``topology_changed``…
(:data:`STORE_CODES`: every 503 an ad can get), the whole request or per ad, with or without ``details.adId``) and
ends at the first ad taken (accepted or a duplicate), not at any answer. It pauses and stops the sending as above,
and meanwhile each batch is one ad (:meth:`Outage.size`): a probe, so at most one ad per try can be left uncertain
(its publish unanswered: settled by lookup in the summary).

Thread-safe: the client's threads call :meth:`refused` and :meth:`answered`, the sender :meth:`hold`."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any, TypeVar

from gamead_cli import service_clock
from gamead_cli.submit.outage_words import (at_once_text, begun_text, ended_text, reason_text, stopped_text,
                                            status_text)
from gamead_core.errors import ApiUnreachable

T = TypeVar("T")
#: the style of each mark of a line: begun, ended, the run stopped
MARKS = {"!": "yellow", "✓": "green", "✗": "red"}
#: seconds between two looks of a paused sender at the outage (an answer or a Ctrl-C ends the wait sooner)
LOOK_EVERY = 0.25
#: seconds between two batches handed out while a proxy answers for the API (its ads not resent unkeyed: each probe's
#: ad may be queued; without it every ad whose turn came went out, 81 of 120 at 40/s in a 2 s cut)
PROBE_EVERY = 1.0
#: error codes (a whole request's 503 or one ad's error in a batch answer) that say the API node, or its store,
#: refuses every ad now, for a cause not the ad's: every 503 of the README's error table an ad can get — NATS or
#: JetStream unreachable, unanswered, full or failing, the work stream or the record bucket full, a stream missing
#: or unusable, this node's queue.partitions stale after a repartition (attack38a F1: 1,020 ads answered
#: topology_changed for 2 min, no line), its connections all taken. Not the ad's own refusals (400, 409, 422), nor
#: 429 (the caller's rate: the client waits it out). A whole request's 503 counts whatever its code (a proxy's,
#: no gamead body: the API unreachable behind it instead, :meth:`Outage.refused`)
STORE_CODES = frozenset({"queue_unavailable", "storage_failed", "storage_failing", "records_full",
                         "topology_missing", "queue_full", "topology_error", "topology_changed",
                         "too_many_connections"})


def store_verdict(bodies: Iterable[Any]) -> str | None:
    """What one batch's answers say of the API's store: ``bodies`` are each ad's outcome (a per-ad result dict —
    ``{"id", ...}`` taken, ``{"error": {"code", "message"}}`` refused — or the exception standing for it: the whole
    request refused, no answer, a bad line). ``""`` when an ad was taken (the store works), the cause
    (``queue_unavailable: NATS did not answer in time``) when none was and at least one was refused with a code of
    :data:`STORE_CODES` (or a whole request with any 503), else None (nothing said of the store: bad lines,
    validation refusals, no answer — a lost answer is not the store's). Pure."""
    cause = None
    for body in bodies:
        error = body.get("error") if isinstance(body, dict) else body
        if isinstance(body, dict) and not isinstance(error, dict):
            if "id" in body:
                return ""
            continue
        if isinstance(error, dict):
            code, message = error.get("code"), error.get("message")
        else:
            code, message = getattr(error, "code", None), getattr(error, "message", None)
            if isinstance(error, ApiUnreachable):  # never reached, or no answer: not the store's word
                continue
        if (code in STORE_CODES or getattr(error, "status", None) == 503) and cause is None:
            first = re.split(r"[;:]", str(message or ""))[0].strip()  # the first clause: not its ad's id
            cause = f"{code}: {first}"[:120].rstrip(": ")
    return cause


def iso_text(epoch: float) -> str:
    """``2026-12-04T02:31:05.123Z`` for epoch seconds ``epoch``. Pure."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pace(stop: threading.Event, at: float, woken: Callable[[], bool] = lambda: False, step: float = 60.0) -> bool:
    """Wait until monotonic time ``at`` (in steps of ``step`` s at most: ``Event.wait`` overflows past
    ``TIMEOUT_MAX``); True if ``stop`` was set meanwhile or ``woken()`` became true (asked after each step)."""
    while (delay := at - time.monotonic()) > 0:
        if stop.wait(min(delay, step)) or woken():
            return True
    return stop.is_set() or woken()


class Outage:
    """The outages of one run against ``api_url``: ``hold`` (seconds, ``client.retry_for``) the longest pause,
    ``say(mark, text)`` prints a line (``!`` begun, ``✓`` ended, ``✗`` the run stopped). ``clock`` is monotonic,
    ``wall`` epoch seconds, the service's clock (:mod:`gamead_cli.service_clock`: the times said match the
    service's logs and records whatever this machine's clock says); both injectable for tests."""

    def __init__(self, api_url: str, hold: float, say: Callable[[str, str], None], *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = service_clock.now) -> None:
        self.api_url, self.hold_for, self._print, self._clock, self._wall = api_url, hold, say, clock, wall
        self._cond = threading.Condition()
        self.since: float | None = None  #: monotonic start of the outage under way (None: the API answers)
        self._since_wall = 0.0
        self.cause = ""
        self.kind = ""  #: of the outage under way: ``unreachable`` (no connection) or ``store`` (writes refused)
        self.proxied = False  #: the API unreachable behind a proxy that answers for it (:meth:`refused`)
        self._handed = 0.0  #: monotonic time the last request was handed out
        self.spans: list[dict[str, Any]] = []  #: ``{"since", "until", "seconds", "cause"}``, one per outage
        self.out = 0  #: requests out (handed to the pool, not finished)
        self.paused = 0.0  #: seconds the sending paused in all (the schedule waits as long)
        self.stopped = False  #: the run stopped: the API was still unreachable at the end of a pause
        self.took = False  #: an ad of the run was taken (accepted, a duplicate): :meth:`judge` saw one
        self._waited = 0.0  #: seconds from the outage's start to the stop
        self.ended: float | None = None  #: monotonic end of the last outage that ended (None: none has)
        self._began = 0.0  #: monotonic start of the last outage begun (under way or ended)

    def _say(self, mark: str, text: str) -> None:
        """Print a line; one that cannot be written changes nothing else (review47 F3: stderr on /dev/full, the
        ``!`` line's ``OSError`` raised through a request, its batch's ads counted twice, no summary, exit 1)."""
        try:
            self._print(mark, text)
        except (OSError, ValueError):  # ValueError: a closed file
            pass

    # --- the client's threads ----------------------------------------------------------------------------

    def refused(self, cause: str, *, proxy: bool = False, resent: bool = True) -> bool:
        """A connection could not be made (``cause``: ``connection refused``…), or (``proxy``) a proxy in front of
        the API answered for it (502/503/504: outage46's leftover; one ad a batch while it lasts, :meth:`size`): the
        outage begins if none is under way (said once; a store outage under way becomes this one, its start kept).
        True while a request may still wait to retry: within :attr:`hold_for` of the outage's start. Once the run
        stopped, False and nothing begins (paused46: a late ``!`` line promising a stop already made, as regress46
        saw of :meth:`judge`). A proxy's answer to a request not ``resent`` (unkeyed) before any ad was taken stops
        the run at once (``gamead submit``'s rule for a first batch with no answer): said so, no pause promised."""
        with self._cond:
            if self.stopped:  # the run stopped: its requests out give up
                return False
            begun = self.since is None
            if begun:
                self._begin(cause)
            self.kind, self.proxied = "unreachable", self.proxied or proxy
            retry, at_once = self._clock() < self.since + self.hold_for, proxy and not resent and not self.took
        if begun and at_once:  # said outside the lock: printing waits on the progress bar's own
            self._say("✗", at_once_text(self._since_wall, self.api_url, cause))
        elif begun:
            self._say("!", self._begun_text())
        return retry

    def answered(self, sent: float | None = None) -> None:
        """The API answered a request sent at ``sent`` (the clock's time; None: now): the outage under way, if it
        is the API unreachable and the request went after it began, ends (said, unless it stopped the run); a store
        outage ends only at an ad taken (:meth:`judge`). An answer to a request sent before the outage began says
        nothing of the API since (flakes50: a proxy passed a batch on just before its upstream went, the batch's
        200 came after the first 504 and ended the outage, the next 504 began another: two outages said of one)."""
        since = self.since
        if since is None or self.kind != "unreachable" or sent is not None and sent < since:
            return  # every answer comes here: no lock while it answers
        self._end("unreachable", sent)

    def judge(self, bodies: Iterable[Any], sent: float | None = None) -> None:
        """The outcomes of one batch's ads (:func:`store_verdict`), its request sent at ``sent`` (the clock's time;
        None: now): every ad refused for the store begins a store outage if none is under way (said once) and the
        run has not stopped (regress46: an answer after the stop began a second outage, its ``!`` line promising a
        stop already made); an ad taken ends a store outage (said) if its batch went after the outage began (as
        :meth:`answered`: one taken before says nothing of the store since)."""
        verdict = store_verdict(bodies)
        if verdict == "":
            self.took = True
            if self.since is not None and self.kind == "store":
                self._end("store", sent)
            return
        if verdict is None or self.since is not None or self.stopped:
            return
        with self._cond:
            if self.since is not None or self.stopped:
                return
            self._begin(verdict)
            self.kind = "store"
        self._say("!", self._begun_text())

    def refused_whole(self, error: Any) -> None:
        """A whole request answered 503 by the API itself (``error``: its :class:`ApiClientError`), before the
        client's own retries of it end: one of :data:`STORE_CODES` begins a store outage at once (outage38: a
        batch refused ``storage_failing`` was retried for ``client.retry_for`` unsaid while full batches went on)."""
        self.judge([error])

    def _begin(self, cause: str) -> None:  # under the lock
        self.since, self._since_wall, self.cause, self.proxied = self._clock(), self._wall(), cause, False
        self._began = self.since
        self.spans.append({"since": iso_text(self._since_wall), "until": None, "seconds": None, "cause": cause})

    def _end(self, kind: str, sent: float | None = None) -> None:
        with self._cond:
            if self.since is None or self.kind != kind or sent is not None and sent < self.since:
                return
            seconds = self._clock() - self.since
            self.spans[-1].update(until=iso_text(self._wall()), seconds=round(seconds, 3))
            self.since, self.ended = None, self._clock()
            self._cond.notify_all()
            said = not self.stopped
        if said:
            self._say("✓", ended_text(self._wall(), self.api_url, seconds, kind, self.cause))

    def resend_until(self, own: float) -> float:
        """Until when (the clock's time) a batch whose own resends end at ``own`` resends its refused ads: during a
        store outage, until the outage's own stop (its start + :attr:`hold_for`), so the run stops then as its
        ``!`` line said, or they go once the store takes ads again (regress38 F4: a 12 s outage left 294 ads of
        batches whose own ``client.retry_for`` ran out inside it rejected, the stop never came, and the row said
        they were resent). After an outage ended, a batch begun before its end (``own`` − :attr:`hold_for`) resends
        them for :attr:`hold_for` after it (regress46: NATS frozen 8 s, an outage of 6.1 s, 41 ads held through it
        counted rejected ``storage_failing`` as it ended: their batch's own 10 s spent, no wait fitted)."""
        since, ended = self.since, self.ended
        if since is not None:
            return max(own, since + self.hold_for) if self.kind == "store" else own
        return max(own, ended + self.hold_for) if ended is not None and ended > own - self.hold_for else own

    def left(self) -> float | None:
        """Seconds until the outage under way stops the run (its start + :attr:`hold_for`); None: none is."""
        since = self.since
        return None if since is None else since + self.hold_for - self._clock()

    def size(self, most: int) -> int:
        """The next batch's size: ``most`` (ads), or 1 while the store refuses or a proxy answers for the API (a
        probe: one ad left uncertain at most)."""
        return 1 if self.since is not None and (self.kind == "store" or self.proxied) else most

    # --- the sender ---------------------------------------------------------------------------------------

    def started(self) -> None:
        """A request was handed out."""
        with self._cond:
            self.out, self._handed = self.out + 1, self._clock()

    def finished(self) -> None:
        """A request handed out ended (answered, refused, given up)."""
        with self._cond:
            self.out -= 1
            self._cond.notify_all()

    def hold(self, stop: threading.Event, tick: Callable[[], None] = lambda: None,
             woken: Callable[[], bool] = lambda: False) -> bool:
        """Before the next batch goes out: wait while the API is unreachable and a request is out, or, a proxy
        answering for it, the last went less than :data:`PROBE_EVERY` ago (calling
        ``tick`` every :data:`LOOK_EVERY` s: the progress bar). Returns True, ``stop`` set, when the run must stop
        sending: the outage outlasted :attr:`hold_for` and no request is out any more (said once). Adds the wait to
        :attr:`paused`. Returns (False) at once when ``stop`` is set, within :data:`LOOK_EVERY` of ``woken()``
        (a stop signal noted, :func:`gamead_cli.stops.signals_flagged`)."""
        began = self._clock()
        try:
            while True:
                with self._cond:
                    if stop.is_set() or woken():
                        return False
                    if self._due():  # its stop time: the requests out end as they may (left39b)
                        waited = self._stop()
                        break
                    if self.since is None or self.out == 0 and not (
                            self.proxied and self._clock() < self._handed + PROBE_EVERY):  # a proxy's: one a second
                        return False  # the API answers, or nothing is out: the next batch goes, to try again
                    self._cond.wait(LOOK_EVERY)
                tick()
            stop.set()
            self._say("✗", stopped_text(self._wall(), self.api_url, self.kind, waited, self.cause, self.hold_for))
            return True
        finally:
            self.paused += self._clock() - began

    def waiting(self, wait: Callable[[], T]) -> T:
        """One bounded wait of the sender's outside :meth:`hold` (``wait()``, returned): for a free request slot
        (the batches out keep theirs through a store outage, resending one ad at a time), or, every ad handed out,
        for the requests out. The part of it an outage spans counts in :attr:`paused` as a hold does, so the
        ``--rate`` schedule waits as long and the row's "paused" is the outage's part of the run (paused46: NATS
        frozen 8 s after a 3,000-ad run was all handed out, an outage of 6.0 s said ``!`` then ``✓``, paused 0.0)."""
        began = self._clock()
        try:
            return wait()
        finally:
            with self._cond:  # once the run stopped, a wait is no pause (its hold counted up to the stop)
                end = self._clock() if self.since is not None else self.ended
                if end is not None and end > began and not self.stopped:
                    self.paused += end - max(began, self._began)

    def _due(self) -> bool:  # under the lock: the run stops (said or not yet)
        return self.stopped or (self.since is not None and self._clock() >= self.since + self.hold_for)

    def _stop(self) -> float:  # under the lock: the run stops; the seconds since the outage began
        if not self.stopped:
            self.stopped, self._waited = True, self._clock() - (self.since if self.since is not None else 0.0)
        return self._waited

    def cut(self, stopping: bool) -> str:
        """Why a batch's ads waiting to be sent again are not (left39b item 1): ``stopping`` (the run's stop event
        is set: this outage's stop, a Ctrl-C, a fatal error) or this outage past its stop time (its start +
        :attr:`hold_for`: the run stops then, the sender at its next look, :meth:`hold`) — the words said in
        their ``notSent`` items; ``""`` when neither (their own resends ran out: the caller counts them rejected)."""
        with self._cond:
            if not stopping and not self._due():
                return ""
            if not stopping:
                self._stop()
        return self.reason() or "the run stopped before their next try"

    def status(self) -> str:
        """What the progress bar adds while an outage is under way (``""`` when none is)."""
        return "" if self.since is None else status_text(self.kind, self._since_wall, self.cause)

    def reason(self) -> str:
        """Why the sending stopped, when an outage stopped it (``stoppedBecause``): the API unreachable, or its
        store refusing every ad, past ``client.retry_for``; ``""`` when none did."""
        return reason_text(self.kind, self.cause) if self.stopped else ""

    def _begun_text(self) -> str:
        return begun_text(self._since_wall, self.api_url, self.cause, self.kind, self.hold_for, self.proxied)

    def summary(self, refused: int) -> dict[str, Any]:
        """The figures ``-o json`` adds: ``outages`` (each ``since``/``until``: ISO times, ``until`` None when it
        lasted to the end; ``seconds``; ``cause``), ``pausedSeconds``, ``stoppedByOutage``, and ``refusedByOutage``:
        ``refused`` (the run's ads caught by a stop before their next try: not sent, never queued,
        :meth:`~gamead_cli.submit.tally.Tally.not_sent`) when there was an outage, else 0."""
        with self._cond:
            spans = [dict(s) for s in self.spans]
            if self.since is not None:
                spans[-1]["seconds"] = round(self._clock() - self.since, 3)
            return {"outages": spans, "pausedSeconds": round(self.paused, 3), "stoppedByOutage": self.stopped,
                    "refusedByOutage": refused if spans else 0}
