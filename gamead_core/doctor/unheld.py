"""Deliveries JetStream has out that no live worker holds: a dead worker's last moments, for the doctor.

A worker announces the ads it holds in its registry entry (``holding``) at each step; the recovery of a dead
worker hands those back at once (:mod:`gamead_core.worker.reaper`). Deliveries it received in its last
milliseconds and had not announced yet (a long poll's answer, an ad it lingered on) are invisible to every
recovery, and JetStream can be told to redeliver them only on their ack subjects, which died with the worker:
they come back when their level consumer's ``ack_wait`` expires (attack26 finding F1: 30 s in which ``top``
showed ``ACK-P 1`` and the doctor said nothing). This check makes them visible:

    unheld = Σ num_ack_pending (every level consumer, every work-stream partition)
             − the ads the live workers announce holding (their registry entries)
             − the ads waiting out a timed retry (a record ``queued`` with ``retryAt`` still ahead: ``nak``'ed
               with a delay, ack-pending until then)
             − the messages nats-server announced a ``nak`` of since the run began (a retry that began after the
               first look read its record: :class:`~gamead_core.worker.naks_seen.NaksSeen`)
             − the completed or dead ads whose ack was lost, noted ``ack_lost`` (:mod:`gamead_core.doctor.ack_lost`)

read twice, the smaller excess reported. The first reading counts (the consumer infos the stranded check already
read, :func:`gamead_core.doctor.leftovers.stranded_on`, and a listing of the holdings); only when it finds an excess
is a second one made, by stream sequence (probe49 F3): the consumer infos, then the messages each consumer has
pending (:mod:`gamead_core.doctor.pending_seqs`: one batched direct get per level with deliveries pending), read
again :data:`GRACE` s later, while every registry announcement is heard (:mod:`gamead_core.doctor.announced`) from a
listing of the holdings before the infos to one after. A message counts unheld only when it is pending in both
readings and no worker announced holding it in that window, nor having handed it back (``nak``, unstarted) in its
last 30 s (``handedBack``,
:mod:`gamead_core.worker.handed`: ack pending until a pull takes it again; handback50, a worker told quiet with 9 ads
buffered and nobody else pulling: 9 noted before): a live worker's fresh delivery not announced yet at the infos (its
announcement late on a loaded machine) is announced within the window; an acknowledgement in flight at the infos has
landed by the second reading; a dead worker's unannounced delivery is neither. Before, counts at two instants: at 100
ads/s on a loaded machine (load 12) 4 to 8 of a live worker's deliveries a run were said to be a dead worker's (8, 4, 8,
8, 8 in 5 of 6 runs), with no worker dead. Still counted, as the note says: a live worker's ad waiting in a long poll's
inbox for a free slot (not announced; its ``unstartedSince`` says so), and an ad a busy worker handed back (``nak``)
over 30 s before the run that no worker pulled again yet (its nak was not heard; under a backlog of more urgent
levels a P5 ad handed back "beyond the buffer's bound" waited so > 1 min at 200 ads/s: 3 of the residual notes of
2-6). The
messages cannot be read by sequence (more than :data:`~gamead_core.doctor.pending_seqs.MOST`, direct gets off):
the second reading counts, every held delivery heard of a message its consumer had delivered at the infos
(:func:`.announced.pending_then`), held at either listing or heard between, counted held (regress40 F7's kind: a
race only undercounts; ``handedBack`` is not read there: a handed-back ad acknowledged since would hide a dead
worker's). Its consumer infos are reused by the lost-ack check (``again``:
:class:`gamead_core.doctor.ack_lost.AckLost`). Cost: :data:`GRACE` s, plus up to 2 direct gets per level with
pending deliveries (each at most ``num_ack_pending`` + 16 messages). No wait after the first reading: a delivery
counted unheld was out at the second reading's infos, so it had :data:`GRACE` s at least to be announced whenever the
first reading was. (Before, ``APART``: the second reading began 0.5 s after the first at least, a bound of the
two-counts design kept when probe49 F3 made it moot; it waited under a ``doctor.settle`` below 0.5 s only.) It
breaks no invariant and fixes itself, so it is a note (never the exit code), as ``topology_limits`` is.

The naks heard: a retry that began after its record was read (every second under a steady flow of failing ads) was
counted as a dead worker's delivery (chaos48, 150 ads/s with 10 % of the ads failing 60 % of their attempts and no
worker dead: ``ack_pending_unheld · 32``). A hand-back without delay is counted too, so the check can only
undercount, as its other races do; a dead worker's unannounced deliveries are never ``nak``'ed (their ack subjects
died with it): still counted. Advisories not heard (:func:`naks_unheard`): the count is what it was without them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence, Sized

import nats.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo

from gamead_core import clock, names
from gamead_core.config import GameadSettings
from gamead_core.doctor.announced import Announced, HeldKey, handed_keys, held_key, pending_then
from gamead_core.doctor.model import Note, ReadStats
from gamead_core.doctor.pending_seqs import Span, pending_in
from gamead_core.errors import GameadError
from gamead_core.queue.connection import nats_boundary
from gamead_core.registry import Registry

log = logging.getLogger(__name__)

#: Seconds the second reading hears announcements after its consumer infos, before its listing after them: a live
#: worker announces a delivery it had then within them (:mod:`.announced`).
GRACE = 0.5

Level = tuple[int, int]  #: (priority level, work-stream partition)


def _label(level: Level) -> str:
    return f"priority {level[0]}" + (f" of partition {level[1]}" if level[1] else "")


def timed_retries(retry_at: Iterable[float], now: float) -> int:
    """Of ``retry_at`` (the ``retryAt`` of each ``queued`` record that has one, Unix seconds), those after ``now``:
    ``nak``'ed with a delay, so ack-pending at JetStream with no worker holding them (pure)."""
    return sum(1 for at in retry_at if at > now)


