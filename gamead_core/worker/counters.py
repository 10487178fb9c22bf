"""The counters a worker keeps about itself: shown in its heartbeat (the registry) and its logs.

They count what this worker's own writes did: ``processed`` only when its write made the ad ``completed``,
``failed`` only when its write recorded the failure, ``skipped`` for deliveries of ads already final,
``handed_back`` for ``nak``\\ s on shutdown.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class WorkerStats:
    """Counters a worker keeps about itself (shown by the registry and logs). See the module doc."""

    processed: int = 0
    failed: int = 0
    skipped: int = 0
    handed_back: int = 0
    storage_failures: int = 0  #: deliveries or writes that failed because our storage did
    in_flight: int = 0
    last_error: str | None = None
    started: float = field(default_factory=time.time)
    last_progress: float = field(default_factory=time.time)  #: when an ad last finished (stuck detection)
    #: recent (finished_at epoch s, processing ms, queue-wait ms) samples, newest last
    recent: deque[tuple[float, float, float]] = field(default_factory=lambda: deque(maxlen=512))
