"""The running service heals its own JetStream topology: every API node checks it every
``api.topology_check_interval`` seconds and recreates a missing stream, consumer or bucket.

Who watches: every API node (there is always one in a gamead deployment; ``gamead up`` runs one). Creation is
idempotent, so two nodes that see the same object missing both succeed and nothing needs electing. Workers
check at start-up only (:func:`gamead_core.queue.topology.ensure_topology`); a worker that meets a missing
consumer skips that level until an API node has recreated it.

Cost: one check is two JetStream API calls (``STREAM.LIST`` and ``CONSUMER.LIST`` of the work stream), plus
two per missing object (confirm, create): at the default interval of 5 s, 0.4 calls per second per API node.

A node whose ``queue.partitions`` no longer fits the work streams (they were repartitioned while it ran: README,
"Partitions") is told by its next check (:class:`~gamead_core.errors.PartitionsChanged`, nothing touched):
:attr:`TopologyWatch.mismatch` holds the change, ``/readyz`` fails naming both settings, and the API takes no
submit (:class:`~gamead_core.errors.TopologyChanged`) rather than publish by the wrong modulus. Said once in the
log when it appears, and once when it is gone.

A node whose guarded queue settings differ from the live topology (:mod:`gamead_core.queue.limit_rule`) says so
once in a WARNING when it appears or changes (another node's start raised a value), and ``/readyz`` names each
(``degraded: …``), so an operator sees why submits meet limits this node's config does not have.

A check never overwrites anything that exists: an incompatible object is reported (logged once when it appears
and once when it is gone, shown in ``/readyz`` and ``/v1/stats``). Limits that differ from the config are
updated only by the start-up check (``startup=True``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from nats.js import JetStreamContext

from gamead_core.clock import now as server_now
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, PartitionsChanged
from gamead_core.models import utc_iso
from gamead_core.queue.acks import on_no_responders
from gamead_core.queue.partitions import PartitionChange
from gamead_core.queue.topology import DRIFT_WARNING, TopologyReport, check_topology

log = logging.getLogger(__name__)

#: how ``/readyz`` introduces the differences from the live topology
DIFFERS = "this node's queue settings differ from the live topology (the live values rule)"

#: seconds between two checks asked for by :meth:`TopologyWatch.poke` at the least: every write that meets a missing
#: stream pokes (:func:`gamead_core.queue.acks.on_no_responders`); one check serves them all
POKE_SPACING = 0.25

#: Repairs remembered for ``/v1/stats`` (newest first) and how long ``/readyz`` lists one.
KEEP_REPAIRS = 20
RECENT_REPAIR_SECONDS = 600.0


class TopologyWatch:
    """Checks the topology on a schedule (or at once after :meth:`poke`) and remembers what it found and did.

    ``clock`` is wall time (seconds) for the timestamps shown, nats-server's (:mod:`gamead_core.clock`) as every
    other time ``/v1/stats`` shows; waiting uses the event loop's clock.
    """

    def __init__(self, js: JetStreamContext, settings: GameadSettings, *, interval: float,
                 clock: Callable[[], float] = server_now) -> None:
        self.js = js
        self.settings = settings
        self.interval = interval
        self._clock = clock
        self.report: TopologyReport | None = None
        self.checked_at: float | None = None
        self.error: str | None = None  #: why the last check could not run (NATS unreachable…); None if it ran
        self.repairs: deque[tuple[float, dict[str, Any]]] = deque(maxlen=KEEP_REPAIRS)  #: (when, what), newest first
        self._problems: dict[str, str | None] = {}
        self._drift: tuple[str, ...] = ()  #: the last check's differences from the live topology (said when new)
        #: the work streams do not fit ``queue.partitions`` (repartitioned under this node); None: they fit
        self.mismatch: PartitionChange | None = None
        self._wake = asyncio.Event()
        self.checks = 0
        #: told each check's report (the API: its store's scope follows the records bucket, AdStore.follow)
        self.on_report: Callable[[TopologyReport], None] | None = None

    def mismatch_now(self) -> PartitionChange | None:
        """:attr:`mismatch` as the last check found it (a callable for those who read it later)."""
        return self.mismatch

    def poke(self) -> None:
        """Check now rather than at the next tick (e.g. after a call found something missing)."""
        self._wake.set()

    async def check_once(self, *, startup: bool = False) -> TopologyReport:
        """One check: create what is missing, report what is incompatible; at start-up also update limits.
        Raises the gamead error of a failed listing (the caller decides whether to retry)."""
        try:
            report = await check_topology(self.js, self.settings, create=True, update=startup)
        except PartitionsChanged as exc:
            self.checks += 1
            if exc.change is not None:  # one raised without its change says nothing new: the mismatch stands
                self._mismatched(exc.change, say=not startup)  # at start-up it ends the start: its one line
            self.error = exc.message
            raise
        except GameadError as exc:
            self.error = exc.message
            raise
        self.checks += 1
        self._mismatched(None)
        self.error = None
        self.report, self.checked_at = report, self._clock()
        self._record(report, startup=startup)
        if self.on_report is not None:
            self.on_report(report)
        return report

    def _mismatched(self, change: PartitionChange | None, *, say: bool = True) -> None:
        """Remember whether the work streams fit ``queue.partitions``; log when that changes (``say``)."""
        if say and change is not None and (self.mismatch is None or self.mismatch.stale_node() != change.stale_node()):
            log.error("this node takes no submit: %s", change.stale_node(),
                      extra={"problem": "partitions_changed", "partitions": change.setting, "live": change.live})
        elif say and change is None and self.mismatch is not None:
            log.info("the work streams fit queue.partitions %d again", self.settings.queue.partitions)
        self.mismatch = change

    def _record(self, report: TopologyReport, *, startup: bool) -> None:
        for obj in report.objects:
            fields = {"object_kind": obj.wanted.kind, "object_name": obj.wanted.name}
            if obj.outcome == "created":
                if startup:
                    log.info("created %s", obj.label, extra=fields)
                else:
                    log.warning("recreated missing %s", obj.label, extra={**fields, "action": "recreated"})
                self._repaired(obj.label, "created" if startup else "recreated", None)
            elif obj.outcome == "updated":
                log.info("updated %s limits in place: %s", obj.label, obj.detail, extra=fields)
                self._repaired(obj.label, "updated", obj.detail)
        problems = {o.label: o.detail for o in report.problems}
        for obj in report.problems:
            if self._problems.get(obj.label, "") != obj.detail:  # new, or changed: say it once
                fields = {"object_kind": obj.wanted.kind, "object_name": obj.wanted.name, "problem": obj.outcome}
                if obj.outcome == "incompatible":
                    log.error("%s cannot be used: %s (left as it is; never overwritten)", obj.label, obj.detail,
                              extra=fields)
                else:
                    log.error("%s is missing and could not be created: %s (trying again every %g s, and at most "
                              "%d times a second while writes find no stream)", obj.label, obj.detail,
                              self.interval, round(1 / POKE_SPACING), extra=fields)
        for label in self._problems.keys() - problems.keys():
            log.info("%s is usable again", label, extra={"object": label})
        self._problems = problems
        drift = report.drift_lines()
        if drift and drift != self._drift:  # at start-up, and whenever another node's start changes a live value
            said = report.drift_lines(why=True)
            log.warning(DRIFT_WARNING, "; ".join(said), extra={"problem": "topology_differs", "differs": list(said)})
        elif self._drift and not drift:
            log.info("this node's queue settings match the live topology again")
        self._drift = drift

    def _repaired(self, label: str, action: str, detail: str | None) -> None:
        self.repairs.appendleft((self._clock(), {"object": label, "action": action, "detail": detail}))

    async def run(self, stop: asyncio.Event) -> None:
        """Check every ``interval`` seconds (sooner when poked) until ``stop`` is set. Never raises."""
        if self.settings.queue.replicas == 1:  # one server: a write no stream took means one is missing (not a
            on_no_responders(self.js, self.poke)  # cluster electing): checked at once, not at the write's deadline
        loop = asyncio.get_running_loop()  # (attack41c F5)
        last = loop.time()
        while not stop.is_set():
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            _, pending = await asyncio.wait(waiters, timeout=self.interval, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                fut.cancel()
            if self._wake.is_set():  # poked: at most one check per POKE_SPACING, however many writes poke
                await asyncio.sleep(max(0.0, last + POKE_SPACING - loop.time()))
            self._wake.clear()
            if stop.is_set():
                return
            last = loop.time()
            try:
                await self.check_once()
            except GameadError as exc:
                log.debug("topology check skipped: %s", exc.message)
            except Exception:  # noqa: BLE001 - the watch must outlive any one bad check
                log.exception("topology check failed")

    # --- read-outs --------------------------------------------------------------------------------------------

    def readiness(self) -> str:
        """``/readyz``'s ``topology`` check: ``ok``; ``degraded: …`` when only non-essential objects are
        unusable, or this node's queue settings differ from the live topology (the node still takes submits, by
        the live limits); ``failing: …`` when the work stream or the ad bucket is unusable."""
        if self.mismatch is not None:
            return f"failing: {self.mismatch.stale_node()}"
        if self.report is None:
            return f"unknown: {self.error or 'not checked yet'}"
        problems = self.report.problems
        if not problems:
            drift = self.report.drift_lines()
            return f"degraded: {DIFFERS}: {'; '.join(drift)}" if drift else "ok"
        text = "; ".join(f"{o.label} {'incompatible' if o.outcome == 'incompatible' else 'missing, not created'}: "
                         f"{o.detail}" for o in problems)
        return f"degraded: {text}" if self.report.essential_ok else f"failing: {text}"

    def recent_repairs(self) -> list[dict[str, Any]]:
        """Repairs of the last ten minutes, newest first (for ``/readyz``)."""
        horizon = self._clock() - RECENT_REPAIR_SECONDS
        return [{"at": utc_iso(t), **r} for t, r in self.repairs if t >= horizon and r["action"] == "recreated"]

    def status(self) -> dict[str, Any]:
        """The ``topology`` section of ``/v1/stats``."""
        report = self.report
        return {
            "checkedAt": utc_iso(self.checked_at) if self.checked_at else None,
            "checkIntervalSeconds": self.interval,
            "apiCallsPerCheck": report.calls if report else None,
            "ok": bool(report) and not report.problems and self.mismatch is None,  # type: ignore[union-attr]
            "error": self.error,
            "partitions": self.mismatch.stale_node() if self.mismatch is not None else None,
            "objects": len(report.objects) if report else None,
            "problems": [o.as_dict() for o in report.problems] if report else [],
            "differs": list(report.drift_lines()) if report else [],  # live value vs this node's (.limit_rule)
            "repairs": [{"at": utc_iso(t), **r} for t, r in self.repairs],
        }
