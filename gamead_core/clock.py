"""One clock for every time gamead stamps for another node, or compares with one: nats-server's.

Nodes' wall clocks disagree (NTP off, a VM resumed from suspend, a clock stepped by hand). A worker whose clock
was 5 min behind was shown ``stuck`` while it beat every 2 s, served a P5 ad after every newer P1 ad (every age
read 0), and as the reaper re-published ads whose messages existed (past the duplicate window: run twice); an API
node 1 min ahead took a live runner's job; a scale override set through a node 10 min behind ended before it began
(attack33a F1-F11). So every time gamead writes for others (``submittedAt``, ``startedAt``, ``retryAt``, heartbeats,
lease and override expiries, an ad id's ULID time) or compares with a time another node or JetStream wrote (a
message's stored timestamp, a heartbeat, a lease) is read here, not from the local wall clock.

The reference is nats-server's clock, which stamps every stored message (``Nats-Time-Stamp``, by the stream's
leader). A node samples it with each registry heartbeat (:meth:`gamead_core.registry.kv.Registry.put`): the put's
round trip on the local clock (``CLOCK_BOOTTIME``: counts a suspend) brackets the stored message's timestamp, read back, so the offset is known
within ± half the round trip, as NTP's on-wire exchange bounds it (RFC 5905 §8). Of the samples of the last
:data:`KEEP` seconds, the one with the shortest round trip anchors the clock (NTP's clock filter, §10). Between
samples the time is the anchor plus the local boot-time clock since it, so a step of the local wall clock changes
nothing; a sample that does not fit the anchor's bracket (nats-server's clock stepped, a suspend) replaces it. Before the first sample (a process not connected yet, the CLI, a unit test) it is the local wall clock.

A process that keeps no registry entry but holds or judges a lease (``gamead up``'s own autoscaler) samples from
its lease writes instead (:func:`gamead_core.registry.kv.sample_stamp`, one helper for any KV put; review33 R8),
and takes no live holder's lease by its expiry before its first sample.

Only differences between nodes are corrected: a nats-server whose own clock is wrong makes every node agree on
that wrong time, which is what ordering and expiry need. In a NATS cluster (``queue.replicas`` > 1) that holds
for one server only: the reference is the clock of the registry stream's leader (the stamp read back), while
every other stream's messages are stamped by *its* leader (the work streams' stamps that aging reads, the
records' that the reaper's duplicate window and ``start_time`` reads use), which may be another server. So the
cluster's servers must keep their clocks together as NTP does (milliseconds; well within the reaper's 20 s
``SAFETY`` and the lease TTLs): gamead does not measure or correct a difference between servers (review33 R11).
When the registry stream's leader moves (a peer restarted), every node's samples follow the new leader's clock:
the first one that does not fit the anchor's bracket replaces it (:meth:`Sample.agrees`), so each node's time
steps once by the two servers' difference (milliseconds with NTP; backwards if the new one is behind).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Final

#: Seconds a sample is kept for the clock filter; older ones are dropped, so a drifting clock is followed.
KEEP: Final[float] = 300.0
#: At most this many recent samples are kept (one per heartbeat: 2 s by default, so the last ~16 s at most of those),
#: plus the anchor while it is younger than :data:`KEEP`.
MOST: Final[int] = 8
#: Seconds two samples may disagree beyond their brackets (the two clocks' drift between them) and still agree.
SLACK: Final[float] = 0.05


def _since_boot() -> float:
    """The local clock the anchor runs on: ``CLOCK_BOOTTIME`` where the platform has it (Linux), which counts a
    suspend, so a VM resumed after 10 min is not read 10 min behind (``time.monotonic`` stops while suspended:
    review33 R3); ``time.monotonic`` elsewhere."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


if not hasattr(time, "CLOCK_BOOTTIME"):  # pragma: no cover - not Linux
    _since_boot = time.monotonic  # noqa: F811


