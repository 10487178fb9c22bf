"""Which work-stream partition an ad goes to (``queue.partitions``), and how partitions are read together.

Pure, no I/O. With ``queue.partitions: N`` the work queue is N streams (:func:`gamead_core.names.work_stream`:
``GAMEAD_ADS``, ``GAMEAD_ADS_1`` … ``GAMEAD_ADS_<N-1>``), each with one subject and one durable pull consumer per
level, so a cluster can place their leaders on different servers. An ad's partition is
``crc32(ad id) mod N`` (:func:`partition_of`): stable across processes, versions and machines (Python's ``hash``
of a string is salted per process), so every publish of one ad — the submit, a retried submit with the same
``Nats-Msg-Id``, the sweep's re-publish, a DLQ replay, a doctor repair — reaches the same stream, where
JetStream's duplicate window (which is per stream) sees it.

A level's view across partitions (:func:`merge_depths`): pending, ack pending and redelivered add up; the
oldest pending ad is the oldest of the partitions' heads. So the aging order of
:mod:`gamead_core.queue.aging` holds across partitions: a level's score uses its oldest ad, wherever it waits.

The worker (:mod:`gamead_core.queue.pull`) reads each level in every partition; a pull of the level goes first
to the partition whose most patient ad (new or due again) has waited longest, then to the others that have
something waiting (:mod:`gamead_core.queue.part_heads`).
An idle worker keeps one long poll per level *and partition*: 5 × N waiting pull requests at the server, each
re-placed every ``queue.idle_wait`` seconds (5 N / idle_wait requests a second per idle worker: 3 a second for
N = 3 at the default 5 s), and a look at the heads reads 5 × N consumers (concurrently). A partition that cannot
be read makes its whole level unreadable for its back-off (the level's counts would be short otherwise).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from gamead_core import names
from gamead_core.queue.depth import LevelDepth


def partition_of(ad_id: str, partitions: int) -> int:
    """The partition (0 … ``partitions`` − 1) of ``ad_id``: ``crc32(utf-8 ad id) mod partitions`` (zlib's CRC-32,
    the same on every machine). Raises ValueError for ``partitions`` outside 1 … ``names.MAX_PARTITIONS``."""
    if not 1 <= partitions <= names.MAX_PARTITIONS:
        raise ValueError(f"partitions must be 1-{names.MAX_PARTITIONS}, got {partitions!r}")
    if partitions == 1:
        return 0
    return zlib.crc32(ad_id.encode()) % partitions


def work_streams(partitions: int) -> tuple[str, ...]:
    """The work streams of ``partitions`` partitions, partition 0 first (``("GAMEAD_ADS",)`` for one)."""
    return tuple(names.work_stream(p) for p in range(partitions))


def per_partition_limit(total: int, partitions: int) -> int:
    """A stream limit (``queue.max_msgs``, ``max_bytes``) split over the partitions so that their sum is the
    setting: ⌈total / partitions⌉; ``-1`` (unlimited) stays ``-1``."""
    if total < 0 or partitions <= 1:
        return total
    return -(-total // partitions)


def merge_depths(level: int, depths: Iterable[LevelDepth]) -> LevelDepth:
    """One level read over every partition: ``pending``, ``ack_pending`` and ``redelivered`` summed, the oldest
    ``oldest_age`` (None when no partition has a pending ad). ``ack_floor`` and ``delivered_seq`` are stream
    sequences, which mean nothing summed: they are kept only for a single partition (else 0)."""
    depths = list(depths)
    if len(depths) == 1:
        return depths[0]
    ages = [d.oldest_age for d in depths if d.oldest_age is not None]
    return LevelDepth(level, sum(d.pending for d in depths), sum(d.ack_pending for d in depths),
                      sum(d.redelivered for d in depths), max(ages) if ages else None)


def made_with(partition: int, metadata: Mapping[str, str] | None) -> int | None:
    """The ``queue.partitions`` a work stream's ``metadata`` says it was made with: 1 for partition 0 without it
    (a single-stream install of before), None for another partition without it or a value out of 1 …
    ``names.MAX_PARTITIONS``. Pure."""
    declared = (metadata or {}).get(names.PARTITIONS_METADATA)
    if not declared:
        return 1 if partition == 0 else None
    return int(declared) if declared.isdigit() and 1 <= int(declared) <= names.MAX_PARTITIONS else None


def partition_of_msg(msg: object) -> int:
    """The partition a delivered JetStream message came from (its ack subject names the stream); 0 if unknown."""
    try:
        return names.partition_of_stream(msg.metadata.stream) or 0  # type: ignore[attr-defined]
    except (ValueError, IndexError, AttributeError):
        return 0


__all__ = ["PartitionChange", "made_with", "merge_depths", "partition_change", "partition_of",
           "partition_of_msg", "per_partition_limit", "settle_by", "settle_rule", "work_streams"]


@dataclass(frozen=True)
class PartitionChange:
    """The work streams that exist do not match ``queue.partitions`` (``setting``): a change of the setting.
    ``found``: partitions whose stream exists; ``made_with``: the settings they were made with; ``held``: ads in
    them now. Made only by an explicit operator act on a drained queue (:func:`settle_rule`); otherwise refused."""

    setting: int
    found: tuple[int, ...]
    made_with: tuple[int | None, ...]
    held: int

    @property
    def drained(self) -> bool:
        return self.held == 0

    @property
    def removed(self) -> tuple[int, ...]:
        """Partitions that exist and the setting no longer has (deleted by a drained change)."""
        return tuple(p for p in self.found if p >= self.setting)

    @property
    def live(self) -> int | None:
        """The ``queue.partitions`` every work stream was made with, when they agree and it is not this
        setting (a finished repartition); None otherwise (mixed, made by hand, or streams the setting lacks)."""
        made = set(self.made_with)
        live = next(iter(made)) if len(made) == 1 else None
        return live if live is not None and live != self.setting and len(self.found) == live else None

    def stale_node(self) -> str:
        """One line for a node that is running while its setting no longer fits the work streams (``/readyz``,
        a refused submit, the worker's log, the doctor's refusal): the queue's partitions, the node's, the fix."""
        if self.live is not None:
            return (f"the queue has {self.live} partitions, this node is configured for {self.setting} — "
                    f"restart it with queue.partitions={self.live}")
        was = "/".join(sorted({str(m) for m in self.made_with if m is not None})) or "unknown"
        return (f"the work streams ({', '.join(names.work_stream(p) for p in self.found)}, made with "
                f"queue.partitions {was}) do not fit this node's queue.partitions {self.setting} — restart it "
                f"with the queue's setting (README: Partitions)")

    def describe(self) -> str:
        """One line: what exists against the setting (both values), and the fix."""
        was = sorted({m for m in self.made_with if m is not None})
        streams = ", ".join(names.work_stream(p) for p in self.found)
        made = f"made with queue.partitions {'/'.join(map(str, was))}" if was else "made by hand"
        back = f"set queue.partitions back to {'/'.join(map(str, was))}" if was else "set queue.partitions back"
        if self.drained:
            return (f"queue.partitions is {self.setting} but the work streams on this NATS are {streams} ({made}), "
                    f"empty; a start never changes them: {back}, or to change it stop every other node and start "
                    f"once with queue.repartition: true (GAMEAD_QUEUE__REPARTITION=true; README: Partitions)")
        return (f"queue.partitions is {self.setting} but the work streams on this NATS are {streams} ({made}) "
                f"holding {self.held} ad(s); changing the partitions of a live queue would strand them: {back}, "
                f"or stop the API nodes, let the workers drain the queue, stop them, then start once with "
                f"queue.repartition: true (GAMEAD_QUEUE__REPARTITION=true; README: Partitions)")


Settle = Literal["none", "refuse", "change"]


def settle_by(ad_id: str, setting: int, change: PartitionChange | None) -> int:
    """The ``queue.partitions`` an unanswered publish of ``ad_id`` is published again by, on a node whose setting is
    ``setting``; ``change``: the work streams found not to fit it (its topology watch's last find; None: they
    fit). ``setting`` while the stream of the ad's partition by it exists — a repeat must reach the stream that may
    hold the first try, whose duplicate window (per stream) drops it — else, once a repartition is done
    (``change.live``), the queue's live partitions: that stream was deleted, and only while empty (sealed first:
    :mod:`gamead_core.queue.repartition`), so it kept no first try to repeat, and a publish by the old modulus would
    only be refused ("no responders") for ever (repart38: the ad was left ``queued`` without a message). Pure."""
    if change is None or change.live is None or partition_of(ad_id, setting) in change.found:
        return setting
    return change.live


def settle_rule(change: PartitionChange | None, *, repartition: bool, update: bool) -> Settle:
    """What a topology check does about a change of ``queue.partitions``: ``"none"`` when the streams fit
    (``change`` None); ``"change"`` only when the operator asked for it (``queue.repartition``), this is a
    start-up check (``update``: never the API's running topology watch, nor the doctor) and the queue is drained;
    otherwise ``"refuse"`` (:class:`~gamead_core.errors.PartitionsChanged`, nothing touched). A start's own
    setting differing from the streams is never a reason to change them. Pure."""
    if change is None:
        return "none"
    return "change" if repartition and update and change.drained else "refuse"


def partition_change(setting: int, existing: Mapping[int, tuple[int | None, int]]) -> PartitionChange | None:
    """None when the work streams that exist fit ``queue.partitions`` = ``setting`` (none exists yet; or every
    one is a partition below the setting and was made with this setting: a missing one was deleted and is simply
    recreated). Otherwise the change, to be refused unless it is drained. Pure."""
    if not existing:
        return None
    made_with = tuple(existing[p][0] for p in sorted(existing))
    if all(p < setting for p in existing) and set(made_with) == {setting}:
        return None
    return PartitionChange(setting, tuple(sorted(existing)), made_with, sum(n for _, n in existing.values()))
