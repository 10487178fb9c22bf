"""Does JetStream still store writes? Each API node's storage probe, for ``/readyz``.

Every ``api.storage_probe_interval`` seconds (every second while failing, and at once when poked after one of
the node's own writes failed) the node puts one small value under its own key in bucket ``gamead_health``
(file storage, replicated like the ad records). The put either succeeds (storage ``ok``) or fails:

* JetStream answers 503 "insufficient resources" (10023) or another store error: the server's
  ``max_file_store`` or the account's storage limit is reached (``failing: JetStream could not store …``);
* JetStream does not answer at all: on a full disk nats-server logs ``no space left on device``, stops
  answering writes to that stream and marks it with a write error until it restarts (``failing: NATS did not
  answer in time``).

The probe bucket is not the work stream, and nats-server keeps a write error per stream: on a full disk the
work stream can be dead to writes while the probe's small puts still fit. So the node's own writes count too
(:meth:`StorageProbe.observe_write`): a submit whose publish JetStream did not answer, or refused for storage,
while the connection is up, marks the work stream ``failing`` until a later publish succeeds, the connection is
re-established (nats-server restarted: the one thing that clears a stream's write error on a single server) or,
once :data:`WRITE_FAILURE_HOLD` seconds have passed, a **write check** (:mod:`gamead_core.queue.write_check`:
one empty message on a subject no consumer reads, in each work stream and in the ad bucket, purged at once; a
cluster moves a stream to another leader by itself, and a refusal past a limit clears when space is freed) finds
that every target answered. Until then the check stays ``failing``: on a full disk nats-server answers header
checks (``Nats-Expected-…``) and stream info as usual but never answers a write to the marked stream, so only a
write tells (a drill saw ``/readyz`` turn ``ready`` 15 s after the last failed submit, while every submit still
failed). The write check's rules:

* **Answered clears.** A target answered if it stored the write, or refused it with a definite JetStream answer
  that is not a storage failure: the stream is full (a limit with ``discard: new``, ``queue_full``), it has no
  leader or no responders, another API error. Those are not this node's storage failing (and would keep every API
  node unready together); ``/readyz`` then says ``degraded: …`` naming each refusing target and why, and the log
  says it too, until a submit's write succeeds, NATS reconnects, a new failure is observed or a later write check
  (run again every :data:`CHECK_BACKOFF_CAP` seconds while degraded, so an idle node recovers too) finds every
  target storing; ``/v1/stats`` ``storage.state`` says ``degraded`` meanwhile. A storage refusal
  (10023 "insufficient resources", a store error) and no answer in time keep it ``failing``.
* **Backs off.** A failed write check is tried again after 1, 2, 4, 8, 16 s, then every :data:`CHECK_BACKOFF_CAP`
  seconds (:func:`check_delay`), not every second; the schedule starts over when a new failure is observed (its
  hold starts again) or the failure clears.
* **Clears only what it saw.** A check clears only failures observed before it started: a submit that fails, is
  stored, or a reconnect while a check runs voids that check's outcome (a generation count); a new failure's own
  hold begins.
* **Leaves nothing that matters.** A check message stored late (nats-py buffers a publish through a disconnect)
  is purged at startup, after every reconnect (twice: at once, then at the next probe) and by every check;
  meanwhile no level's backlog holds it, ``gamead doctor`` skips it, ``ads list`` shows no record for it and no
  check of ``queue.partitions`` counts it as an ad held (:func:`gamead_core.queue.repartition.ads_held`; only the
  streams' raw message counts, ``/v1/stats`` ``queue.messages`` and ``records.keys``, include it until purged).

The probe is stale by at most one interval plus ``nats.request_timeout``; a held failure, by at most
:data:`CHECK_BACKOFF_CAP` plus the check's own timeouts once the hold has passed. It recovers by itself as soon as
writes succeed again; what an operator frees or restarts is in the README ("Operating it").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from gamead_core import names
from gamead_core.errors import GameadError, QueueUnavailable
from gamead_core.queue.closed import server_error
from gamead_core.queue.connection import nats_boundary
from gamead_core.registry.nodes import node_key
from gamead_core.worker.backoff import backoff_ceiling

log = logging.getLogger(__name__)

#: Seconds between probes while storage is failing (recovery is noticed within about this).
FAILING_INTERVAL = 1.0
#: Least seconds between two probes, however often the probe is poked.
MIN_GAP = 0.5

#: Seconds a failed submit-path write keeps the storage check failing before a write check may clear it (unless a
#: submit's write succeeds or NATS reconnects first).
WRITE_FAILURE_HOLD = 15.0
#: The most seconds between two write checks while they fail (:func:`check_delay`).
CHECK_BACKOFF_CAP = 30.0


def check_delay(failed_checks: int) -> float:
    """Pure: seconds from the end of the ``failed_checks``-th write check in a row that failed to the next one
    (0 when none failed yet): 1, 2, 4, 8, 16, then :data:`CHECK_BACKOFF_CAP`."""
    return backoff_ceiling(failed_checks, base=FAILING_INTERVAL, cap=CHECK_BACKOFF_CAP)


def probe_key(node_id: str) -> str:
    """The node's key in ``gamead_health``: its registry key (:func:`gamead_core.registry.node_key`, one to one;
    before, every character outside ``[-/_=.a-zA-Z0-9]`` was ``_``: two nodes could share one, review41 F9)."""
    return node_key(node_id)


class StorageProbe:
    """One API node's probe. ``state`` is ``unknown`` (no probe yet), ``ok`` or ``failing``."""

    def __init__(self, js: JetStreamContext, node_id: str, *, interval: float, timeout: float,
                 on_failure: Callable[[GameadError], None] | None = None,
                 write_check: Callable[[], Awaitable[list[str] | None]] | None = None,
                 purge_checks: Callable[[], Awaitable[None]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._kv = KeyValue(name=names.HEALTH_BUCKET, stream=names.kv_stream(names.HEALTH_BUCKET),
                            pre=names.kv_prefix(names.HEALTH_BUCKET), js=js, direct=False)
        self._key = probe_key(node_id)
        self.interval = interval
        self.timeout = timeout
        self._on_failure = on_failure
        self._clock = clock
        self.state = "unknown"
        self.detail: str | None = None
        self.since = clock()  #: when the current state began
        self.probes = 0
        self._last = 0.0
        self._wake = asyncio.Event()
        self._write_failure: tuple[float, str] | None = None  #: (when, why) the node's last write failed
        self._held_since = 0.0  #: when the held write failure began (its first failed write)
        #: ``write_check()`` returns once every target answered (the refusals, ``"<stream>: <why>"``; raises
        #: ``GameadError`` if a write was not stored): what clears a held write failure after
        #: :data:`WRITE_FAILURE_HOLD`; without one (tests of the rule), the hold's end does
        self._write_check = write_check
        self._purge_checks = purge_checks  #: purges every write check subject (never raises)
        self._purges_due = 1 if purge_checks is not None else 0  #: purges owed (startup, reconnects)
        self._check_failed: str | None = None  #: why the last write check failed
        self._checks_failed = 0  #: write checks failed in a row since the failure was observed
        self._check_at = 0.0  #: clock time before which no write check runs (its back-off)
        self._generation = 0  #: counts failures observed and clears: a check voids if it changed meanwhile
        self.refused: str | None = None  #: the targets that refused the write check that cleared the failure
        self._stored_at = float("-inf")  #: when a submit's write was last stored while the probe was failing

    def poke(self) -> None:
        """Probe now (a write of this node just failed: is it storage?)."""
        self._wake.set()

    def observe_write(self, error: GameadError | None) -> None:
        """Count one of the node's own writes to the work stream: ``None`` if JetStream stored it, else the
        error (only storage failures and unanswered writes count; call it while the connection is up)."""
        if error is None:  # every stored submit: three attribute reads unless something is held
            if self.state == "failing":
                self._stored_at = self._clock()
            if self._write_failure is not None or self.refused is not None:
                if self._write_failure is not None:
                    log.info("writes to the work stream succeed again")
                self._clear()
            return
        first = self._write_failure is None
        self._write_failure = (self._clock(), error.message)
        if first:
            self._held_since = self._write_failure[0]
        self._generation += 1
        self._checks_failed, self._check_at, self.refused = 0, 0.0, None
        if first:
            log.error("a write to the work stream failed: %s", error.message, extra={"error_code": error.code})
        self.poke()

    def refusing(self) -> str | None:
        """Why submits are refused at once (:mod:`gamead_core.api.storage_gate`), None when they are not: a submit's
        write went unanswered and nothing was stored since (held until a stored write, a reconnect or a write check
        clears it), or the probe's write fails and no submit was stored since it began failing. Pure (no I/O)."""
        if self._write_failure is not None:  # only unanswered writes are held (their text names an ad: not said)
            return (f"a submit's write to the work stream got no answer in time "
                    f"{self._clock() - self._write_failure[0]:.0f} s ago, none stored since")
        if self.state == "failing" and self._stored_at < self.since:
            return f"its storage probe's write fails: {self.detail}"
        return None

    def reconnected(self) -> None:
        """The connection to NATS was re-established (a restarted nats-server clears its write errors); a write
        check message buffered through the disconnect may be stored now: purge the check subjects (twice)."""
        self._clear()
        if self._purge_checks is not None:
            self._purges_due = 2
            self.poke()

    def _clear(self) -> None:
        """Forget the held failure and the checks' outcomes; a check running now voids (a stored submit, a
        reconnect: the later word)."""
        self._write_failure = self._check_failed = self.refused = None
        self._checks_failed, self._check_at = 0, 0.0
        self._generation += 1

    def _failed_write(self) -> str | None:
        if self._write_failure is None:
            return None
        at, why = self._write_failure
        if self._write_check is None and self._clock() - at > WRITE_FAILURE_HOLD:
            self._write_failure = None
            return None
        check = f"; a write check failed too: {self._check_failed}" if self._check_failed else ""
        return f"a submit's write to the work stream failed {self._clock() - at:.0f} s ago: {why}{check}"

    def _check_due(self) -> bool:
        """A write check is due: past a held failure's hold, or while degraded (:attr:`refused`), once its
        back-off (``_check_at``) has passed."""
        if self._write_check is None or self._clock() < self._check_at:
            return False
        if self._write_failure is not None:
            return self._clock() - self._write_failure[0] > WRITE_FAILURE_HOLD
        return self.refused is not None

    async def check_writes(self) -> bool:
        """Run the write check (past the hold of a failed write, or while degraded): True, and the failure
        cleared, if every target answered (stored, or refused with a definite answer that is not a storage
        failure: kept in :attr:`refused`, and checked again after :data:`CHECK_BACKOFF_CAP` seconds). False if a
        write was not stored (the next check backs off: :func:`check_delay`; while only degraded, it stays so) or
        a failure was observed, a submit stored, or NATS reconnected, while it ran (it clears only what it saw).
        Never raises."""
        assert self._write_check is not None
        generation = self._generation
        try:
            refused = await self._write_check()  # each of its requests has its own timeout
        except asyncio.TimeoutError:
            why: str | None = "NATS did not answer in time"
        except GameadError as exc:
            why = exc.message
        else:
            why = None
        if generation != self._generation:  # a submit failed or was stored meanwhile, or NATS reconnected
            return False
        if why is not None and self._write_failure is None:  # a re-check while degraded: stays so, tried later
            self._check_at = self._clock() + CHECK_BACKOFF_CAP
            return False
        if why is not None:
            self._check_failed = why
            self._checks_failed += 1
            self._check_at = self._clock() + check_delay(self._checks_failed)
            return False
        if self._write_failure is not None:
            if refused:
                log.warning("a write check cleared the failed write: every target answered, but some refused (not "
                            "a storage failure): %s", "; ".join(refused))
            else:
                log.info("writes are stored again (a write check to the work streams and the ad bucket)")
        elif self.refused and not refused:
            log.info("every target of the write check stores again: storage no longer degraded")
        self._clear()
        if refused:  # degraded: checked again every CHECK_BACKOFF_CAP seconds until every target stores
            self.refused, self._check_at = "; ".join(refused), self._clock() + CHECK_BACKOFF_CAP
        return True

    async def probe_once(self) -> bool:
        """One probe write; True if JetStream stored it. Never raises."""
        self._last = self._clock()
        self.probes += 1
        try:
            with nats_boundary():
                await asyncio.wait_for(self._kv.put(self._key, f"{time.time():.3f}".encode()), self.timeout)
        except asyncio.TimeoutError:  # wait_for's own timeout (the put's is translated inside)
            self._set("failing", QueueUnavailable("NATS did not answer in time"))
            return False
        except GameadError as exc:
            self._set("failing", exc)
            return False
        except nats.errors.Error as exc:  # pragma: no cover - nats_boundary translates these
            self._set("failing", QueueUnavailable(f"NATS error: {server_error(exc)}"))
            return False
        self._set("ok", None)
        return True

    def _set(self, state: str, error: GameadError | None) -> None:
        detail = error.message if error is not None else None
        if state != self.state:
            self.since = self._clock()
            if state == "failing":
                log.error("storage probe failing: JetStream did not store a write: %s", detail,
                          extra={"probe_key": self._key, "error_code": error.code if error else None})
            elif self.state == "failing":
                log.info("storage probe ok again: JetStream stores writes", extra={"probe_key": self._key})
        self.state, self.detail = state, detail
        if error is not None and self._on_failure is not None:
            self._on_failure(error)

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every ``interval`` seconds (every second while failing, sooner when poked). Never raises."""
        while not stop.is_set():
            if self._purges_due and self._purge_checks is not None:
                self._purges_due -= 1
                await self._purge_checks()
            await self.probe_once()
            if self._check_due():
                await self.check_writes()
            failing = self.state == "failing" or self._write_failure is not None
            wait = FAILING_INTERVAL if failing else self.interval
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            _, pending = await asyncio.wait(waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            self._wake.clear()
            gap = MIN_GAP - (self._clock() - self._last)
            if gap > 0 and not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), gap)
                except asyncio.TimeoutError:
                    pass

    def readiness(self) -> str:
        """``/readyz``'s ``storage`` check: ``ok``, ``unknown: …``, ``failing: <why>`` or ``degraded: …`` (ready: the
        write check that cleared a failed write was refused by some target, not for storage; named with why)."""
        if self.state == "failing":
            return f"failing: {self.detail} (for {self._clock() - self.since:.0f} s)"
        if failed := self._failed_write():
            return f"failing: {failed}"
        if self.state == "unknown":
            return "unknown: no probe write yet"
        if self.refused:
            return f"degraded: writes are stored, but the write check was refused (not for storage) by {self.refused}"
        return "ok"

    def status(self) -> dict[str, object]:
        """The ``storage`` section of ``/v1/stats``; ``state`` as :meth:`readiness` says it: ``unknown``, ``ok``,
        ``degraded`` or ``failing``; ``forSeconds``: the probe's state's age; ``failingForSeconds`` (None unless
        failing): since the probe or a held write failure began failing (the earlier), what ``gamead top`` shows."""
        failed = self._failed_write()
        state = "failing" if failed else "degraded" if self.state == "ok" and self.refused else self.state
        starts = [*([self.since] if self.state == "failing" else []), *([self._held_since] if failed else [])]
        return {"state": state, "probe": self.state, "detail": self.detail,
                "forSeconds": round(self._clock() - self.since, 1), "lastFailedWrite": failed,
                "failingForSeconds": round(self._clock() - min(starts), 1) if starts else None,
                "writeCheckRefused": self.refused,
                "probeIntervalSeconds": self.interval, "probes": self.probes}