@dataclass(frozen=True)
class Sample:
    """One reading of nats-server's clock: ``server`` (Unix seconds, its stamp) taken between the local readings
    ``sent`` and ``received`` (seconds of :func:`_since_boot`); ``wall`` the local wall clock at its middle. The
    stamp was made at some local instant in the bracket, so nats-server's time minus the local one, ``base``, lies
    in ``[server − received, server − sent]``."""

    sent: float
    server: float
    received: float
    wall: float
    #: seconds the stamp itself may be off beyond the bracket (0 for a JetStream stamp, µs; 0.5 for an HTTP
    #: ``Date`` header, whole seconds: gamead_cli.service_clock)
    uncertainty: float = 0.0

    @property
    def rtt(self) -> float:
        return max(0.0, self.received - self.sent)

    @property
    def width(self) -> float:
        """The bracket ``base`` lies in, seconds: the round trip widened by the stamp's :attr:`uncertainty` each
        way."""
        return self.rtt + 2 * self.uncertainty

    @property
    def base(self) -> float:
        """nats-server's time minus the local clock's, at the bracket's middle (± rtt/2)."""
        return self.server - (self.sent + self.received) / 2

    def agrees(self, other: Sample) -> bool:
        """Do both brackets fit one relation between the clocks (within :data:`SLACK`)? Not: one of them stepped
        (nats-server's clock set, a stream leader on another server with another clock, a suspend uncounted)."""
        return abs(self.base - other.base) <= (self.width + other.width) / 2 + SLACK


class ServerClock:
    """nats-server's time as this process knows it. ``now()`` is Unix seconds; ``offset`` how far the local
    wall clock is behind it (seconds, + when the local clock is behind; None before any sample)."""

    def __init__(self) -> None:
        self._samples: list[Sample] = []
        self._anchor: Sample | None = None
        self._base: float | None = None  #: the anchor's base: now() is one addition

    def note(self, sent: float, server: float, received: float, uncertainty: float = 0.0) -> None:
        """Take a sample: ``server`` (Unix seconds) was stamped between this process's local readings ``sent``
        and ``received`` (:func:`local`), within ± ``uncertainty`` seconds of its true time (a stamp of 1 s
        resolution read at its second's middle: 0.5; it widens the bracket for :meth:`Sample.agrees` and
        :attr:`error`). Ignores a sample whose bracket is inverted or not finite. A sample that disagrees with
        the anchor (:meth:`Sample.agrees`) drops every older one: the relation changed, and the newest reading is
        the one to follow, however slow its round trip."""
        if not (sent <= received) or server != server or server in (float("inf"), float("-inf")):
            return
        sample = Sample(sent, server, received, time.time() - (_since_boot() - (sent + received) / 2),
                        max(0.0, uncertainty))
        recent = [s for s in self._samples if received - s.received <= KEEP]
        kept = recent[-(MOST - 1):]
        if self._anchor in recent and self._anchor not in kept:  # the quickest of KEEP s anchors, not of the last
            kept.insert(0, self._anchor)  # MOST (regress37 F1: a burst of slow answers set the CLI's clock 2.5 s off)
        if self._anchor is not None and not sample.agrees(self._anchor):
            kept = []
        self._samples = [*kept, sample]
        self._anchor = min(self._samples, key=lambda s: s.width)
        self._base = self._anchor.base

    def now(self) -> float:
        """nats-server's time now, Unix seconds (the local wall clock before any sample)."""
        base = self._base
        return time.time() if base is None else base + _since_boot()

    @property
    def offset(self) -> float | None:
        """nats-server's clock minus this host's wall clock, seconds (+300: this host is 5 min behind); None
        before any sample."""
        anchor = self._anchor
        return None if anchor is None else anchor.server - anchor.wall

    @property
    def error(self) -> float | None:
        """The anchor's uncertainty, ± seconds (half its round trip, plus its stamp's own uncertainty); None
        before any sample."""
        return None if self._anchor is None else self._anchor.width / 2

    def forget(self) -> None:
        """Drop every sample (back to the local wall clock). For tests."""
        self._samples, self._anchor, self._base = [], None, None


def local() -> float:
    """The local reading a sample's bracket is taken on (seconds, any origin): call it just before sending the
    write whose stamp is read back, and just after its acknowledgement, and pass both to :meth:`ServerClock.note`."""
    return _since_boot()


#: The process's clock: every module reads the time through :func:`now` / :func:`utcnow` / :func:`now_ns`.
CLOCK: Final[ServerClock] = ServerClock()


def now() -> float:
    """nats-server's time now as this process knows it, Unix seconds (see the module docstring)."""
    return CLOCK.now()


def now_ns() -> int:
    """:func:`now` in integer nanoseconds (for ULID times: milliseconds are taken from it)."""
    return int(CLOCK.now() * 1e9)


def utcnow() -> datetime:
    """:func:`now` as an aware UTC datetime: what gamead stamps in records, jobs, audit entries."""
    return datetime.fromtimestamp(CLOCK.now(), timezone.utc)


__all__ = ["CLOCK", "KEEP", "MOST", "SLACK", "Sample", "ServerClock", "local", "now", "now_ns", "utcnow"]
