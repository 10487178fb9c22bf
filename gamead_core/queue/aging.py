"""Priority with aging: which level a worker should pull from next. Pure functions, no I/O.

Each level that has work scores ``level − wait / aging_step``, where ``wait`` is how long its most
patient ad has been due; the lowest score wins, ties go to the more urgent level. An ad therefore climbs
one level per ``aging_step`` seconds of waiting: a priority-5 ad that has waited ``4 × aging_step``
competes with a fresh priority-1 ad, and one that has waited longer beats it. Nothing starves.

A level has two kinds of waiting ads, and both age:

* **new** ads (``pending``, never delivered): the oldest is the next undelivered message (``head_age``);
* **due redeliveries** (``due``): retries whose backoff has passed, ads handed back by a worker that shut
  down or died. JetStream hands these out first on a pull of their level, and their wait counts from the
  moment they became due (the record's ``retryAt``), so a retried ad keeps its place.

The bound that follows (stated in the README): an ad that became due at priority ``p`` is served before
every ad of priority ``q < p`` that became due more than ``(p − q) × aging_step`` after it — the order of
``due time + level × aging_step``, earliest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gamead_core import names

if TYPE_CHECKING:
    from nats.aio.msg import Msg


@dataclass(frozen=True, slots=True)
class LevelHead:
    """What a worker knows about one level: how many ads wait and how long the most patient one has."""

    level: int
    pending: int  # new ads, never delivered
    head_age: float  # seconds the oldest new ad has waited; 0 if unknown
    ack_pending: int = 0  # delivered, not acknowledged (NATS num_ack_pending): being analysed, or due back
    due: int = 0  # delivered ads known to be due for redelivery now (a lower bound)
    due_age: float = 0.0  # seconds the longest-due of them has been due

    @property
    def ready(self) -> int:
        """Ads a pull of this level could hand out now (pending ones plus known due redeliveries)."""
        return self.pending + self.due

    @property
    def wait(self) -> float:
        """Seconds the most patient waiting ad of this level has waited (0 when none waits). No list per call: the
        pull loop asks each level's twice per start step (cpuworker48)."""
        wait = 0.0
        if self.pending > 0 and self.head_age > wait:
            wait = self.head_age
        if self.due > 0 and self.due_age > wait:
            wait = self.due_age
        return wait


def level_score(level: int, head_age: float, aging_step: float) -> float:
    """The aging score of a level; lower is served first."""
    if aging_step <= 0:
        raise ValueError("aging_step must be positive")
    return level - max(head_age, 0.0) / aging_step


def pull_order(heads: Mapping[int, LevelHead] | list[LevelHead], aging_step: float) -> list[int]:
    """Levels with waiting ads, in the order a worker should try them (best first)."""
    items = heads.values() if isinstance(heads, Mapping) else heads
    ready = [h for h in items if h.pending + h.due > 0]  # h.ready > 0, without the property's call
    if ready and aging_step <= 0:  # level_score's check, once, not per level (cpuworker48)
        raise ValueError("aging_step must be positive")
    ready.sort(key=lambda h: (h.level - h.wait / aging_step, h.level))  # level_score (h.wait is never negative)
    return [h.level for h in ready]


def due_key(level: int, due_at: float, aging_step: float) -> float:
    """The time-free form of :func:`level_score`: ``due_at + level × aging_step`` (epoch seconds; lower is
    served first). Two waiting ads compare by it exactly as by their scores at any one moment
    (``score = (key − now) / aging_step``), so it can be kept with a buffered ad and compared later, with
    the queue's heads and with ads that arrive meanwhile. Raises ``ValueError`` for ``aging_step <= 0``."""
    if aging_step <= 0:
        raise ValueError("aging_step must be positive")
    return due_at + level * aging_step


def head_key(head: LevelHead, read_at: float, aging_step: float) -> float:
    """:func:`due_key` of the most patient waiting ad of ``head``, a view read at ``read_at`` (epoch s)."""
    return due_key(head.level, read_at - head.wait, aging_step)


def effective_level(level: int, head_age: float, aging_step: float, top: int = 1) -> int:
    """The level an ad currently competes at after aging (never better than ``top``). For display."""
    return max(top, int(level - max(head_age, 0.0) // aging_step))


def delivery_key(msg: Msg, now: float, aging_step: float) -> float:
    """The aging key (:func:`due_key`, epoch seconds) of a delivered work message ``msg``; ``now`` epoch seconds.

    Every delivery is due since its message was published (the stream's time stamp in its metadata; a clock
    ahead counts as ``now``). A redelivery too: its record's ``retryAt`` is not read here, and keying it at
    ``now`` (as before) put an ad that had aged in the queue behind newer, more urgent arrivals by up to
    ``(level - 1) × aging_step`` beyond the aging bound; from its publish time it is never behind its place,
    at worst ahead of it by its own retry back-off. A message whose subject names no level counts as the
    least urgent level. Used by the worker's prefetch buffer and by the puller (ads its long polls brought)."""
    meta = msg.metadata
    try:
        level = names.level_of_subject(msg.subject)
    except (ValueError, IndexError):
        level = names.LEVELS[-1]
    due = now
    if meta.timestamp is not None:
        due = min(now, meta.timestamp.timestamp())
    return due_key(level, due, aging_step)


def level_order_is_aging_order(levels: list[int], spell: float, aging_step: float) -> bool:
    """Pure: may ads waiting in ``levels`` (one entry per noted (level, partition)) be served most urgent level
    first, when nothing waited ``spell`` seconds ago? True when no level appears twice and ``spell <
    aging_step``: every waiting ad then waited less than ``spell``, so two heads' due times differ by less than
    one step and :func:`due_key` (``due + level × step``) orders them by level."""
    return len(set(levels)) == len(levels) and spell < aging_step
