"""The API going away and coming back during one bulk ``gamead submit`` (fix33a): what is done, and what is said.

An outage begins at the first connection that cannot be made (refused, connect timeout) once the API had answered
this run, or been connected to; it ends at the next answer of any kind. Meanwhile (:class:`Outage`):

* sending pauses: no new batch goes out while one is out (the batches out retry, :mod:`gamead_cli.retry`; with none
  out, the next one goes to try again), and the ``--rate`` schedule waits with it, so it resumes where it paused —
  no burst of the ads whose turn came meanwhile — and the run ends later by the pause (attack32c: a run of 30 s
  took 100 s across a restart, silent; a backlog then went out unpaced);
* the pause lasts at most ``client.retry_for`` (the budget of one request's retries): an API still unreachable then
  ends the sending — the requests out give up (their ads counted rejected ``api_unreachable``: never queued, safe
  to resend) and the ads not sent are named, ``notSent`` — rather than counting every later batch refused;
* one line on stderr when it begins (since when, why, what is done, until when), one when it ends or stops the
  run, and the progress bar says it meanwhile (:meth:`Outage.status`).

Thread-safe: the client's threads call :meth:`refused` and :meth:`answered`, the sender :meth:`hold`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from gamead_cli import service_clock

#: the style of each mark of a line: begun, ended, the run stopped
MARKS = {"!": "yellow", "✓": "green", "✗": "red"}
#: seconds between two looks of a paused sender at the outage (an answer or a Ctrl-C ends the wait sooner)
LOOK_EVERY = 0.25


def clock_text(epoch: float) -> str:
    """``02:31:05 UTC`` for epoch seconds ``epoch``. Pure."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S UTC")


def iso_text(epoch: float) -> str:
    """``2026-12-04T02:31:05.123Z`` for epoch seconds ``epoch``. Pure."""
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pace(stop: threading.Event, at: float) -> bool:
    """Wait until monotonic time ``at`` (in bounded steps: ``Event.wait`` overflows past ``TIMEOUT_MAX``);
    True if ``stop`` was set meanwhile."""
    while (delay := at - time.monotonic()) > 0:
        if stop.wait(min(delay, 60.0)):
            return True
    return stop.is_set()


