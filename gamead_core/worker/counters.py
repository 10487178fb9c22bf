"""The counters a worker keeps about itself: shown in its heartbeat (the registry) and its logs.

They count what this worker's own writes did: ``processed`` only when its write made the ad ``completed``,
``failed`` only when its write recorded the failure, ``skipped`` for deliveries of ads already final,
``handed_back`` for ``nak``\\ s on shutdown.

:class:`CpuPerAd` measures the CPU seconds this process spends per settled ad (analysis *and* queue machinery),
from ``time.process_time()`` deltas taken at each heartbeat: the autoscaler's CPU bound on a worker's capacity
(:func:`gamead_core.stats.rates.worker_capacity`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


#: Seconds of heartbeat points the CPU per ad is measured over.
CPU_WINDOW = 30.0
#: Ads a window must have settled before it gives a figure (fewer: the last figure stands).
CPU_MIN_ADS = 20


class CpuPerAd:
    """Milliseconds of process CPU per settled ad, over the last ``window`` seconds. Pure: the caller passes
    the clock (monotonic s), the process CPU time (``time.process_time()``, s) and its settled-ads counter.

    ``update(now, cpu, settled)`` adds a point and answers::

        cpu_per_ad = Σ Δcpu / Σ Δsettled   over consecutive points within ``window`` where Δsettled > 0

    Intervals in which no ad settled are left out (an idle worker's polling is not a cost of an ad), so
    bursts separated by idle minutes are measured by what the bursts cost. At a trickle every interval has an
    ad and its share of the idle polling, so the figure is then on the high side: the capacity derived from
    it errs low (more workers), never high. With fewer than ``min_ads`` ads in the window the last figure
    stands (None until there was one): the CPU an ad costs does not change while a worker waits. A counter
    or a clock that went down (never expected: the clock is monotonic; a host clock stepped back kept every point
    "within the window" for as long as the step, attack39b F10) restarts the measurement.
    """

    def __init__(self, window: float = CPU_WINDOW, min_ads: int = CPU_MIN_ADS) -> None:
        self.window = window
        self.min_ads = max(1, min_ads)
        self.last_ms: float | None = None
        self._points: deque[tuple[float, float, int]] = deque(maxlen=1024)

    def update(self, now: float, cpu: float, settled: int) -> float | None:
        """Add the point (``now`` monotonic s, ``cpu`` s, ``settled`` ads); return ms of CPU per ad (see the
        class doc) or None while unknown."""
        pts = self._points
        if pts and (settled < pts[-1][2] or cpu < pts[-1][1] or now < pts[-1][0]):
            pts.clear()
        pts.append((now, cpu, settled))
        while len(pts) > 1 and pts[0][0] < now - self.window:
            pts.popleft()
        busy_cpu, ads = 0.0, 0
        for (_, c0, n0), (_, c1, n1) in zip(pts, list(pts)[1:]):
            if n1 > n0:
                busy_cpu += c1 - c0
                ads += n1 - n0
        if ads >= self.min_ads and busy_cpu > 0:
            self.last_ms = round(busy_cpu * 1000.0 / ads, 4)
        return self.last_ms


@dataclass
class WorkerStats:
    """Counters a worker keeps about itself (shown by the registry and logs). See the module doc."""

    processed: int = 0
    failed: int = 0  #: failed attempts recorded: retried + dead
    dead: int = 0  #: of ``failed``, the ads it dead-lettered
    skipped: int = 0
    handed_back: int = 0
    storage_failures: int = 0  #: deliveries or writes that failed because our storage did
    left_for_newer: int = 0  #: deliveries put back because a newer gamead wrote the ad's record (review31 R10)
    in_flight: int = 0
    last_error: str | None = None
    started: float = field(default_factory=time.time)
    #: when an ad last finished, epoch s on nats-server's clock (stuck detection); None before the first one: the
    #: heartbeat then says the start on nats-server's clock (a host-clock default read a worker 5 min behind,
    #: holding prefetched ads before its first analysis, ``stuck``: clock33api's note)
    last_progress: float | None = None
    #: recent (finished_at epoch s, processing ms, queue-wait ms) samples, newest last
    recent: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=512))
    cpu: CpuPerAd = field(default_factory=CpuPerAd)  #: CPU per settled ad (the heartbeat's ``cpuPerAdMs``)

    @property
    def settled(self) -> int:
        """Deliveries this worker finished with an ack of its own: completed, failed (recorded) or skipped."""
        return self.processed + self.failed + self.skipped

    def cpu_per_ad_ms(self, now: float | None = None) -> float | None:
        """Read the process's CPU clock and :meth:`CpuPerAd.update` with :attr:`settled`: milliseconds of CPU
        per settled ad over the last ``CPU_WINDOW`` seconds (None until ``CPU_MIN_ADS`` ads were seen).
        Call it once per heartbeat; ``now`` in monotonic seconds (default the clock: a host clock stepped changes
        nothing, attack39b F10)."""
        return self.cpu.update(time.monotonic() if now is None else now, time.process_time(), self.settled)
