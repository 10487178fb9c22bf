"""The worker's own hooks (:mod:`gamead_core.worker.hooks`), built from its settings."""

from __future__ import annotations

from gamead_core.config import GameadSettings
from gamead_core.worker.faults import FaultInjection
from gamead_core.worker.hooks import Hook
from gamead_core.worker.keepalive import AckWaitKeepAlive
from gamead_core.worker.timelimit import TimeLimit


def worker_hooks(settings: GameadSettings) -> list[Hook]:
    """The worker's own hooks, outermost first: the time limit, fault injection (only when ``worker.faults``
    is on), the ack-wait keep-alive."""
    w = settings.worker
    hooks: list[Hook] = [TimeLimit(w.task_timeout)]
    if w.faults.rate > 0:
        hooks.append(FaultInjection(w.faults, hang_for=w.task_timeout * 10))
    hooks.append(AckWaitKeepAlive(settings.queue.ack_wait, timeout=settings.nats.request_timeout))
    return hooks