class Outage:
    """The outages of one run against ``api_url``: ``hold`` (seconds, ``client.retry_for``) the longest pause,
    ``say(mark, text)`` prints a line (``!`` begun, ``✓`` ended, ``✗`` the run stopped). ``clock`` is monotonic,
    ``wall`` epoch seconds, the service's clock (:mod:`gamead_cli.service_clock`: the times said match the
    service's logs and records whatever this machine's clock says); both injectable for tests."""

    def __init__(self, api_url: str, hold: float, say: Callable[[str, str], None], *,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = service_clock.now) -> None:
        self.api_url, self.hold_for, self._say, self._clock, self._wall = api_url, hold, say, clock, wall
        self._cond = threading.Condition()
        self.since: float | None = None  #: monotonic start of the outage under way (None: the API answers)
        self._since_wall = 0.0
        self.cause = ""
        self.spans: list[dict[str, Any]] = []  #: ``{"since", "until", "seconds", "cause"}``, one per outage
        self.out = 0  #: requests out (handed to the pool, not finished)
        self.paused = 0.0  #: seconds the sending paused in all (the schedule waits as long)
        self.stopped = False  #: the run stopped: the API was still unreachable at the end of a pause

    # --- the client's threads ----------------------------------------------------------------------------

    def refused(self, cause: str) -> bool:
        """A connection could not be made (``cause``: ``connection refused``…): the outage begins if none is under
        way (said once). True while a request may still wait to retry: within :attr:`hold_for` of the outage's
        start."""
        with self._cond:
            begun = self.since is None
            if begun:
                self.since, self._since_wall, self.cause = self._clock(), self._wall(), cause
                self.spans.append({"since": iso_text(self._since_wall), "until": None, "seconds": None,
                                   "cause": cause})
            retry = self._clock() < self.since + self.hold_for
        if begun:  # said outside the lock: printing waits on the progress bar's own
            self._say("!", self._begun_text())
        return retry

    def answered(self) -> None:
        """The API answered: the outage under way, if any, ends (said, unless it stopped the run)."""
        if self.since is None:  # every answer comes here: no lock while the API answers
            return
        with self._cond:
            if self.since is None:
                return
            seconds = self._clock() - self.since
            self.spans[-1].update(until=iso_text(self._wall()), seconds=round(seconds, 3))
            self.since = None
            self._cond.notify_all()
            said = not self.stopped
        if said:
            self._say("✓", f"{clock_text(self._wall())} the API at {self.api_url} answers again after "
                           f"{seconds:.1f} s unreachable: sending resumes where it paused")

    # --- the sender ---------------------------------------------------------------------------------------

    def started(self) -> None:
        """A request was handed out."""
        with self._cond:
            self.out += 1

    def finished(self) -> None:
        """A request handed out ended (answered, refused, given up)."""
        with self._cond:
            self.out -= 1
            self._cond.notify_all()

    def hold(self, stop: threading.Event, tick: Callable[[], None] = lambda: None) -> bool:
        """Before the next batch goes out: wait while the API is unreachable and a request is out (calling
        ``tick`` every :data:`LOOK_EVERY` s: the progress bar). Returns True, ``stop`` set, when the run must stop
        sending: the outage outlasted :attr:`hold_for` and no request is out any more (said once). Adds the wait to
        :attr:`paused`. Returns at once when ``stop`` is set (Ctrl-C)."""
        began = self._clock()
        try:
            while True:
                with self._cond:
                    if self.since is None or stop.is_set():
                        return False
                    if self.out == 0:
                        if self._clock() < self.since + self.hold_for:
                            return False  # nothing out: the next batch goes, to try again
                        self.stopped, waited = True, self._clock() - self.since
                        break
                    self._cond.wait(LOOK_EVERY)
                tick()
            stop.set()
            self._say("✗", f"{clock_text(self._wall())} the API at {self.api_url} is still unreachable after "
                           f"{waited:.0f} s ({self.cause}): sending stopped, the summary says which ads were not "
                           f"sent (client.retry_for {self.hold_for:g} s: GAMEAD_CLIENT__RETRY_FOR=S waits longer)")
            return True
        finally:
            self.paused += self._clock() - began

    def status(self) -> str:
        """What the progress bar adds while an outage is under way (``""`` when none is)."""
        if self.since is None:
            return ""
        return f" · API unreachable since {clock_text(self._since_wall)} ({self.cause}): paused"

    def _begun_text(self) -> str:
        until = clock_text(self._since_wall + self.hold_for)
        return (f"{clock_text(self._since_wall)} the API at {self.api_url} is unreachable ({self.cause}): sending "
                f"paused, the requests out are retried; if it still is at {until} (client.retry_for "
                f"{self.hold_for:g} s) their ads are counted rejected (api_unreachable: never queued, safe to resend) "
                "and sending stops, the rest not sent. The --rate schedule resumes where it paused: the run ends "
                "later by the pause")

    def summary(self, refused: int) -> dict[str, Any]:
        """The figures ``-o json`` adds: ``outages`` (each ``since``/``until``: ISO times, ``until`` None when it
        lasted to the end; ``seconds``; ``cause``), ``pausedSeconds``, ``stoppedByOutage``, and ``refusedByOutage``:
        ``refused`` (the run's ads rejected ``api_unreachable``: never queued) when there was an outage, else 0."""
        with self._cond:
            spans = [dict(s) for s in self.spans]
            if self.since is not None:
                spans[-1]["seconds"] = round(self._clock() - self.since, 3)
            return {"outages": spans, "pausedSeconds": round(self.paused, 3), "stoppedByOutage": self.stopped,
                    "refusedByOutage": refused if spans else 0}
