"""The refusal of a job past ``jobs.max_running`` (:class:`JobsBusy`, 503 ``jobs_busy``)."""

from __future__ import annotations

from gamead_core.errors import GameadError


class JobsBusy(GameadError):
    """This API node already runs ``jobs.max_running`` operator jobs (replay, purge, import, a doctor repair): a
    new one is refused before anything is stored (503 ``jobs_busy``, ``Retry-After``). ``details``: ``{"running",
    "limit", "setting"}``. Not a :class:`QueueUnavailable`: NATS is fine, this node is busy (attack34a F2: 200
    jobs at once, each with its own DLQ scan, all accepted, then 191 failed on NATS timeouts)."""

    code = "jobs_busy"
