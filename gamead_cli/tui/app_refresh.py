"""The dashboard's refreshing (mixed into :class:`~gamead_cli.tui.app.DashboardApp`): every tick one worker
fetches a snapshot in a thread (the DLQ page only when it may have changed), records it with ``--record``, shows
it, and asks once who the token is (read-only when it may not act). A failed refresh becomes the banner over the
last data; the next tick tries again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any

from textual import work

from gamead_cli import exitcodes
from gamead_cli.formats import age
from gamead_cli.tui.source import fetch_snapshot
from gamead_cli.tui.view import Snapshot
from gamead_core.errors import ApiClientError, ApiUnreachable, NoAnswer, NotFound

log = logging.getLogger(__name__)

#: the DLQ page is re-read at least every this many refreshes (and whenever its size changes)
DLQ_EVERY = 5
#: seconds between updates of the stale banner's age (:meth:`Refreshing._show_failure`)
AGE_EVERY = 1.0


#: how long the live dashboard waits for one answer, and the knob that changes it (README's `gamead top` row)
LIVE_WAIT_TEXT = "2 × --refresh, at least 2 s, at most client.timeout: a larger --refresh waits longer"


def live_timeout(client_timeout: float, refresh: float) -> float:
    """Seconds the live dashboard waits for one answer: ``2 × refresh``, at least 2 s (a dead API shows the banner
    within a refresh or two instead of hanging the screen), at most ``client_timeout``. Pure."""
    return min(client_timeout, max(2.0, 2 * refresh))


def describe_failure(exc: BaseException, refresh: float, attempts: int) -> str:
    """The banner for a failed refresh: what failed and that we keep trying. An API that got the request and did
    not answer within the dashboard's wait is "slow", naming the wait and its knob, not "unreachable" (attack33b
    F2: over a 2 s RTT link every answer took 2.0 s and the banner said "API unreachable" for ever)."""
    retry = f"retrying every {refresh:g}s (attempt {attempts})"
    if isinstance(exc, NoAnswer) and getattr(exc, "lost", None) == "timeout":
        waited = getattr(exc, "waited", None)
        within = f"no answer within {waited:g} s" if isinstance(waited, (int, float)) else "no answer in time"
        return (f"⚠ API slow — it got the request and gave {within}, the live dashboard's wait ({LIVE_WAIT_TEXT}) "
                f"— {retry}")
    if isinstance(exc, ApiUnreachable):
        return f"⚠ API unreachable — {exc.message} — {retry}"
    if isinstance(exc, ApiClientError):
        if exc.status in (401, 403):
            return f"⚠ not allowed to read the API: {exc.message}"
        return f"⚠ the API answered an error: {exc.message} — {retry}"
    return f"⚠ refresh failed: {type(exc).__name__}: {exc} — {retry}"


def stale_note(shown_at: float | None, now: float) -> str:
    """What the banner adds of the figures under it: `` — the figures below are the last answer's, 41s old, not
    live`` (``shown_at``: monotonic seconds when the last answer was shown; ``now``: monotonic seconds), "" when
    none was (nothing is shown yet). Every age on screen (HEARTBEAT ``3.6s ago``, OLDEST, ``as of``) was counted
    when that answer came: before tui42 F1, after a SIGSTOP of the API the nodes table said ``ok`` and
    ``3.6s ago`` for minutes, the banner naming the failure and the attempt but not how old the figures were. Pure."""
    if shown_at is None:
        return ""
    return f" — the figures below are the last answer's, {age(max(0.0, now - shown_at))} old, not live"


def stale_page(snap: Snapshot) -> bool:
    """True when the DLQ page came from the API's cache of recent answers (``ageSeconds`` > 0) and counts another
    DLQ size than the stats just read: the next refresh reads it again rather than 5 refreshes later (a fresh
    page, age 0, is shown as it is, whatever the stats' older sample says). Pure."""
    page, dlq = snap.dlq, (snap.stats or {}).get("dlq") if isinstance(snap.stats, Mapping) else None
    if not isinstance(page, Mapping) or not isinstance(dlq, Mapping) or not page.get("ageSeconds"):
        return False
    return page.get("inDlq") != dlq.get("size")


class Refreshing:
    """Fetching snapshots and showing them: ``tick`` (the timer's), ``poll`` (the worker), ``record``,
    ``learn_role``, ``apply`` and ``refresh_now``. Uses the app's reactives, ``source``, ``recorder`` and
    ``player``."""

    def tick(self) -> None:
        """Start a refresh unless paused or one is still running (a slow API is not piled on)."""
        if self.paused or self._busy:
            return
        self._busy = True
        self.poll()

    def _polled(self) -> None:
        """A refresh (or a replay's frame) has ended: the next may start, at once if one was asked for meanwhile:
        first a replay's steps pressed meanwhile (:meth:`ReplayControls.action_step`), then a refresh."""
        self._busy = False
        if self._steps and self.is_running:
            self._busy = True
            self.take_steps()
        elif self._again and self.is_running:
            self._again = False
            self.tick()

    def _want_dlq(self, stats: Mapping[str, Any], forced: bool = False) -> bool:
        size = (stats.get("dlq") or {}).get("size") if isinstance(stats, Mapping) else None
        due = forced or self._ticks % DLQ_EVERY == 0 or size != self._dlq_size_seen
        if due:
            self._dlq_size_seen = size
        return due

    @work(group="poll", exit_on_error=False)
    async def poll(self) -> None:
        """One refresh; never cancelled by the next (tui54: its thread cannot be, the answer was dropped): a
        refresh asked for meanwhile follows it (:meth:`refresh_now`)."""
        if self.player is not None:
            await self.play(1)
            return
        try:
            self._ticks += 1
            forced, self._dlq_forced = self._dlq_forced, False  # a DLQ read asked for from now on: the next's
            snap = await asyncio.to_thread(fetch_snapshot, self.source, self.history,
                                           want_dlq=partial(self._want_dlq, forced=forced), previous=self.snapshot)
            self._dlq_forced = self._dlq_forced or stale_page(snap)
            self.apply(snap)
            await self.follow_job()
            if self.recorder is not None:
                await self.record(snap)
            if not self._role_known:
                await self.learn_role()
        except Exception as exc:  # noqa: BLE001 - any failure becomes the banner; the next tick retries
            self.failures += 1
            self._dlq_forced = True
            self._failure = describe_failure(exc, self.refresh_seconds, self.failures)
            self._stale(True)
        finally:
            self._polled()

    async def follow_job(self) -> None:
        """The job line brought up to date with the job it shows, read once a refresh until the job has ended:
        a replay stops following its progress stream once past acting on its entries, and the line stayed at
        ``running (following) · completed 0 · deadAgain 0 · stillRunning 12`` after the job had succeeded with 10
        completed and 2 dead again (regress41b F4). A read that fails is tried at the next refresh."""
        job_id = self._job_followed
        if job_id is None:
            return
        try:
            job = await asyncio.to_thread(self.source.job, job_id)
        except NotFound:  # gone (an API that forgot it): the line keeps its last state
            self._job_followed = None
            return
        except ApiClientError:
            return
        if job.get("id") != job_id or self._job_followed != job_id or (self.job or {}).get("id") != job_id:
            return  # another job started meanwhile: its line is its own
        self.job = job
        if job.get("state") not in ("queued", "running"):
            self._job_followed = None

    async def record(self, snap: Snapshot) -> None:
        """``--record``: append the snapshot; say once when the size cap stops the recording."""
        assert self.recorder is not None
        full = self.recorder.full
        try:
            await asyncio.to_thread(self.recorder.write, snap)
        except (OSError, exitcodes.OutputFailed) as exc:  # OutputFailed: the file cannot take it (atomic.PendingFile)
            self.notify(f"recording stopped: {getattr(exc, 'strerror', None) or exc}", severity="error", timeout=10)
            with contextlib.suppress(OSError, exitcodes.OutputFailed):  # what it holds cannot be written either
                self.recorder.close()
            self.recorder = None
            return
        if self.recorder.full and not full:
            self.notify(f"recording stopped at its size cap ({self.recorder.written:,} bytes, "
                        f"{self.recorder.frames:,} snapshots in {self.recorder.path})", severity="warning",
                        timeout=10)

    async def learn_role(self) -> None:
        """Ask the API who this token is (``GET /v1/whoami``) and turn read-only if it may not act. An API
        without the route, or a token that may not ask, leaves the dashboard as it is; other failures are
        retried at the next refresh."""
        try:
            me = await asyncio.to_thread(self.source.whoami)
        except NotFound:
            self._role_known = True
            return
        except ApiClientError as exc:
            self._role_known = exc.status is not None and exc.status < 500
            return
        self._role_known = True
        if not me.get("mayAct", True) and not self.readonly:
            self.readonly = True
            self.notify(f"read-only: token {me.get('name')!r} has role {me.get('role')!r}, which may not replay "
                        "or purge", timeout=6)

    def watch_readonly(self) -> None:
        self.refresh_bindings()  # the footer drops (or shows) replay and purge

    def apply(self, snap: Snapshot) -> None:
        """Show one snapshot (called on the app's thread)."""
        self.snapshot = snap
        self.failures = 0
        self._failure = None
        try:
            self.stats = snap.stats
            self.nodes = list(snap.nodes)
            self.dlq = snap.dlq
            self.dlq_error = snap.dlq_error
            self.audit = snap.audit
            self.audit_error = snap.audit_error
        except Exception as exc:  # noqa: BLE001 - unexpected data must not end the app
            log.debug("cannot show snapshot", exc_info=True)
            self.error = f"⚠ cannot show the API's answer: {type(exc).__name__}: {exc}"
            return
        self.error = None
        self._shown_at = time.monotonic()
        self._stale(False)

    def _stale(self, stale: bool) -> None:
        """Dim the panels while their figures are not live, and keep the banner's age of them ticking every
        AGE_EVERY s: it was counted only at each failed refresh, so with ``--refresh 30`` the banner said the
        figures were up to a refresh (30-60 s) younger than they were (attack42c F6)."""
        self.query("#top-row, NodesPanel, DlqPanel, AuditPanel").set_class(stale, "-stale")
        if stale:
            self._show_failure()
            if self._aging is None:
                self._aging = self.set_interval(AGE_EVERY, self._show_failure, name="stale-age")
        elif self._aging is not None:
            self._aging.stop()
            self._aging = None

    def _show_failure(self) -> None:
        """The banner: the last refresh's failure and how old the figures under it are now."""
        if self._failure is not None:
            self.error = self._failure + stale_note(self._shown_at, time.monotonic())

    def refresh_now(self, *, dlq: bool = False) -> None:
        """A refresh now (``dlq``: with the DLQ page), or, while one is on its way (it may have read before what
        changed), as soon as it ends: never a second request beside it."""
        if dlq:
            self._dlq_forced = True
        if self._busy:
            self._again = True
            return
        self.tick()