def naks_unheard(why: str) -> None:
    """A doctor run's nak advisories could not be heard (``why``): it goes on without them (the module doc)."""
    log.debug("doctor: nak advisories not heard: %s", why)


def excess(ack_pending: int, held: int, timed: int) -> int:
    """Deliveries ack-pending that nobody holds and no timed retry explains, ≥ 0 (pure)."""
    return max(0, ack_pending - held - timed)


class Unheld:
    """The check, over one doctor run: :meth:`first` after the stranded check filled ``infos``, :meth:`confirm`
    in the second look."""

    def __init__(self, nc: NATS, js: JetStreamContext, settings: GameadSettings, naks: Sized = ()) -> None:
        self._nc, self._js, self._timeout = nc, js, settings.nats.request_timeout
        self._naks = naks  #: the messages whose nak was heard since the run began (NaksSeen), each a timed retry
        self.registry = Registry(nc, js, settings.registry, replicas=settings.queue.replicas,
                                 timeout=settings.nats.request_timeout)
        self._levels: list[Level] = [(lvl, p) for p in range(settings.queue.partitions) for lvl in names.LEVELS]
        self._first = 0
        self._pending: dict[Level, int] = {}
        self._ack_wait: dict[Level, float] = {}
        self._retry_at: Sequence[float] = ()
        self._read_twice = False
        self._again: tuple[int, int] | None = None  #: the second reading: (ack pending, held at either listing)
        self.again: dict[Level, ConsumerInfo] = {}  #: the consumer infos the second reading read

    @property
    def suspect(self) -> bool:
        """The first reading found an excess: the second look must read again."""
        return self._first > 0

    def _timed(self) -> int:
        """The timed retries now: those the first look read, and each message whose nak was heard since."""
        return timed_retries(self._retry_at, clock.now()) + len(self._naks)

    async def _holdings(self, stats: ReadStats, handed: set[HeldKey] | None = None) -> set[HeldKey] | None:
        """The messages every live worker announces holding a delivery of (:func:`.announced.held_key`); None when
        the registry cannot be listed. Into ``handed``: those it announces having handed back lately (``handedBack``,
        :func:`.announced.handed_keys`)."""
        stats.api_calls += 1
        try:
            nodes = await self.registry.list()
        except GameadError as exc:
            log.debug("doctor: registry listing: %s", exc.message)
            return None
        workers = [n for n in nodes if n.role == "worker"]
        if handed is not None:
            handed.update(*(handed_keys(n.handed_back) for n in workers))
        return {held_key(h.ack_subject, h.ad_id, h.delivery) for n in workers for h in n.holding}

    async def _held(self, stats: ReadStats) -> int | None:
        """How many deliveries the live workers announce holding; None when the registry cannot be listed."""
        held = await self._holdings(stats)
        return None if held is None else len(held)

    def _keep(self, infos: Mapping[Level, ConsumerInfo]) -> int:
        for level, info in infos.items():
            self._pending[level] = int(info.num_ack_pending or 0)
            self._ack_wait[level] = float(info.config.ack_wait or 0)
        return sum(self._pending.values())

    async def first(self, infos: Mapping[Level, ConsumerInfo], retry_at: Sequence[float],
                    stats: ReadStats) -> None:
        """The first reading: ``infos`` (level → its consumer's info, as the stranded check read it), the live
        workers' holdings, the timed retries among ``retry_at`` (the first look's queued records' ``retryAt``,
        epoch seconds: :class:`gamead_core.doctor.records.FirstLook`)."""
        self._retry_at = retry_at
        pending = self._keep(infos)
        if not pending:
            return
        held = await self._held(stats)
        if held is not None:
            self._first = excess(pending, held, self._timed())

    async def read_again(self, stats: ReadStats) -> None:
        """The second reading (only when the first found an excess): the consumer infos (kept in ``again``) and the
        messages each has pending (:mod:`.pending_seqs`), read again :data:`GRACE` s later, with a listing of the
        holdings before and after and every announcement between heard (:mod:`.announced`). Once."""
        if not self._first or self._read_twice:
            return
        self._read_twice = True
        heard = Announced(self._nc, self.registry.prefix)  # every announcement until the listing after (probe49 F3)
        await heard.start(self._timeout)  # not heard: the listings count alone, as before
        try:
            back = heard.handed  # handed back lately by a live worker: not held, not unheld (handback50)
            before = await self._holdings(stats, back)  # and after: one held at either is held (regress40 F7's kind)
            pending = await self._infos(stats)
            spans = [Span(info) for info in self.again.values()]
            then = await self._pending_now(spans, stats)
            await asyncio.sleep(GRACE)  # a live worker announces a delivery it received before the infos meanwhile
            now = await self._pending_now(spans, stats) if then is not None else None
            after = await self._holdings(stats, back)
        finally:
            await heard.stop()
        if before is None or after is None:
            return
        held = before | after | heard.seen
        if then is not None and now is not None:  # by sequence: pending in both readings, announced by nobody
            self._again = len((then & now) - held - back), 0
            return
        delivered = {(span.stream, span.consumer): span.last for span in spans}  # by count (as before)
        self._again = pending, sum(1 for k in held if pending_then(k, delivered))

    async def _pending_now(self, spans: list[Span], stats: ReadStats) -> set[HeldKey] | None:
        """The messages of ``spans`` pending now (:func:`.pending_seqs.pending_in`); None if any cannot be read."""
        seqs: set[HeldKey] = set()
        for span in spans:
            if span.pending:
                stats.api_calls += 1
            got = await pending_in(self._nc, span, self._timeout)
            if got is None:
                return None
            seqs |= got
        return seqs

    async def _infos(self, stats: ReadStats) -> int:
        """The second reading's consumer infos (kept in ``again``): their ack-pending deliveries in all."""
        for level in self._levels:
            stats.api_calls += 1
            try:
                with nats_boundary():
                    self.again[level] = await self._js.consumer_info(names.work_stream(level[1]),
                                                                     names.level_consumer(*level))
            except (GameadError, nats.errors.Error) as exc:
                log.debug("doctor: consumer of %s: %r", _label(level), exc)
        self._pending = {}
        return self._keep(self.again)

    async def confirm(self, stats: ReadStats, note: Note, explained: int = 0) -> None:
        """After :meth:`read_again` (made here if it was not): the smaller excess goes into ``note`` (``count``:
        unheld deliveries; items: where, the levels with deliveries ack-pending, each with its count of all
        ack-pending ones and ``ack_wait``; nothing "more" than them). ``explained``: deliveries another note already
        names (``ack_lost``: a completed or dead ad's lost ack, not a dead worker's)."""
        await self.read_again(stats)
        if self._again is None:
            return
        pending, held = self._again
        count = min(self._first, excess(pending, held, self._timed() + explained))
        if count <= 0:
            return
        note.count, note.where = count, True
        for level, n in sorted(self._pending.items()):
            if n:
                note.items.append(_label(level))
                note.details[_label(level)] = (f"{n} ack-pending in all (held ones and timed retries included); "
                                               f"JetStream redelivers an unheld one within its ack_wait "
                                               f"({self._ack_wait.get(level, 0):g} s)")


__all__ = ["GRACE", "Unheld", "excess", "naks_unheard", "timed_retries"]
