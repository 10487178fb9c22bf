"""One reading of the queue: every level's depth, the work stream's state and the registry, read together.

:func:`read_queue` is the one place these are read (all calls concurrent, about a dozen sub-millisecond
JetStream API calls); :class:`~gamead_core.stats.sampler.QueueSampler` keeps the readings and derives the
rates that ``/v1/stats``, ``gamead top`` and the autoscaler all show. Terms are NATS's (see the README's
Glossary): ``pending`` (never delivered), ``ack_pending`` (delivered, not yet acknowledged),
``redelivered``.

A level's ``oldest_age`` counts the ads workers hold unstarted (their heartbeats' ``unstartedSince``,
:mod:`gamead_core.stats.unstarted`): the oldest waiting ad may be one a busy worker's long poll took; and the ads
waiting for redelivery (:mod:`gamead_core.stats.waiting_again`): one a busy worker handed back, say.

Each level is read on its own: one that cannot be read (its consumer deleted) is named in ``unreadable``
with why, and the others are read as usual.

With ``queue.partitions`` > 1 each level is read in every partition and the readings merged
(:func:`gamead_core.queue.partitions.merge_depths`: counts summed, the oldest head); the work streams' states
are summed. A level with one partition that cannot be read is unreadable as a whole (its counts would be short);
what its other partitions said is kept apart in ``partial``, a lower bound the autoscaler still scales up on.

The partitions read are the queue's, not the node's setting: ``GAMEAD_ADS``'s metadata says how many partitions
the work streams were made with (:func:`~gamead_core.queue.partitions.made_with`), read in the same round as
everything else. When that differs from the node's ``queue.partitions`` (the queue was repartitioned under a
node left running: README, "Partitions") the levels and streams are read again over the queue's partitions, so
such a node's ``/v1/stats``, ``gamead top``, ``/metrics`` and autoscaler still count every waiting ad (attack28b
F3: a 1-partition node leading the autoscaler saw only ``GAMEAD_ADS`` and scaled the workers to 0 while 40 ads
waited in ``GAMEAD_ADS_1``/``_2``). ``GAMEAD_ADS`` missing or unreadable: the node's setting is read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext

from gamead_core import names
from gamead_core.queue.check_count import read_checks
from gamead_core.queue.depth import LevelDepth, level_depth
from gamead_core.queue.partitions import made_with, merge_depths
from gamead_core.errors import error_text
from gamead_core.registry import NodeInfo, Registry
from gamead_core.stats.unstarted import held_since, with_held
from gamead_core.stats.waiting_again import Redeliveries
from gamead_core.worker.lost_count import read_lost


@dataclass(frozen=True, slots=True)
class QueueReading:
    """The queue at ``t`` (epoch seconds). ``connected`` False: NATS was down and nothing else is known."""

    t: float
    connected: bool
    levels: tuple[LevelDepth, ...] = ()  #: the levels that could be read
    #: levels that could not be read, and why (``(3, "consumer not found")``)
    unreadable: tuple[tuple[int, str], ...] = ()
    #: levels of ``unreadable`` some of whose partitions could be read: those partitions merged (a lower bound)
    partial: tuple[LevelDepth, ...] = ()
    #: the work stream's last sequence (summed over the partitions): every accepted submit or replay adds one
    last_seq: int | None = None
    #: the work streams' write-check messages ever counted (:mod:`gamead_core.queue.check_count`), read after
    #: ``last_seq``; None when it could not be read
    checked_writes: int | None = None
    messages: int | None = None  #: messages in the work stream(s)
    bytes: int | None = None
    nodes: tuple[NodeInfo, ...] | None = None  #: the registry's entries; None when it could not be read
    errors: tuple[str, ...] = ()  #: what could not be read (``"work stream: timeout"``)
    partitions: int = 1  #: the work-stream partitions read: the queue's (``GAMEAD_ADS``'s metadata), else the setting
    #: attempts charged for crashed workers and retried, cluster-wide (:mod:`gamead_core.worker.lost_count`); None
    #: when it could not be read
    lost_attempts: int | None = None

    def level(self, level: int) -> LevelDepth | None:
        return next((d for d in self.levels if d.level == level), None)

    @property
    def pending(self) -> int | None:
        """Ads never delivered, summed over the readable levels (None when none could be read)."""
        return sum(d.pending for d in self.levels) if self.levels else None

    @property
    def ack_pending(self) -> int | None:
        """Ads delivered and not yet acknowledged, summed over the readable levels."""
        return sum(d.ack_pending for d in self.levels) if self.levels else None

    @property
    def lost_counter(self) -> dict[str, tuple[int, bool]]:
        """``lost_attempts`` as a :class:`~gamead_core.stats.rates.MonotonicTotal` source (key ``lost``; none when
        unread): the sampler adds its increase to the retried attempts (``retriedPerSec``; attack29a F11)."""
        return {} if self.lost_attempts is None else {"lost": (self.lost_attempts, False)}

    @property
    def workers(self) -> tuple[NodeInfo, ...] | None:
        return None if self.nodes is None else tuple(n for n in self.nodes if n.role == "worker")


async def read_queue(js: JetStreamContext, registry: Registry | None, now: float,
                     partitions: int = 1, again: Redeliveries | None = None, *, lost: bool = True) -> QueueReading:
    """Read every level (:func:`~gamead_core.queue.depth.level_depth`) of every work-stream partition, the work
    streams' states, the registry and the lost-attempts counter (:func:`~gamead_core.worker.lost_count.read_lost`)
    concurrently. ``partitions``: the node's ``queue.partitions``, read first;
    when ``GAMEAD_ADS`` says the queue has another count, the levels and streams are read again over that many
    (module docstring). ``again``: also age the ads waiting for redelivery (:mod:`gamead_core.stats.waiting_again`).
    ``lost``: False leaves the lost-attempts counter unread (``lost_attempts`` None): only ``/v1/stats``'
    ``retriedPerSec`` counts it, never the autoscaler (``gamead up``'s own sampler: one read a second fewer).
    Never raises for a part that cannot be read: it is left out and named in ``errors`` (and, for a level, in
    ``unreadable``)."""
    parts = await asyncio.gather(
        asyncio.gather(*(_level(js, lvl, now, partitions) for lvl in names.LEVELS), return_exceptions=True),
        _streams_then_checks(js, partitions),
        registry.list() if registry is not None else _none(),
        read_lost(js) if lost else _none(),
        return_exceptions=True,
    )
    levels, stream, nodes, lost_read = parts
    live = partitions if isinstance(stream, BaseException) else stream[0][3]
    if live != partitions:  # repartitioned under this node: the queue's partitions, not the setting
        partitions = live
        levels, stream = await asyncio.gather(
            asyncio.gather(*(_level(js, lvl, now, live) for lvl in names.LEVELS), return_exceptions=True),
            _streams_then_checks(js, live), return_exceptions=True)
    errors: list[str] = []
    for what, part in zip(("queue levels", "work stream", "registry"), (levels, stream, nodes)):
        if isinstance(part, BaseException):
            errors.append(f"{what}: {error_text(part)}")
    readable: list[LevelDepth] = []
    unreadable: list[tuple[int, str]] = []
    partial: list[LevelDepth] = []
    per_part: dict[int, dict[int, LevelDepth]] = {}  #: level → partition → reading (the readable levels')
    for level, got in zip(names.LEVELS, levels if isinstance(levels, list) else ()):
        depth, error, parts_read = (None, got, {}) if isinstance(got, BaseException) else got
        if error is not None:  # this level only: the others are shown as usual
            unreadable.append((level, error_text(error)))
            errors.append(f"queue level {level}: {error_text(error)}")
            if depth is not None:
                partial.append(depth)
        elif depth is not None:
            readable.append(depth)
            per_part[level] = parts_read
    held = held_since(None if isinstance(nodes, BaseException) else nodes, now)  # held unstarted wait too
    if again is not None and isinstance(nodes, list):  # and those waiting for redelivery (attack32b F6)
        try:
            for level, at in (await again.since(js, per_part, nodes, now)).items():
                held[level] = min(at, held.get(level, at))
        except Exception as exc:  # noqa: BLE001 - the figure without them, and why
            errors.append(f"ads waiting again: {error_text(exc)}")
    last_seq = messages = size = checked = None
    if not isinstance(stream, BaseException):
        (last_seq, messages, size, _), checked = stream
    return QueueReading(
        t=now,
        connected=True,
        levels=with_held(readable, held, now),
        unreadable=tuple(unreadable),
        partial=with_held(partial, held, now),
        last_seq=last_seq,
        checked_writes=checked,
        messages=messages,
        bytes=size,
        nodes=None if isinstance(nodes, BaseException) or nodes is None else tuple(nodes),
        errors=tuple(errors),
        partitions=partitions,
        lost_attempts=lost_read if isinstance(lost_read, int) else None,
    )


async def _level(js: JetStreamContext, level: int, now: float,
                 partitions: int) -> tuple[LevelDepth | None, Exception | None, dict[int, LevelDepth]]:
    """One level over every partition: the readable partitions merged (None if none was), the first
    partition's error (None if every partition was read) and each readable partition's reading."""
    got = await asyncio.gather(*(level_depth(js, level, now, p) for p in range(partitions)), return_exceptions=True)
    fatal = next((g for g in got if isinstance(g, BaseException) and not isinstance(g, Exception)), None)
    if fatal is not None:
        raise fatal  # CancelledError, KeyboardInterrupt: not taken for a partition's error (the caller decides)
    read = {p: g for p, g in enumerate(got) if isinstance(g, LevelDepth)}
    error = next((g for g in got if isinstance(g, Exception)), None)
    return (merge_depths(level, read.values()) if read else None), error, read


async def _streams(js: JetStreamContext, partitions: int) -> tuple[int | None, int | None, int | None, int]:
    """(last sequence, messages, bytes) summed over ``partitions`` work streams, and the partitions ``GAMEAD_ADS``
    says the queue has (``partitions`` when it cannot be read or its metadata names none that can be). A stream
    that cannot be read raises its error, unless the queue has another count (a stream the node's setting names
    may not exist): then the sums are None, for the caller to read again over the queue's partitions."""
    infos = await asyncio.gather(*(js.stream_info(names.work_stream(p)) for p in range(partitions)),
                                 return_exceptions=True)
    head = infos[0]
    live = partitions if isinstance(head, BaseException) else made_with(0, head.config.metadata) or partitions
    failed = next((i for i in infos if isinstance(i, BaseException)), None)
    if failed is not None and (live == partitions or not isinstance(failed, Exception)):
        raise failed
    if failed is not None:
        return None, None, None, live
    return (sum(int(i.state.last_seq or 0) for i in infos), sum(int(i.state.messages or 0) for i in infos),
            sum(int(i.state.bytes or 0) for i in infos), live)


async def _streams_then_checks(js: JetStreamContext, partitions: int) -> tuple[tuple[Any, ...], int | None]:
    """:func:`_streams`, then the write checks' counter (None when it cannot be read): read after the sequences,
    so every check message they hold is counted (:mod:`gamead_core.queue.check_count`)."""
    streams = await _streams(js, partitions)
    try:
        checked: int | None = await read_checks(js)
    except Exception:  # noqa: BLE001 - the rate then counts the checks, as before the counter
        checked = None
    return streams, checked


def _none() -> Awaitable[Any]:
    async def none() -> None:
        return None

    return none()


__all__ = ["QueueReading", "error_text", "read_queue"]
