"""The ads an API left ``queued`` without a work message when it died: queued by the reaper (:class:`Orphans`).

The un-keyed submit path creates an ad's record, then publishes its message (:mod:`gamead_core.intake`). An API
killed between the two leaves a ``queued`` record no worker will ever see, and its background settling
(:mod:`gamead_core.unsettled`) dies with it: a reviewer's ``kill -9`` during a 300 ads/s burst left 30 such records
for over 5 minutes, until ``gamead doctor --repair``. Now the holder of the reaper lease settles them, with no work
added per ad to the submit path or to the worker's handling of an ad:

* **whose**: each API record create carries ``Gamead-Origin: <incarnation>`` (:data:`gamead_core.names.HDR_ORIGIN`,
  :func:`gamead_core.registry.api_incarnation`: node id, pid, start time), a header of the records' stream
  message. The bucket keeps one message per key, so a message that still carries it is the record exactly as
  that API created it: no worker, sweep, recovery or repair has written it since.
* **when**: the reaper (:func:`gamead_core.worker.reaper_loop.run_reaper`) sees an API's registry entry expire (the
  node went silent: ``registry.ttl``) or come back as another incarnation (:func:`api_deaths`); a clean shutdown
  deletes its entry, settles its own writes and is not a death.
* **what**: the records' stream is read, headers only, from ``queue.duplicate_window`` − :data:`SAFETY` s
  ago on nats-server's clock (not from the API's ``startedAt``: its own host's clock stamps it) (an ordered
  consumer from a start time: the records last written since, one message per key; not the whole store). The key of each message with the dead incarnation's
  origin is read (its last message) and, if it is still that create, a fresh un-keyed ``queued`` record, it is
  first re-put unchanged by compare-and-set over that revision (no origin: no longer "as the API left it"), and
  only if that write won is its work message published exactly as the API would have: the same bytes,
  ``Nats-Msg-Id`` = the ad id, ``Gamead-Record-Revision`` naming the new revision. A lost compare-and-set (the
  record deleted or written since: its API, alive after all, withdrew it; a worker has it) publishes nothing,
  unless the key, read again, holds a re-put (this reaper's own, landed late: :mod:`.orphan_reput`).
* **fenced** (attack33b F1): an API whose acks stop coming (its NATS→API direction stalled) sends no heartbeat
  and is taken for dead while alive; it settles its unanswered creates itself
  (:mod:`gamead_core.store.create_fence`), deleting one only by compare-and-set over the revision it created. So
  of the API's delete and this re-put exactly one wins: the API's first → nothing is published (the ad is 404 and
  never analysed); the re-put first → the API's delete loses, it finds the record someone else's and leaves it
  (the ad runs; before, it deleted the completed record: 800 analyses of 1,300 lost, their clients told "not
  queued: safe to resend"). A re-put whose publish got no answer is published again next round (its key read
  again: a re-put record without the origin is this reaper's; a changed one is left).
* **never twice**: JetStream drops a message whose id it stored within the work stream's duplicate window, still
  in the stream or already consumed and acknowledged (measured on nats-server 2.15.1: a repeat after the ack is
  answered ``duplicate``, one after the window is stored). The API publishes after its create, so for a record
  written less than ``duplicate_window`` − :data:`SAFETY` s ago (checked just before publishing, the server's
  time of the create against this process's reading of the server's clock) the API's own publish, if it
  landed, is still remembered: the ad is queued again only if it never was. Older ones are left to ``gamead
  doctor`` (logged when the read finds them; records written before the read's start are not read at all).
  Both ends are nats-server's clock (the create's stamp, :func:`gamead_core.clock.now`), never this host's:
  SAFETY covers the sample's error.
* **late**: a create the API sent before it died may land after its death was settled (an attacker's drill: the
  API's server stopped by SIGSTOP, the API killed, the server resumed 50 s later and applied an atomic batch of 30
  creates left in its socket; before, they stayed ``queued`` for ever, doctor ``no_message``). So each death is
  watched for ``queue.duplicate_window`` − :data:`SAFETY` s after it was seen (100 s by default; later, a
  re-publish may no longer be deduplicated): every reaper round reads only what the records' stream took since
  the round before, once for all the deaths watched, and queues what carries a watched origin. Work per round:
  the records written since the last; memory: at most :data:`MAX_WATCHED` deaths.
* **bound**: the entry's expiry (``registry.ttl``, 10 s) + a reaper round (``heartbeat_interval`` / 2) + the
  read: about 15 s after the death by default. A settling that fails is tried again every round until the
  window closes, by whoever holds the lease then if it saw the death.

Limits: a death no lease holder saw (the registry lost with nats-server, or no worker running then) is found by
its records when a reaper takes the lease or reconnects (:mod:`.orphan_read`), only those written within the
window; older ones are the doctor's (said once);
the dead API's writes settled in the background (a create unanswered in a NATS stall, told 503 and withdrawn; a
refused publish whose take-back failed) are not told apart: whichever compare-and-set lands first rules (the
re-put: the ad runs; the API's delete: nothing runs); an API cut off from NATS longer than ``registry.ttl`` is
taken for dead unless its entry is back before the publish (checked).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.errors import GameadError, error_text
from gamead_core.registry import NodeInfo, Registry, deaths, incarnation
from gamead_core.worker.orphan_queue import SAFETY, OrphanReport, queue_again
from gamead_core.worker.orphan_read import Found, older_line, origin_node, read_records

log = logging.getLogger(__name__)


def reaper_reach(settings: GameadSettings) -> float:
    """Seconds: how long before an API stops (or dies) a write of it may have been made for the reaper to still
    queue it (its publish deduplicated): ``queue.duplicate_window`` − :data:`SAFETY` − the time until the death is
    seen (``registry.ttl`` + a reaper round, ``registry.heartbeat_interval`` / 2). 0 or less: nothing an API leaves
    is the reaper's, all of it ``gamead doctor --repair``'s (pure)."""
    wait = settings.registry.ttl + settings.registry.heartbeat_interval / 2
    return settings.queue.duplicate_window - SAFETY - wait


def reach_warning(settings: GameadSettings) -> str | None:
    """The configuration warning when the reaper cannot settle what an API leaves (:func:`reaper_reach` ≤ 0), else
    None (pure)."""
    if reaper_reach(settings) > 0:
        return None
    return (f"registry.ttl ({settings.registry.ttl:g}s) + a reaper round ({settings.registry.heartbeat_interval / 2:g}"
            f"s) leaves nothing of queue.duplicate_window ({settings.queue.duplicate_window:g}s) − {SAFETY:g}s: the "
            "reaper cannot queue the submits an API leaves unsettled when it stops or dies; run `gamead doctor "
            "--repair` after such a stop, or raise queue.duplicate_window / lower registry.ttl")


def api_deaths(before: dict[str, NodeInfo], after: dict[str, NodeInfo]) -> list[NodeInfo]:
    """API nodes of ``before`` gone from ``after`` or back as another incarnation
    (:func:`gamead_core.registry.deaths`; pure)."""
    return deaths(before, after, lambda node: node.role == "api")


#: the most dead API incarnations watched at once (the oldest beyond it is dropped: its late records left to the doctor)
MAX_WATCHED = 1000


@dataclass
class _Death:
    """A dead API incarnation watched for its records: those written before its death was seen, and those that
    land later (a create left in a stopped server's socket, applied when it resumes)."""

    node: NodeInfo
    seen_at: float  #: clock.now() when the reaper saw the death
    read_to: int | None = None  #: the last records' stream sequence read for it (None: its first read is to come)
    unanswered: list[Found] = field(default_factory=list)  #: found, publish unanswered: published again next tick
    unseen: bool = False  #: found by its records, not seen in the registry (:func:`.orphan_read` doc): first report


class Orphans:
    """The dead APIs whose records are settled by the reaper: each is watched from its death for
    ``queue.duplicate_window`` − :data:`SAFETY` s (while a re-publish is still deduplicated). Its first read goes
    back that window (nats-server's clock); every later round reads only what the records' stream took
    since the last read, once for all the deaths watched (headers only), so a create of a dead API that lands
    after its death was settled is queued too. Work per round: the records written since the last round; memory:
    at most :data:`MAX_WATCHED` deaths."""

    def __init__(self) -> None:
        self._watched: dict[str, _Death] = {}
        self._last: tuple[float, int] | None = None  #: (time.monotonic(), reconnects) of the last round
        self._due: float | None = None  #: time.monotonic() from which the deaths no one saw are looked for
        self._older: float | None = None  #: the start of the last look for them (nats-server's clock), until
        #: :func:`.orphan_read.older_line` ran for it (a failed one is tried again next round: review41 F10)

    def died(self, node: NodeInfo) -> None:
        """``node`` (an API) died: settle its records from the next :meth:`settle` on; unless it is a gamead before
        the create fence (its entry has no ``fence``, a rolling upgrade): such an API, if alive after all, withdraws
        its unanswered creates by a blind delete, which would delete a record queued here once analysed (attack33b
        F1), so its records are left to ``gamead doctor`` (``no_message``), said once (fix34b item 3)."""
        origin = incarnation(node.id, node.pid, node.started_at)
        if node.fence is None:
            log.warning("API %s (gamead %s) died, or went silent; it keeps no create fence (an older gamead): its "
                        "records without a message are not queued again, since its blind deletes could remove one "
                        "once analysed; run gamead doctor --repair once it is gone for good, and finish the upgrade",
                        node.id, node.version[:40], extra={"origin": origin})
            return
        self._watched.setdefault(origin, _Death(node, clock.now()))
        while len(self._watched) > MAX_WATCHED:
            gone = next(iter(self._watched))
            log.warning("watching %d dead APIs at once: the records API %s may still land are left to gamead doctor",
                        MAX_WATCHED, self._watched.pop(gone).node.id, extra={"origin": gone})

    async def settle(self, js: JetStreamContext, settings: GameadSettings, registry: Registry,
                     apis: dict[str, NodeInfo] | None = None, reconnects: int = 0) -> None:
        """One round: read the records' stream for the deaths watched and queue what they left; after a lease
        taken or a reconnection (``reconnects`` changed), the deaths no one saw too (``apis``: the live API entries
        by id; :meth:`unseen`). Never raises: a failed read or publish is logged and tried again next round while
        the death is watched."""
        span, timeout = settings.queue.duplicate_window - SAFETY, settings.nats.request_timeout
        if apis is not None:
            await self.unseen(js, settings, registry, apis, reconnects)
        for origin, death in list(self._watched.items()):
            if clock.now() > death.seen_at + span:
                self._watched.pop(origin, None)
        found: dict[str, list[Found]] = {}
        later = {o: d.read_to for o, d in self._watched.items() if d.read_to is not None}
        for origin, death in list(self._watched.items()):
            if death.read_to is None:  # not from the API's startedAt: its own host's clock (ahead: read nothing)
                since = clock.now() - span
                got = await self._guarded(death, read_records(js, {origin: 0}, timeout,
                                                       start_time=datetime.fromtimestamp(since, UTC)))
                if got is not None:
                    found[origin], death.read_to = got[0].get(origin, []), got[1] or 0
        if later:
            got = await self._guarded(None, read_records(js, later, timeout, start_seq=min(later.values()) + 1))
            if got is not None:
                for origin, items in got[0].items():
                    found.setdefault(origin, []).extend(items)
                for origin in later:
                    death = self._watched[origin]
                    death.read_to = max(death.read_to or 0, got[1] or 0)
        for origin, death in list(self._watched.items()):
            items, first = death.unanswered + found.get(origin, []), death.unseen or (origin in found
                                                                                       and origin not in later)
            death.unseen = False
            if not items:
                if first:  # its first read found nothing: said once
                    self._report(OrphanReport(origin), death, first)
                continue
            back = await self._alive(registry, death, origin)
            if back:
                self._watched.pop(origin, None)
                continue
            report = None if back is None else await self._guarded(
                death, queue_again(js, death.node, origin, items, settings))
            if report is not None:
                death.unanswered = list(report.failed)
                self._report(report, death, first)
            elif first:  # read, not settled: what it found is tried again next round
                death.unanswered = items

    async def unseen(self, js: JetStreamContext, settings: GameadSettings, registry: Registry,
                     apis: dict[str, NodeInfo], reconnects: int) -> None:
        """Watch the deaths no lease holder saw (:mod:`gamead_core.worker.orphan_read`): ``registry.ttl`` after
        this reaper's first round since a gap (the lease taken, not renewed for two rounds, or a reconnection),
        every origin of the records written within ``queue.duplicate_window`` − :data:`SAFETY` s that is not a
        live API of ``apis``, watched, or stopped cleanly (:meth:`_stopped`) is settled as a seen death; said once
        if older ones may be unsettled (:func:`.orphan_read.older_line`). A failed read, or a failed check of older
        ones, is tried again next round (before, the check was not: its line was lost, review41 F10). The gap is
        timed from the end of the last call, not its start: a look slower than two rounds (the records of the
        window's ~100 s on a loaded host) is not a gap that calls for another look (perf42: each look scheduled
        the next, ~one read of the whole window per ``registry.ttl`` for as long as the host stayed loaded)."""
        now, every = time.monotonic(), settings.registry.heartbeat_interval
        anew = self._last is None or reconnects != self._last[1]  # (the registry may have been lost meanwhile)
        if anew or (self._due is None and now - self._last[0] > 2 * every):  # type: ignore[index]
            self._due = now + settings.registry.ttl
        self._last = now, reconnects
        if self._due is not None and now >= self._due:
            await self._look(js, settings, registry, apis)
        if self._older is not None:  # said once if older deaths may be unsettled; a failed check: next round
            line = await self._guarded(None, older_line(js, names.kv_stream(names.REGISTRY_BUCKET), self._older),
                                       failed=False)
            if line is not False:
                self._older = None
                if line:
                    log.warning("%s", line)
        self._last = time.monotonic(), reconnects  # this round's reads done: a gap is counted from here

    async def _look(self, js: JetStreamContext, settings: GameadSettings, registry: Registry,
                    apis: dict[str, NodeInfo]) -> None:
        """:meth:`unseen`'s read: the origins of the records written within the window, each not alive, watched or
        stopped cleanly watched as a death; a failed read is tried again next round."""
        since = clock.now() - (settings.queue.duplicate_window - SAFETY)
        got = await self._guarded(None, read_records(js, None, settings.nats.request_timeout,
                                                     start_time=datetime.fromtimestamp(since, UTC)))
        if got is None:
            return
        self._due, self._older = None, since
        alive = {incarnation(n.id, n.pid, n.started_at) for n in apis.values()}
        for origin, items in got[0].items():
            if origin in alive or origin in self._watched or (node := origin_node(origin)) is None:
                continue
            if await self._stopped(registry, node):  # a clean shutdown settled its own writes
                continue
            log.warning("API %s is not in the registry, and %d record(s) it created are as it left them: it died "
                        "unseen (NATS restarted, or no worker ran), or, an older gamead that notes no clean stop, "
                        "stopped cleanly over registry.ttl (%gs) ago: queued like a seen death's (one whose message "
                        "exists is not queued twice: JetStream drops the repeat)", node.id, len(items),
                        settings.registry.ttl, extra={"origin": origin})
            self._watched[origin] = _Death(node, clock.now(), got[1] or 0, items, unseen=True)

    @staticmethod
    async def _stopped(registry: Registry, node: NodeInfo) -> bool:
        """True if ``node`` stopped cleanly (:meth:`Registry.stopped`: its entry's delete mark, or its process's
        clean-stop note, kept a day: review41 F2); else False (a clean stop of an older gamead, which writes no
        note, reads as a death once ``registry.ttl`` removed the mark)."""
        try:
            return await registry.stopped(node)
        except Exception:  # noqa: BLE001 - unknown: taken for a death (a re-publish is deduplicated)
            return False

    @staticmethod
    async def _alive(registry: Registry, death: _Death, origin: str) -> bool | None:
        """True if the dead incarnation's heartbeat is back (it was cut off from NATS or stalled, not dead: its
        own writes are its business), None if the registry cannot be read (tried again)."""
        try:
            back, _ = await registry.lookup(death.node.id)
        except Exception as exc:  # noqa: BLE001 - tried again next round
            log.warning("settling the records of dead API %s: %s (tried again)", death.node.id, error_text(exc))
            return None
        return back is not None and incarnation(back.id, back.pid, back.started_at) == origin

    async def _guarded(self, death: _Death | None, step: Any, failed: Any = None) -> Any:
        """``await step``; ``failed`` (logged) if it failed: tried again next round."""
        try:
            return await step
        except GameadError as exc:
            text = exc.message
        except Exception as exc:  # noqa: BLE001 - one bad death must not stop the reaper
            text = error_text(exc)
        log.warning("settling the records of dead API%s: %s (tried again)",
                    f" {death.node.id}" if death else "s", text)
        return failed

    def _report(self, report: OrphanReport, death: _Death, first: bool) -> None:
        if not first and not (report.republished or report.too_old or report.failed or report.changed):
            return
        log.log(logging.WARNING if report.republished or report.too_old else logging.INFO,
                "dead API %s: %d record(s) without a message queued again, %d had theirs, %d too old "
                "(left to gamead doctor), %d unanswered, %d withdrawn or written since (not queued)%s", death.node.id,
                report.republished, report.already, report.too_old, len(report.failed), report.changed,
                "" if first else " (written after its death was settled)",
                extra={"origin": report.origin, "republished": report.republished, "already": report.already,
                       "too_old": report.too_old, "unanswered": len(report.failed), "changed": report.changed})


__all__ = ["MAX_WATCHED", "SAFETY", "OrphanReport", "Orphans", "api_deaths", "reach_warning", "reaper_reach"]
